import { handle, type Register } from '../command.js';
import { formatBytes } from '../output.js';

const ratio = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}x` : '-');

export const registerStats: Register = (y) =>
  y.command(
    'stats',
    'repository totals: what the snapshots hold, the data after deduplication, and what is stored',
    (c) => c,
    handle(async (ctx) => {
      const repo = await ctx.repository({ readOnly: true });
      const snapshots = await repo.listSnapshots();
      // Each snapshot's size as a restore of it would write: its summary's bytes read or kept.
      const restoreBytes = snapshots.reduce((s, e) => s + (e.snapshot.summary?.total_bytes_processed ?? 0), 0);
      const files = snapshots.reduce((s, e) => s + (e.snapshot.summary?.total_files_processed ?? 0), 0);
      const hosts = new Set(snapshots.map((e) => e.snapshot.hostname)).size;
      const t = repo.index.totals();
      ctx.out.data({ message_type: 'stats', snapshots: snapshots.length, hosts, restore_bytes: restoreBytes, restore_files: files, data_blobs: t.data.count, data_bytes: t.data.rawBytes, data_stored_bytes: t.data.storedBytes, tree_blobs: t.tree.count, tree_bytes: t.tree.rawBytes, tree_stored_bytes: t.tree.storedBytes, data_packs: t.packs.data.count, data_pack_bytes: t.packs.data.bytes, meta_packs: t.packs.meta.count, meta_pack_bytes: t.packs.meta.bytes });
      ctx.out.line(`snapshots:    ${snapshots.length} of ${hosts} hosts, ${files} files in all`);
      ctx.out.line(`restore size: ${formatBytes(restoreBytes)} (the files of every snapshot, each counted in full)`);
      ctx.out.line(`data:         ${formatBytes(t.data.rawBytes)} in ${t.data.count} blobs after deduplication (${ratio(restoreBytes, t.data.rawBytes)}), ${formatBytes(t.data.storedBytes)} stored (compression ${ratio(t.data.rawBytes, t.data.storedBytes)})`);
      ctx.out.line(`trees:        ${formatBytes(t.tree.rawBytes)} in ${t.tree.count} blobs, ${formatBytes(t.tree.storedBytes)} stored`);
      ctx.out.line(`packs:        ${t.packs.data.count} data packs, ${formatBytes(t.packs.data.bytes)}; ${t.packs.meta.count} meta packs, ${formatBytes(t.packs.meta.bytes)}`);
      ctx.out.info('blobs of forgotten snapshots count until `snap prune` removes them (`prune --dry-run` shows how much)');
      return 0;
    }),
  );
