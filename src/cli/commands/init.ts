import { Repository } from '../../repository/repository.js';
import { STORAGE_CLASSES, type StorageClass } from '../../backend/backend.js';
import { UsageError } from '../../errors.js';
import type { ChunkerParams } from '../../chunker/params.js';
import { handle, type Register } from '../command.js';
import { SOURCE_REPOSITORY_FLAGS, sourceContext, type Context, type SourceRepositoryArgs } from '../context.js';
import { parseSize } from '../args.js';

interface InitArgs extends SourceRepositoryArgs {
  dataStorageClass: string;
  chunkMin?: string;
  chunkAvg?: string;
  chunkMax?: string;
  compressionLevel: number;
  packSize?: string;
  kdfN?: number;
  copyChunkerParams: boolean;
}

export const registerInit: Register = (y) =>
  y.command(
    'init',
    'create a new repository',
    (c) =>
      c
        .option('data-storage-class', { type: 'string', default: 'STANDARD', describe: `S3 storage class for data packs (${STORAGE_CLASSES.join(', ')}); metadata always stays instantly readable` })
        .option('chunk-min', { type: 'string', describe: 'FastCDC minimum chunk size (default 512K)' })
        .option('chunk-avg', { type: 'string', describe: 'FastCDC average chunk size (default 1M)' })
        .option('chunk-max', { type: 'string', describe: 'FastCDC maximum chunk size (default 8M)' })
        .option('pack-size', { type: 'string', describe: 'target size of data packs (default 16M; smaller packs thaw less for cold-storage restores)' })
        .option('compression-level', { type: 'number', default: 3, describe: 'zstd level for blobs' })
        .option('copy-chunker-params', { type: 'boolean', default: false, describe: "use the chunk sizes, secret seed and blob ID key of the repository --from-repo, so that snapshots copied from it (snap copy) deduplicate with this repository's own backups, and a copy reads only the data this repository lacks" })
        .options(SOURCE_REPOSITORY_FLAGS)
        .option('kdf-n', { type: 'number', hidden: true, describe: 'scrypt N for the key (tests only: lowers password-guessing cost)' }),
    handle<InitArgs>(async (ctx, a) => {
      const cls = a.dataStorageClass.toUpperCase();
      if (!STORAGE_CLASSES.includes(cls as StorageClass)) throw new UsageError(`--data-storage-class: unknown class "${a.dataStorageClass}" (one of ${STORAGE_CLASSES.join(', ')})`);
      let chunker: Partial<ChunkerParams> = {};
      let idKey: Buffer | undefined;
      if (a.chunkMin) chunker.min = parseSize(a.chunkMin, '--chunk-min');
      if (a.chunkAvg) chunker.avg = parseSize(a.chunkAvg, '--chunk-avg');
      if (a.chunkMax) chunker.max = parseSize(a.chunkMax, '--chunk-max');
      if (a.copyChunkerParams) {
        if (Object.keys(chunker).length > 0) throw new UsageError('--copy-chunker-params takes the chunk sizes from --from-repo: give no --chunk-min/--chunk-avg/--chunk-max');
        ({ chunker, idKey } = await sourceParams(ctx, a));
      } else if (a.fromRepo) throw new UsageError('--from-repo is used with --copy-chunker-params');
      const backend = await ctx.backend();
      await backend.create();
      await Repository.ensureAbsent(backend);
      const password = await ctx.password('enter password for new repository: ', true);
      const repo = await Repository.init(backend, password, {
        chunker,
        compressionLevel: a.compressionLevel,
        ...(a.packSize ? { dataPackTarget: parseSize(a.packSize, '--pack-size') } : {}),
        dataStorageClass: cls as StorageClass,
        ...(a.kdfN ? { kdfN: a.kdfN } : {}),
        ...(idKey ? { idKey } : {}),
      });
      ctx.out.info(`created snap repository ${repo.config.id.slice(0, 10)} at ${backend.location}`);
      ctx.out.info('Keep the password safe: without it the data cannot be recovered.');
      ctx.out.data({ message_type: 'initialized', id: repo.config.id, repository: backend.location });
      return 0;
    }),
  );

/** The chunker parameters (seed included) and blob ID key of --from-repo (format-spec ch. 4): its config and keys only (no lock, no index). */
async function sourceParams(ctx: Context, a: InitArgs): Promise<{ chunker: ChunkerParams; idKey: Buffer }> {
  const from = sourceContext(ctx, a);
  try {
    const src = await from.repository({ index: false, lock: 'none', cache: false, readOnly: true });
    return { chunker: src.config.chunker, idKey: src.keys.id };
  } finally {
    await from.close();
  }
}
