import { shortId, type Snapshot, type SnapshotEntry } from '../../model/snapshot.js';
import { UsageError } from '../../errors.js';
import { handle, type Register } from '../command.js';
import { snapshotFilter, SNAPSHOT_FILTER_FLAGS } from '../args.js';
import { groupSnapshots, matchesFilter } from '../../engine/retention.js';
import { formatBytes, table } from '../output.js';

interface SnapshotsArgs {
  ids: string[];
  latest?: number;
  host?: string[];
  tag?: string[];
  path?: string[];
}

export const registerSnapshots: Register = (y) =>
  y.command(
    'snapshots [ids..]',
    'list snapshots (all, or those named by ID or "latest")',
    (c) =>
      c
        .positional('ids', { type: 'string', array: true, default: [], describe: 'snapshot IDs (a unique prefix) or "latest"' })
        .option('latest', { type: 'number', describe: 'only the newest N snapshots of each host and set of paths' })
        .options(SNAPSHOT_FILTER_FLAGS),
    handle<SnapshotsArgs>(async (ctx, a) => {
      const repo = await ctx.repository({ index: false, readOnly: true });
      if (a.latest !== undefined && !(Number.isInteger(a.latest) && a.latest > 0)) throw new UsageError('--latest takes a positive whole number');
      const filter = snapshotFilter(a);
      const matching = (s: Snapshot) => matchesFilter(s, filter);
      let list = (await repo.listSnapshots()).filter((e) => matching(e.snapshot));
      if (a.ids.length > 0) {
        const named = new Set<string>();
        for (const ref of a.ids) named.add((await repo.findSnapshot(ref, matching)).id);
        list = list.filter((e) => named.has(e.id));
      }
      if (a.latest !== undefined) list = newestOfEachGroup(list, a.latest);
      ctx.out.data(list.map(({ id, snapshot: s }) => ({ id, short_id: shortId(id), ...s })));
      const rows = list.map(({ id, snapshot: s }) => [shortId(id), s.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z'), s.hostname, s.tags.join(','), formatBytes(s.summary?.total_bytes_processed ?? 0), s.paths.join(' ')]);
      for (const l of table(rows, ['ID', 'Time', 'Host', 'Tags', 'Size', 'Paths'])) ctx.out.line(l);
      ctx.out.line(`${list.length} snapshots`);
      return 0;
    }),
  );

/** The newest `n` snapshots of each host and set of paths (restic's --latest), oldest first. */
function newestOfEachGroup(list: SnapshotEntry[], n: number): SnapshotEntry[] {
  // Groups keep the list's order (oldest first), as forget's do.
  const kept = new Set(groupSnapshots(list, { host: true, paths: true, tags: false }).flatMap((g) => g.entries.slice(-n)));
  return list.filter((e) => kept.has(e));
}
