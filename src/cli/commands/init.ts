import { Repository } from '../../repository/repository.js';
import { STORAGE_CLASSES, type StorageClass } from '../../backend/backend.js';
import { UsageError } from '../../errors.js';
import { handle, type Register } from '../command.js';
import { parseSize } from '../args.js';

interface InitArgs {
  dataStorageClass: string;
  chunkMin?: string;
  chunkAvg?: string;
  chunkMax?: string;
  compressionLevel: number;
  packSize?: string;
  kdfN?: number;
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
        .option('kdf-n', { type: 'number', hidden: true, describe: 'scrypt N for the key (tests only: lowers password-guessing cost)' }),
    handle<InitArgs>(async (ctx, a) => {
      const cls = a.dataStorageClass.toUpperCase();
      if (!STORAGE_CLASSES.includes(cls as StorageClass)) throw new UsageError(`--data-storage-class: unknown class "${a.dataStorageClass}" (one of ${STORAGE_CLASSES.join(', ')})`);
      const chunker: { min?: number; avg?: number; max?: number } = {};
      if (a.chunkMin) chunker.min = parseSize(a.chunkMin, '--chunk-min');
      if (a.chunkAvg) chunker.avg = parseSize(a.chunkAvg, '--chunk-avg');
      if (a.chunkMax) chunker.max = parseSize(a.chunkMax, '--chunk-max');
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
      });
      ctx.out.info(`created snap repository ${repo.config.id.slice(0, 10)} at ${backend.location}`);
      ctx.out.info('Keep the password safe: without it the data cannot be recovered.');
      ctx.out.data({ message_type: 'initialized', id: repo.config.id, repository: backend.location });
      return 0;
    }),
  );
