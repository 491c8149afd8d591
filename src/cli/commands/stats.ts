import { reachedTotals } from '../../engine/walk.js';
import { handle, type Register } from '../command.js';
import { asArray, chosenSnapshots, snapshotFilter, SNAPSHOT_FILTER_FLAGS } from '../args.js';
import { formatBytes } from '../output.js';

interface StatsArgs {
  snapshotIds: string[];
  host?: string[];
  tag?: string[];
  path?: string[];
}

const ratio = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}x` : '-');

export const registerStats: Register = (y) =>
  y.command(
    'stats [snapshotIds..]',
    'repository totals: what the snapshots hold, the data after deduplication, and what is stored. Given snapshot IDs or filters (--host, --tag, --path), ' +
      'the totals of those snapshots alone: their data after deduplication among them, read from their trees',
    (c) => c.positional('snapshotIds', { type: 'string', array: true, default: [] as string[] }).options(SNAPSHOT_FILTER_FLAGS),
    handle<StatsArgs>(async (ctx, a) => {
      const repo = await ctx.repository({ readOnly: true });
      const ids = asArray(a.snapshotIds);
      const selected = ids.length > 0 || [a.host, a.tag, a.path].some((f) => asArray(f).length > 0);
      const snapshots = selected ? await chosenSnapshots(repo, ids, snapshotFilter(a)) : await repo.listSnapshots();
      // Each snapshot's size as a restore of it would write: its summary's bytes read or kept.
      const restoreBytes = snapshots.reduce((s, e) => s + (e.snapshot.summary?.total_bytes_processed ?? 0), 0);
      const files = snapshots.reduce((s, e) => s + (e.snapshot.summary?.total_files_processed ?? 0), 0);
      const hosts = new Set(snapshots.map((e) => e.snapshot.hostname)).size;
      // The whole repository's blobs are the index's; a selection's, those its trees reach.
      const whole = selected ? undefined : repo.index.totals();
      const t = whole ?? (await reachedTotals(repo, snapshots.map((e) => e.snapshot.tree), ctx.signal));
      ctx.out.data({
        message_type: 'stats', selected, snapshots: snapshots.length, hosts, restore_bytes: restoreBytes, restore_files: files,
        data_blobs: t.data.count, data_bytes: t.data.rawBytes, data_stored_bytes: t.data.storedBytes, tree_blobs: t.tree.count, tree_bytes: t.tree.rawBytes, tree_stored_bytes: t.tree.storedBytes,
        ...(whole ? { data_packs: whole.packs.data.count, data_pack_bytes: whole.packs.data.bytes, meta_packs: whole.packs.meta.count, meta_pack_bytes: whole.packs.meta.bytes } : {}),
      });
      ctx.out.line(`snapshots:    ${snapshots.length}${selected ? ' selected' : ''} of ${hosts} hosts, ${files} files in all`);
      ctx.out.line(`restore size: ${formatBytes(restoreBytes)} (the files of every snapshot, each counted in full)`);
      ctx.out.line(`data:         ${formatBytes(t.data.rawBytes)} in ${t.data.count} blobs after deduplication (${ratio(restoreBytes, t.data.rawBytes)}), ${formatBytes(t.data.storedBytes)} stored (compression ${ratio(t.data.rawBytes, t.data.storedBytes)})`);
      ctx.out.line(`trees:        ${formatBytes(t.tree.rawBytes)} in ${t.tree.count} blobs, ${formatBytes(t.tree.storedBytes)} stored`);
      if (whole) {
        ctx.out.line(`packs:        ${whole.packs.data.count} data packs, ${formatBytes(whole.packs.data.bytes)}; ${whole.packs.meta.count} meta packs, ${formatBytes(whole.packs.meta.bytes)}`);
        ctx.out.info('blobs of forgotten snapshots count until `snap prune` removes them (`prune --dry-run` shows how much)');
      } else ctx.out.info('blobs these snapshots share with others count here too: forgetting them frees only what no other snapshot holds');
      return 0;
    }),
  );
