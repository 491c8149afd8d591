// Pack layout (format-spec ch. 5): blobs || seal(header) || u32 LE length of the sealed header.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { open, seal } from '../../src/crypto/aead.js';
import { decodeHeader, encodeHeader, ENTRY_SIZE, packTrailer, readPackHeader, type PackEntry } from '../../src/format/pack.js';

const key = randomBytes(32);

function makePack(sizes: number[], compressed: boolean[] = []): { bytes: Buffer; entries: PackEntry[] } {
  const entries: PackEntry[] = [];
  const parts: Buffer[] = [];
  let offset = 0;
  sizes.forEach((n, i) => {
    const sealed = seal(key, randomBytes(n));
    entries.push({ id: randomBytes(32).toString('hex'), type: 'data', offset, length: sealed.length, rawLength: n * 2 + i, compressed: compressed[i] ?? false });
    parts.push(sealed);
    offset += sealed.length;
  });
  return { bytes: Buffer.concat([...parts, packTrailer(key, entries)]), entries };
}

describe('pack header', () => {
  it('encodes 1 + 44 bytes per entry and decodes to the same entries, offsets recomputed from lengths', () => {
    const entries: PackEntry[] = [
      { id: 'a'.repeat(64), type: 'tree', offset: 0, length: 100, rawLength: 300, compressed: true },
      { id: '0123456789abcdef'.repeat(4), type: 'tree', offset: 100, length: 40, rawLength: 0, compressed: false },
      { id: 'f'.repeat(64), type: 'tree', offset: 140, length: 0xffffffff, rawLength: 0xfffffffe, compressed: false },
    ];
    const h = encodeHeader(entries);
    expect(h.length).toBe(1 + 3 * ENTRY_SIZE);
    expect(ENTRY_SIZE).toBe(44);
    expect(h[0]).toBe(1);
    expect([h[1], h[2], h[3], h[4]]).toEqual([1, 1, 0, 0]);
    expect(h.readUInt32LE(5)).toBe(100);
    expect(h.readUInt32LE(9)).toBe(300);
    expect(h.toString('hex', 13, 45)).toBe('a'.repeat(64));
    expect(decodeHeader(h)).toEqual(entries);
    // Offsets in the input are not stored: they come back as the running sum.
    expect(decodeHeader(encodeHeader(entries.map((e) => ({ ...e, offset: 999 }))))).toEqual(entries);
    expect(decodeHeader(encodeHeader([]))).toEqual([]);
  });

  it('decodeHeader rejects an unknown version, a partial entry and an unknown blob type', () => {
    const h = encodeHeader([{ id: 'a'.repeat(64), type: 'data', offset: 0, length: 41, rawLength: 1, compressed: false }]);
    const v2 = Buffer.from(h);
    v2[0] = 2;
    expect(() => decodeHeader(v2)).toThrow(/version/);
    expect(() => decodeHeader(Buffer.alloc(0))).toThrow(/version/);
    expect(() => decodeHeader(h.subarray(0, h.length - 1))).toThrow(/whole number/);
    expect(() => decodeHeader(Buffer.concat([h, Buffer.alloc(1)]))).toThrow(/whole number/);
    const t2 = Buffer.from(h);
    t2[1] = 2;
    expect(() => decodeHeader(t2)).toThrow(/blob type/);
    expect(decodeHeader(h)).toHaveLength(1);
  });

  it('packTrailer is seal(header) || u32 LE length; a given nonce makes it deterministic', () => {
    const { entries } = makePack([10, 20]);
    const t = packTrailer(key, entries);
    const len = t.readUInt32LE(t.length - 4);
    expect(len).toBe(t.length - 4);
    expect(len).toBe(1 + 2 * 44 + 40);
    expect(open(key, t.subarray(0, len))!.equals(encodeHeader(entries))).toBe(true);
    expect(packTrailer(key, entries).equals(t)).toBe(false);
    const nonce = randomBytes(24);
    const fixed = packTrailer(key, entries, nonce);
    expect(fixed.subarray(0, 24).equals(nonce)).toBe(true);
    expect(packTrailer(key, entries, nonce).equals(fixed)).toBe(true);
  });
});

describe('readPackHeader', () => {
  const { bytes, entries } = makePack([0, 1, 1000, 5], [false, true, false, true]);

  it('reads the entries of an intact pack', () => {
    expect(readPackHeader(key, bytes)).toEqual(entries);
    const empty = packTrailer(key, []);
    expect(readPackHeader(key, empty)).toEqual([]);
  });

  it('detects truncation at either end', () => {
    for (let cut = 1; cut <= 8; cut++) {
      expect(() => readPackHeader(key, bytes.subarray(cut)), `head -${cut}`).toThrow(/add up|authentication|outside/);
      expect(() => readPackHeader(key, bytes.subarray(0, bytes.length - cut)), `tail -${cut}`).toThrow();
    }
    expect(() => readPackHeader(key, bytes.subarray(0, 3))).toThrow(/shorter than its trailer/);
    expect(() => readPackHeader(key, bytes.subarray(0, 0))).toThrow(/shorter than its trailer/);
    // A blob missing from the middle: the header no longer sits where the lengths say.
    const e = entries[2]!;
    const holed = Buffer.concat([bytes.subarray(0, e.offset), bytes.subarray(e.offset + e.length)]);
    expect(() => readPackHeader(key, holed)).toThrow(/add up/);
  });

  it('detects any flipped byte in the sealed header', () => {
    const hlen = bytes.readUInt32LE(bytes.length - 4);
    const start = bytes.length - 4 - hlen;
    for (let i = start; i < bytes.length - 4; i++) {
      const t = Buffer.from(bytes);
      t[i]! ^= 0x40;
      expect(() => readPackHeader(key, t)).toThrow(/authentication failed/);
    }
  });

  it('detects a wrong length trailer', () => {
    const hlen = bytes.readUInt32LE(bytes.length - 4);
    for (const wrong of [0, 1, 39, hlen - 1, hlen + 1, hlen + 44, bytes.length - 4, bytes.length - 3, 0xffffffff]) {
      const t = Buffer.from(bytes);
      t.writeUInt32LE(wrong, t.length - 4);
      expect(() => readPackHeader(key, t), `length ${wrong}`).toThrow(/authentication failed|outside the pack/);
    }
    expect(() => readPackHeader(key, Buffer.concat([bytes, Buffer.from([0])]))).toThrow();
  });

  it('detects a header sealed with another key', () => {
    expect(() => readPackHeader(randomBytes(32), bytes)).toThrow(/authentication failed/);
  });

  it('detects a header whose blob lengths do not match the blobs before it', () => {
    const lying = entries.map((e, i) => (i === 0 ? { ...e, length: e.length + 1 } : e));
    const blobs = bytes.subarray(0, entries[3]!.offset + entries[3]!.length);
    expect(() => readPackHeader(key, Buffer.concat([blobs, packTrailer(key, lying)]))).toThrow(/add up/);
  });
});
