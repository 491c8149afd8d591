// The native and TypeScript FastCDC-2020 implementations agree bit for bit on random inputs and
// parameters; chunkStream gives the cuts of chunkBuffer; bad parameters are rejected.
import { describe, expect, it } from 'vitest';
import {
  chunkBuffer,
  chunkStream,
  createCutter,
  SlabPool,
  validateChunkerParams,
  type ChunkerParams,
  type Cutter,
  type ReadFn,
} from '../../src/chunker/index.js';
import { nativeCutterClass } from '../../src/native/binding.js';
import { UsageError } from '../../src/errors.js';

/** splitmix64: a deterministic PRNG (u64 as bigint, plus helpers). */
function prng(seed: bigint) {
  let s = seed & 0xffffffffffffffffn;
  const next64 = (): bigint => {
    s = (s + 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
    let z = s;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & 0xffffffffffffffffn;
    return z ^ (z >> 31n);
  };
  const int = (lo: number, hi: number): number => lo + Number(next64() % BigInt(hi - lo + 1));
  const fraction = (): number => Number(next64() >> 11n) / 2 ** 53;
  return { next64, int, fraction };
}
type Rng = ReturnType<typeof prng>;

/** Pseudo-random bytes from a xorshift32 stream, with some runs of zeroes and repeated blocks. */
function makeInput(rng: Rng, size: number): Buffer {
  const words = new Int32Array(Math.ceil(size / 4));
  let x = Number(rng.next64() & 0xffffffffn) | 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
  const buf = Buffer.from(words.buffer, 0, size);
  // A zero run (forces max-size cuts) and a copied block (exercises deduplicating cuts).
  if (size > 1 << 16) {
    const z = rng.int(0, size - 40000);
    buf.fill(0, z, z + rng.int(1, 40000));
    const from = rng.int(0, size >>> 1), len = rng.int(1, size >>> 2), to = rng.int(0, size - len);
    buf.copy(buf, to, from, from + len);
  }
  return buf;
}

function randomParams(rng: Rng): ChunkerParams {
  const normalization = rng.int(0, 3) as 0 | 1 | 2 | 3;
  const avg = Math.floor(2 ** (8 + rng.fraction() * 8)); // 256 B .. 64 KiB
  const min = rng.int(64, avg);
  const max = rng.int(Math.max(avg, 1024), Math.max(avg, 1024) * 8);
  const seedKind = rng.int(0, 3);
  const seed = seedKind === 0 ? 0n : seedKind === 1 ? BigInt(rng.int(1, 1000)) : rng.next64();
  return { min, avg, max, normalization, seed };
}

function readerOver(buf: Uint8Array, maxPerCall = Infinity): ReadFn {
  let pos = 0;
  return async (dst, offset, length) => {
    const n = Math.min(length, buf.length - pos, maxPerCall);
    dst.set(buf.subarray(pos, pos + n), offset);
    pos += n;
    return n;
  };
}

async function streamCuts(buf: Uint8Array, cutter: Cutter, readSize: number, maxPerCall?: number) {
  const cuts: { length: number; hash: bigint }[] = [];
  let expectedOffset = 0;
  for await (const c of chunkStream(readerOver(buf, maxPerCall), cutter, { readSize })) {
    expect(c.offset).toBe(expectedOffset);
    expect(c.data.equals(buf.subarray(c.offset, c.offset + c.data.length))).toBe(true);
    expectedOffset += c.data.length;
    cuts.push({ length: c.data.length, hash: c.hash });
  }
  return cuts;
}

describe('native and JS agree', () => {
  it('on seeded-random inputs, seeds, levels and parameters', () => {
    const rng = (prng(0x5eed_c0ffeen));
    let total = 0;
    let chunks = 0;
    for (let round = 0; round < 40; round++) {
      const params = randomParams(rng);
      const input = makeInput(rng, rng.int(0, 200_000));
      total += input.length;
      const a = chunkBuffer(input, createCutter(params, 'native'));
      const b = chunkBuffer(input, createCutter(params, 'js'));
      expect(b, JSON.stringify({ round, ...params, seed: String(params.seed) })).toEqual(a);
      expect(a.reduce((s, c) => s + c.length, 0)).toBe(input.length);
      for (const [i, c] of a.entries()) {
        expect(c.length).toBeLessThanOrEqual(params.max);
        // fastcdc-rs scans from 2 * floor(min / 2): with an odd min a chunk can be min - 1 long.
        if (i < a.length - 1) expect(c.length).toBeGreaterThanOrEqual(params.min & ~1);
      }
      chunks += a.length;
    }
    expect(total).toBeGreaterThan(2_000_000);
    expect(chunks).toBeGreaterThan(1000);
  });

  it('on large parameters over a few MiB (level 1, 16 MiB avg; level 3, 4 MiB avg)', () => {
    const rng = (prng(42n));
    const input = makeInput(rng, 3 << 20);
    for (const params of [
      { min: 1 << 20, avg: 16 << 20, max: 64 << 20, normalization: 1, seed: rng.next64() },
      { min: 65, avg: 4 << 20, max: 5 << 20, normalization: 3, seed: 0n },
      { min: 64, avg: 256, max: 1024, normalization: 3, seed: 0xffffffffffffffffn },
    ] as ChunkerParams[]) {
      const a = chunkBuffer(input, createCutter(params, 'native'));
      expect(chunkBuffer(input, createCutter(params, 'js'))).toEqual(a);
    }
  });

  it('different seeds give different cuts', () => {
    const rng = (prng(7n));
    const input = makeInput(rng, 1 << 20);
    const base = { min: 1024, avg: 4096, max: 16384, normalization: 1 as const };
    const a = chunkBuffer(input, createCutter({ ...base, seed: 0n }));
    const b = chunkBuffer(input, createCutter({ ...base, seed: 0x1234_5678_9abcn }));
    expect(a.map((c) => c.length)).not.toEqual(b.map((c) => c.length));
    // As in fastcdc-rs, seed bits above the highest mask bit (48) change only the reported hash:
    // carries run upwards, so they never reach the masked bits (gear_ls even drops bit 63).
    const c = chunkBuffer(input, createCutter({ ...base, seed: 1n << 63n }));
    expect(c.map((x) => x.length)).toEqual(a.map((x) => x.length));
    expect(c.map((x) => x.hash)).not.toEqual(a.map((x) => x.hash));
  });
});

describe('chunkStream', () => {
  it('gives exactly the cuts of chunkBuffer for any read size and short reads', async () => {
    const rng = (prng(99n));
    for (let round = 0; round < 12; round++) {
      const params = randomParams(rng);
      const input = makeInput(rng, rng.int(0, 150_000));
      const impl = round % 2 === 0 ? 'native' : 'js';
      const cutter = createCutter(params, impl);
      const expected = chunkBuffer(input, cutter);
      const readSize = rng.int(1, 70_000);
      const maxPerCall = round % 3 === 0 ? rng.int(1, 5000) : undefined;
      expect(await streamCuts(input, cutter, readSize, maxPerCall), `${round} ${impl} rs=${readSize}`).toEqual(expected);
    }
  });

  it('yields nothing for an empty input and whole chunks shorter than min', async () => {
    const cutter = createCutter({ min: 4096, avg: 16384, max: 65536, normalization: 1, seed: 0n });
    expect(await streamCuts(new Uint8Array(0), cutter, 1000)).toEqual([]);
    const small = Buffer.from('hello world');
    expect(await streamCuts(small, cutter, 3)).toEqual([{ length: small.length, hash: 0n }]);
  });

  it('reuses one buffer of max + readSize bytes and never asks for more than readSize', async () => {
    const rng = (prng(5n));
    const input = makeInput(rng, 1 << 20);
    const params: ChunkerParams = { min: 2048, avg: 8192, max: 32768, normalization: 2, seed: 3n };
    const cutter = createCutter(params);
    const readSize = 5000;
    const buffers = new Set<Uint8Array>();
    let biggestAsk = 0;
    const inner = readerOver(input);
    const spy: ReadFn = (dst, offset, length) => {
      buffers.add(dst);
      biggestAsk = Math.max(biggestAsk, length);
      expect(offset + length).toBeLessThanOrEqual(dst.length);
      return inner(dst, offset, length);
    };
    const lengths: number[] = [];
    const kept: Buffer[] = [];
    for await (const c of chunkStream(spy, cutter, { readSize })) {
      lengths.push(c.data.length);
      kept.push(c.data);
    }
    expect(lengths).toEqual(chunkBuffer(input, cutter).map((c) => c.length));
    expect(buffers.size).toBe(1);
    expect([...buffers][0]!.length).toBe(params.max + readSize);
    expect(biggestAsk).toBe(readSize);
    // Yielded data are copies: later compaction of the read buffer did not change them.
    expect(Buffer.concat(kept).equals(input)).toBe(true);
  });

  it('cuts in place from shared slabs, reusing each once its chunks are released', async () => {
    const rng = prng(7n);
    for (let round = 0; round < 6; round++) {
      const params = randomParams(rng);
      const input = makeInput(rng, rng.int(0, 400_000));
      const cutter = createCutter(params, round % 2 === 0 ? 'native' : 'js');
      const readSize = rng.int(1, 40_000);
      const pool = new SlabPool(params.max + readSize + rng.int(0, 100), 2);
      const slabsSeen = new Set<ArrayBufferLike>();
      const expected = chunkBuffer(input, cutter);
      const held: { data: Buffer; offset: number; release: () => void }[] = [];
      const cuts: { length: number; hash: bigint }[] = [];
      for await (const c of chunkStream(readerOver(input, round % 3 === 0 ? 999 : Infinity), cutter, { readSize, slabs: pool })) {
        expect(c.data.buffer).toBeInstanceOf(SharedArrayBuffer);
        slabsSeen.add(c.data.buffer);
        cuts.push({ length: c.data.length, hash: c.hash });
        // Hold the last two chunks: what they see must not change while they are held.
        held.push(c);
        while (held.length > 2) {
          const h = held.shift()!;
          expect(h.data.equals(input.subarray(h.offset, h.offset + h.data.length))).toBe(true);
          h.release();
          h.release(); // a second release is ignored
        }
      }
      for (const h of held) {
        expect(h.data.equals(input.subarray(h.offset, h.offset + h.data.length))).toBe(true);
        h.release();
      }
      expect(cuts, `round ${round}`).toEqual(expected);
      expect(slabsSeen.size).toBeLessThanOrEqual(2);
    }
  });

  it('waits for a free slab while every slab holds unreleased chunks', async () => {
    const rng = prng(8n);
    const input = makeInput(rng, 1 << 20);
    const params: ChunkerParams = { min: 2048, avg: 8192, max: 32768, normalization: 1, seed: 0n };
    const cutter = createCutter(params);
    const pool = new SlabPool(params.max + 16384, 2);
    const it = chunkStream(readerOver(input), cutter, { readSize: 16384, slabs: pool });
    // Keep every chunk: once both slabs hold some, the stream cannot move its tail anywhere.
    const kept: { release: () => void }[] = [];
    let stalled = false;
    for (;;) {
      const next = it.next();
      const r = await Promise.race([next, new Promise<'stalled'>((res) => setTimeout(() => res('stalled'), 200))]);
      if (r === 'stalled') {
        stalled = true;
        // Releasing the chunks frees the first slab, and the stream goes on to the end.
        for (const k of kept) k.release();
        let total = 0;
        let n = await next;
        while (!n.done) {
          total += n.value.data.length;
          n.value.release();
          n = await it.next();
        }
        expect(total).toBeGreaterThan(0);
        break;
      }
      if (r.done) break;
      kept.push(r.value);
    }
    expect(stalled).toBe(true);
    expect(() => new SlabPool(1024, 1)).toThrow(RangeError);
    await expect(chunkStream(readerOver(input), cutter, { readSize: 16384, slabs: new SlabPool(1024, 2) }).next()).rejects.toThrow(RangeError);
  });

  it('stops with the abort reason when the signal fires', async () => {
    const rng = (prng(6n));
    const input = makeInput(rng, 1 << 20);
    const cutter = createCutter({ min: 1024, avg: 4096, max: 16384, normalization: 1, seed: 0n });
    const ac = new AbortController();
    let seen = 0;
    const run = async () => {
      for await (const _ of chunkStream(readerOver(input), cutter, { readSize: 8192, signal: ac.signal })) {
        if (++seen === 3) ac.abort(new Error('stop here'));
      }
    };
    await expect(run()).rejects.toThrow('stop here');
    expect(seen).toBe(3);
  });

  it('rejects a bad readSize and a reader that over-reports', async () => {
    const cutter = createCutter({ min: 1024, avg: 4096, max: 16384, normalization: 1, seed: 0n });
    const drain = async (read: ReadFn, readSize?: number) => {
      for await (const _ of chunkStream(read, cutter, readSize === undefined ? {} : { readSize })) {
        /* consume */
      }
    };
    await expect(drain(readerOver(new Uint8Array(10)), 0)).rejects.toThrow(UsageError);
    await expect(drain(async (_b, _o, length) => length + 1)).rejects.toThrow(RangeError);
  });
});

describe('parameter validation', () => {
  const good: ChunkerParams = { min: 4096, avg: 16384, max: 65536, normalization: 1, seed: 0n };
  const bad: [string, Partial<ChunkerParams> | Record<string, unknown>, RegExp][] = [
    ['min too small', { min: 63 }, /min size must be between 64 bytes/],
    ['min too large', { min: 1048577, avg: 2 << 20, max: 4 << 20 }, /min size must be between/],
    ['min not an integer', { min: 4096.5 }, /min size must be an integer/],
    ['avg too small', { min: 64, avg: 255 }, /average size must be between 256/],
    ['avg too large', { min: 64, avg: (16 << 20) + 1, max: 64 << 20 }, /average size must be between/],
    ['max too small', { min: 64, avg: 256, max: 1023 }, /max size must be between 1 KiB/],
    ['max too large', { max: (64 << 20) + 1 }, /max size must be between/],
    ['min > avg', { min: 20000 }, /min size \(20000\) must not exceed the average size/],
    ['avg > max', { avg: 70000, max: 65536 }, /average size \(70000\) must not exceed the max size/],
    ['level 4', { normalization: 4 }, /normalization level must be 0, 1, 2 or 3/],
    ['avg too large for level', { avg: 16 << 20, max: 64 << 20, normalization: 2 }, /too large for normalization level 2/],
    ['negative seed', { seed: -1n }, /seed must be between 0 and 2\^64 - 1/],
    ['seed too large', { seed: 1n << 64n }, /seed must be between/],
    ['number seed', { seed: 5 }, /seed must be a bigint/],
  ];

  it.each(bad)('%s: UsageError from validateChunkerParams and createCutter', (_name, patch, message) => {
    const params = { ...good, ...patch } as ChunkerParams;
    expect(() => validateChunkerParams(params)).toThrow(UsageError);
    expect(() => validateChunkerParams(params)).toThrow(message);
    expect(() => createCutter(params, 'native')).toThrow(message);
    expect(() => createCutter(params, 'js')).toThrow(message);
  });

  it('accepts the limits', () => {
    for (const params of [
      { min: 64, avg: 256, max: 1024, normalization: 3, seed: 0n },
      { min: 1 << 20, avg: 16 << 20, max: 64 << 20, normalization: 1, seed: (1n << 64n) - 1n },
      { min: 1 << 20, avg: 8 << 20, max: 64 << 20, normalization: 2, seed: 0n },
      { min: 1 << 20, avg: 4 << 20, max: 64 << 20, normalization: 3, seed: 0n },
    ] as ChunkerParams[]) {
      expect(() => validateChunkerParams(params)).not.toThrow();
      expect(createCutter(params, 'native').params).toEqual(params);
      expect(createCutter(params, 'js').params).toEqual(params);
    }
  });

  it('the native class itself throws RangeError/TypeError with clear messages', () => {
    const Cutter = nativeCutterClass();
    expect(() => new Cutter(63, 256, 1024, 1, 0n)).toThrow(RangeError);
    expect(() => new Cutter(63, 256, 1024, 1, 0n)).toThrow(/min size must be between 64 bytes/);
    expect(() => new Cutter(64, 256, 1023, 1, 0n)).toThrow(/max size must be between/);
    expect(() => new Cutter(64, 16 << 20, 64 << 20, 3, 0n)).toThrow(/too large for this normalization level/);
    expect(() => new Cutter(64, 256, 1024, 4, 0n)).toThrow(/normalization level is out of range/);
    expect(() => new Cutter(64, 256, 1024, 1, -1n)).toThrow(/seed must be between 0 and 2\^64 - 1/);
    expect(() => new Cutter(64, 256, 1024, 1, 1n << 64n)).toThrow(RangeError);
    expect(() => new Cutter('64' as unknown as number, 256, 1024, 1, 0n)).toThrow(TypeError);
    const c = new Cutter(64, 256, 1024, 1, 0n);
    const buf = new Uint8Array(100);
    expect(() => c.cut(buf, 50, 51)).toThrow(RangeError);
    expect(() => c.cut(buf, 101, 0)).toThrow(RangeError);
    expect(() => c.cut(buf, -1, 0)).toThrow(RangeError);
    expect(() => c.cut(new Uint16Array(4) as unknown as Uint8Array, 0, 4)).toThrow(TypeError);
    expect(c.cut(buf, 50, 50)).toEqual([50, 0n]);
  });

  it('the JS cutter rejects out-of-bounds cuts', () => {
    const c = createCutter(good, 'js');
    expect(() => c.cut(new Uint8Array(100), 50, 51)).toThrow(RangeError);
    expect(() => c.cut(new Uint8Array(100), -1, 1)).toThrow(RangeError);
  });
});
