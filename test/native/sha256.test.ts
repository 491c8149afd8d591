// The native Sha256 (native/src/sha256.c) names packs: its digest must be SHA-256 of every part
// in order, whatever the parts' sizes and memory (shared or not), and misuse must throw, not hash
// the wrong bytes.
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { newSha256 } from '../../src/native/binding.js';

describe('native Sha256', () => {
  it('equals node:crypto over many updates of many parts, including shared memory and empty parts', async () => {
    for (const sizes of [[], [0], [1, 63, 64, 65], [1 << 20, 3, 0, 70_000]]) {
      const h = newSha256();
      const ref = createHash('sha256');
      for (let round = 0; round < 3; round++) {
        const parts = sizes.map((n, i) => {
          const p = i % 2 ? new Uint8Array(new SharedArrayBuffer(n + 5)).subarray(5) : randomBytes(n + 3).subarray(3);
          p.set(randomBytes(n));
          return p;
        });
        await h.update(parts);
        for (const p of parts) ref.update(p);
      }
      expect(h.digest().toString('hex')).toBe(ref.digest('hex'));
    }
  });

  it('allows one update at a time and one digest, and checks its arguments', async () => {
    const h = newSha256();
    const running = h.update([randomBytes(4 << 20)]);
    expect(() => h.update([Buffer.from('x')])).toThrow(/still running/);
    expect(() => h.digest()).toThrow(/still running/);
    await running;
    expect(() => h.update('x' as unknown as Uint8Array[])).toThrow(/array of Uint8Arrays/);
    expect(() => h.update([42 as unknown as Uint8Array])).toThrow(/Uint8Array/);
    expect(h.digest()).toHaveLength(32);
    expect(() => h.digest()).toThrow(/already called/);
    expect(() => h.update([Buffer.from('x')])).toThrow(/already called/);
  });
});
