// snap keeps its zstd compression contexts from one blob to the next (per level and input size):
// each frame must still be exactly what zstd makes of that input at that level alone.
import { describe, expect, it } from 'vitest';
import { compress } from 'zstd-napi';
import { compressIfSmaller, zstdCompressBorrowed, zstdDecompress } from '../../src/compress/zstd.js';
import { prng } from '../helpers/tree.js';

/** Compressible text of `n` bytes, different for each seed. */
function text(seed: number, n: number): Buffer {
  const r = prng(seed);
  const words = ['index', 'pack', 'blob', 'tree', 'snapshot', 'chunk', 'key', 'lock'];
  const parts: string[] = [];
  for (let len = 0; len < n; ) {
    const w = words[r.next() % words.length]!;
    parts.push(w);
    len += w.length + 1;
  }
  return Buffer.from(parts.join(' ').slice(0, n));
}

describe('zstd compression', () => {
  it('gives each input the frame zstd makes alone at the level asked for, whatever was compressed before', () => {
    // Small and large inputs, two levels, interleaved: every context is reused across sizes.
    const sizes = [100, 16 << 10, (16 << 10) + 1, 1 << 20, 3000, 200_000, 64, 4 << 20, 10_000];
    let seed = 1;
    for (let round = 0; round < 3; round++) {
      for (const level of [3, 1]) {
        for (const n of sizes) {
          const data = text(seed++, n);
          const frame = Buffer.from(zstdCompressBorrowed(data, level));
          expect(frame.equals(compress(data, { compressionLevel: level })), `${n} bytes at level ${level}`).toBe(true);
          expect(zstdDecompress(frame).equals(data)).toBe(true);
        }
      }
    }
  });

  it('stores incompressible and empty input raw', () => {
    expect(compressIfSmaller(prng(7).bytes(50_000), 3)).toBeNull();
    expect(compressIfSmaller(Buffer.alloc(0), 3)).toBeNull();
    expect(compressIfSmaller(text(8, 50_000), 3)!.length).toBeLessThan(50_000);
  });
});
