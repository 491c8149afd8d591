import { shortId } from '../../model/snapshot.js';
import { handle, type Register } from '../command.js';
import { asArray } from '../args.js';
import { formatBytes, table } from '../output.js';

interface SnapshotsArgs {
  host?: string;
  tag?: string[];
  path?: string[];
}

export const registerSnapshots: Register = (y) =>
  y.command(
    'snapshots',
    'list snapshots',
    (c) =>
      c
        .option('host', { type: 'string', describe: 'only snapshots of this host' })
        .option('tag', { type: 'string', array: true, describe: 'only snapshots with this tag' })
        .option('path', { type: 'string', array: true, describe: 'only snapshots including this path' }),
    handle<SnapshotsArgs>(async (ctx, a) => {
      const repo = await ctx.repository({ index: false, readOnly: true });
      const tags = asArray(a.tag);
      const paths = asArray(a.path);
      const list = (await repo.listSnapshots()).filter(
        ({ snapshot: s }) => (!a.host || s.hostname === a.host) && tags.every((t) => s.tags.includes(t)) && paths.every((p) => s.paths.includes(p)),
      );
      ctx.out.data(list.map(({ id, snapshot: s }) => ({ id, short_id: shortId(id), ...s })));
      const rows = list.map(({ id, snapshot: s }) => [shortId(id), s.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z'), s.hostname, s.tags.join(','), formatBytes(s.summary?.total_bytes_processed ?? 0), s.paths.join(' ')]);
      for (const l of table(rows, ['ID', 'Time', 'Host', 'Tags', 'Size', 'Paths'])) ctx.out.line(l);
      ctx.out.line(`${list.length} snapshots`);
      return 0;
    }),
  );
