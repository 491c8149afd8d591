// Chunker throughput: native vs TypeScript FastCDC-2020 on 256 MiB of seeded pseudo-random data,
// min 512 KiB / avg 1 MiB / max 8 MiB, normalization level 1; best of 3, one core.
// Run: node dist/bench/chunker.js

import { xorshift32 } from './prng.js';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chunkBuffer, createCutter, type ChunkerParams } from '../src/chunker/index.js';

export const BENCH_CHUNKER_PARAMS: ChunkerParams = {
  min: 512 * 1024,
  avg: 1024 * 1024,
  max: 8 * 1024 * 1024,
  normalization: 1,
  seed: 0n,
};

/** size deterministic pseudo-random bytes. */
export function pseudoRandomBytes(size: number, seed = 0x9e3779b9): Buffer {
  return xorshift32(seed).bytes(size);
}

function bestOf(runs: number, data: Buffer, impl: 'native' | 'js'): { mbps: number; chunks: number } {
  const cutter = createCutter(BENCH_CHUNKER_PARAMS, impl);
  let best = Infinity;
  let chunks = 0;
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    chunks = chunkBuffer(data, cutter).length;
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    best = Math.min(best, seconds);
  }
  return { mbps: data.length / 1e6 / best, chunks };
}

export async function benchChunker(): Promise<{ nativeMBps: number; jsMBps: number }> {
  const data = pseudoRandomBytes(256 * 1024 * 1024);
  const native = bestOf(3, data, 'native');
  const js = bestOf(3, data, 'js');
  return { nativeMBps: Math.round(native.mbps), jsMBps: Math.round(js.mbps) };
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  const r = await benchChunker();
  console.log(`chunker (FastCDC-2020, 512K/1M/8M, level 1, 256 MiB): native ${r.nativeMBps} MB/s, js ${r.jsMBps} MB/s`);
}
