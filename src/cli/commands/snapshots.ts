import { shortId } from '../../model/snapshot.js';
import { handle, type Register } from '../command.js';
import { snapshotFilter } from '../args.js';
import { matchesFilter } from '../../engine/retention.js';
import { formatBytes, table } from '../output.js';

interface SnapshotsArgs {
  host?: string[];
  tag?: string[];
  path?: string[];
}

export const registerSnapshots: Register = (y) =>
  y.command(
    'snapshots',
    'list snapshots',
    (c) =>
      c
        .option('host', { type: 'string', array: true, describe: 'only snapshots of this host (repeat: any of them)' })
        .option('tag', { type: 'string', array: true, describe: 'only snapshots with these tags (comma: all of them; repeat: any)' })
        .option('path', { type: 'string', array: true, describe: 'only snapshots including this path' }),
    handle<SnapshotsArgs>(async (ctx, a) => {
      const repo = await ctx.repository({ index: false, readOnly: true });
      const filter = snapshotFilter(a);
      const list = (await repo.listSnapshots()).filter((e) => matchesFilter(e.snapshot, filter));
      ctx.out.data(list.map(({ id, snapshot: s }) => ({ id, short_id: shortId(id), ...s })));
      const rows = list.map(({ id, snapshot: s }) => [shortId(id), s.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z'), s.hostname, s.tags.join(','), formatBytes(s.summary?.total_bytes_processed ?? 0), s.paths.join(' ')]);
      for (const l of table(rows, ['ID', 'Time', 'Host', 'Tags', 'Size', 'Paths'])) ctx.out.line(l);
      ctx.out.line(`${list.length} snapshots`);
      return 0;
    }),
  );
