import { Catalog, catalogFile, type SyncOptions, type SyncResult } from '../../catalog/catalog.js';
import type { Repository } from '../../repository/repository.js';
import { handle, type Register } from '../command.js';
import type { Context } from '../context.js';
import { formatBytes, formatDuration } from '../output.js';

/** Opens this repository's catalog and syncs it, reporting rebuilds and repairs as warnings. */
export async function syncedCatalog(ctx: Context, opts: { rebuild?: boolean } & Pick<SyncOptions, 'fresh' | 'chain'> = {}): Promise<{ catalog: Catalog; result: SyncResult; repo: Repository }> {
  // The index is loaded by sync only when there are new snapshots to walk.
  const repo = await ctx.repository({ index: false, readOnly: true });
  let catalog = Catalog.open(catalogFile(repo.config.id, ctx.args.cacheDir), repo.config.id);
  for (const n of catalog.notes) ctx.out.warn(n);
  if (opts.rebuild) catalog = catalog.reset();
  try {
    const result = await catalog.sync(repo, {
      signal: ctx.signal,
      onProgress: (done, total) => ctx.out.progress(`catalog: ${done}/${total} new snapshots`),
      ...(opts.fresh ? { fresh: opts.fresh } : {}),
      ...(opts.chain ? { chain: opts.chain } : {}),
    });
    ctx.out.clearProgress();
    return { catalog, result, repo };
  } catch (e) {
    // Another process holds the write lock for longer than the busy timeout (adding a snapshot
    // of millions of files): answer from the catalog as it is rather than not at all.
    if ((e as { code?: string }).code === 'SQLITE_BUSY' && !opts.rebuild) {
      ctx.out.clearProgress();
      ctx.out.warn('another snap process is updating the catalog: this command uses it as it is, and the newest snapshots may be missing from it');
      return { catalog, result: { added: 0, removed: 0, treesLoaded: 0 }, repo };
    }
    catalog.close();
    throw e;
  }
}

/**
 * Called by `snap backup` once its snapshot is saved (with the trees it stored, and its chain: the
 * snapshots of other hosts are left to the next find), and by forget and prune: what they did
 * stands even if this fails.
 */
export async function catalogAfterBackup(ctx: Context, opts: Pick<SyncOptions, 'fresh' | 'chain'> = {}): Promise<void> {
  try {
    (await syncedCatalog(ctx, opts)).catalog.close();
  } catch (e) {
    ctx.out.warn(`the catalog was not updated (${(e as Error).message}); the next find/versions/calendar will sync it`);
  }
}

export const registerCatalog: Register = (y) =>
  y.command('catalog <action>', 'maintain the local metadata catalog used by find, versions and calendar', (c) =>
    c
      .positional('action', { choices: ['sync', 'rebuild'] as const, describe: 'sync: add new snapshots, drop forgotten ones; rebuild: start from scratch' })
      .strict(),
  handle<{ action: 'sync' | 'rebuild' }>(async (ctx, a) => {
    const t0 = Date.now();
    const { catalog, result } = await syncedCatalog(ctx, { rebuild: a.action === 'rebuild' });
    try {
      const st = catalog.stats();
      const ms = Date.now() - t0;
      ctx.out.data({ message_type: 'catalog', action: a.action, file: catalog.file, added: result.added, removed: result.removed, trees_loaded: result.treesLoaded, duration_ms: ms, ...st });
      ctx.out.info(`catalog ${catalog.file}`);
      ctx.out.info(`${result.added} snapshots added, ${result.removed} removed, ${result.treesLoaded} trees read in ${formatDuration(ms)}`);
      ctx.out.info(`${st.snapshots} snapshots, ${st.paths} paths, ${st.versions} versions, ${formatBytes(st.bytes)}`);
      return 0;
    } finally {
      catalog.close();
    }
  }),
  );
