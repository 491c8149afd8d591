import { open } from 'node:fs/promises';
import { chunkStream, createCutter } from '../../chunker/index.js';
import { validateChunkerParams, type ChunkerParams } from '../../chunker/params.js';
import { NoSuchItemError, UsageError } from '../../errors.js';
import { handle, type Register } from '../command.js';
import { parseSize } from '../args.js';

interface ChunkArgs {
  file: string;
  min: string;
  avg: string;
  max: string;
  normalization: number;
  seed: string;
  impl: string;
}

export const registerDebug: Register = (y) =>
  y.command('debug', 'tools for checking snap against other implementations', (c) =>
    c
      .command(
        'chunk <file>',
        'print FastCDC-2020 chunk boundaries (offset, length, gear hash) of a file',
        (cc) =>
          cc
            .positional('file', { type: 'string', demandOption: true })
            .option('min', { type: 'string', default: '512K' })
            .option('avg', { type: 'string', default: '1M' })
            .option('max', { type: 'string', default: '8M' })
            .option('normalization', { type: 'number', default: 1, describe: 'normalization level 0-3' })
            .option('seed', { type: 'string', default: '0', describe: 'gear seed: decimal or 0x-hex u64' })
            .option('impl', { type: 'string', choices: ['native', 'js'], default: 'native', describe: 'chunker implementation' }),
        handle<ChunkArgs>(async (ctx, a) => {
          let seed: bigint;
          try {
            seed = BigInt(a.seed);
          } catch {
            throw new UsageError(`--seed: "${a.seed}" is not a number`);
          }
          const params: ChunkerParams = { min: parseSize(a.min, '--min'), avg: parseSize(a.avg, '--avg'), max: parseSize(a.max, '--max'), normalization: a.normalization as 0, seed };
          validateChunkerParams(params);
          const fh = await open(a.file, 'r').catch((e: { code?: string }) => {
            throw new NoSuchItemError(`${a.file}: ${e.code === 'ENOENT' ? 'no such file' : String(e.code)}`);
          });
          try {
            const cutter = createCutter(params, a.impl as 'native' | 'js');
            let n = 0;
            for await (const c of chunkStream((b, o, l) => fh.read(b, o, l, null).then((r) => r.bytesRead), cutter)) {
              ctx.out.data({ offset: c.offset, length: c.data.length, hash: c.hash.toString() });
              ctx.out.line(`${String(c.offset).padStart(12)} ${String(c.data.length).padStart(10)} ${c.hash.toString(16).padStart(16, '0')}`);
              n++;
            }
            if (n === 0) ctx.out.line('(empty file: no chunks)');
          } finally {
            await fh.close();
          }
          return 0;
        }),
      )
      .demandCommand(1, 'name a debug tool: snap debug chunk FILE'),
  );
