// Metadata objects (format-spec ch. 3.3): seal(format byte || JSON or zstd(JSON)).
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { open, seal } from '../../src/crypto/aead.js';
import { zstdCompressBorrowed } from '../../src/compress/zstd.js';
import { decodeMetadata, encodeMetadata } from '../../src/format/metadata.js';
import { IntegrityError, UnsupportedFormatError } from '../../src/errors.js';

const key = randomBytes(32);
const doc = { version: 1, time: '2026-11-23T17:45:00.000Z', paths: ['/etc', '/srv/www'], tags: Array.from({ length: 50 }, (_, i) => `tag-${i}`) };
const WHAT = 'snapshots/3fa1c0de';

function catchErr(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

describe('encodeMetadata/decodeMetadata', () => {
  it('raw: format byte 0x00 followed by the JSON text', () => {
    const stored = encodeMetadata(key, doc);
    const plain = open(key, stored)!;
    expect(plain[0]).toBe(0x00);
    expect(plain.subarray(1).toString('utf8')).toBe(JSON.stringify(doc));
    expect(decodeMetadata(key, stored, WHAT)).toEqual(doc);
  });

  it('compressed: format byte 0x01 followed by one zstd frame, smaller than raw for repetitive JSON', () => {
    const stored = encodeMetadata(key, doc, true);
    const plain = open(key, stored)!;
    expect(plain[0]).toBe(0x01);
    expect(plain.readUInt32LE(1)).toBe(0xfd2fb528); // zstd frame magic
    expect(stored.length).toBeLessThan(encodeMetadata(key, doc).length);
    expect(decodeMetadata(key, stored, WHAT)).toEqual(doc);
  });

  it('readers accept either format for any document, and any zstd level', () => {
    const json = Buffer.from(JSON.stringify(doc));
    const z19 = seal(key, Buffer.concat([Buffer.from([1]), zstdCompressBorrowed(json, 19)]));
    expect(decodeMetadata(key, z19, WHAT)).toEqual(doc);
  });

  it('a fixed nonce gives the same bytes twice; without one the bytes differ', () => {
    const nonce = randomBytes(24);
    expect(encodeMetadata(key, doc, false, nonce).equals(encodeMetadata(key, doc, false, nonce))).toBe(true);
    expect(encodeMetadata(key, doc).equals(encodeMetadata(key, doc))).toBe(false);
  });

  it('an unknown version is UnsupportedFormatError naming the object', () => {
    for (const version of [0, 2, '1', 1.5]) {
      for (const compressed of [false, true]) {
        const e = catchErr(() => decodeMetadata(key, encodeMetadata(key, { ...doc, version }, compressed), WHAT));
        expect(e).toBeInstanceOf(UnsupportedFormatError);
        expect((e as Error).message).toContain(WHAT);
      }
    }
  });

  it('tampering (any byte) is IntegrityError naming the object', () => {
    const stored = encodeMetadata(key, doc, true);
    for (const i of [0, 23, 24, 30, stored.length - 17, stored.length - 1]) {
      const t = Buffer.from(stored);
      t[i]! ^= 0x01;
      const e = catchErr(() => decodeMetadata(key, t, WHAT));
      expect(e).toBeInstanceOf(IntegrityError);
      expect((e as IntegrityError).object).toBe(WHAT);
      expect((e as Error).message.startsWith(`${WHAT}: `)).toBe(true);
    }
    const e = catchErr(() => decodeMetadata(key, stored.subarray(0, stored.length - 1), WHAT));
    expect((e as IntegrityError).object).toBe(WHAT);
  });

  it('another repository key is IntegrityError', () => {
    const e = catchErr(() => decodeMetadata(randomBytes(32), encodeMetadata(key, doc), WHAT));
    expect(e).toBeInstanceOf(IntegrityError);
    expect((e as IntegrityError).object).toBe(WHAT);
  });

  it('authentic but malformed contents are IntegrityError: unknown format byte, bad zstd, bad JSON, non-object JSON', () => {
    const bad = [
      Buffer.concat([Buffer.from([0x02]), Buffer.from(JSON.stringify(doc))]),
      Buffer.concat([Buffer.from([0x01]), Buffer.from('not a zstd frame')]),
      Buffer.concat([Buffer.from([0x00]), Buffer.from('{"version":1,')]),
      Buffer.concat([Buffer.from([0x00]), Buffer.from('[1,2,3]')]),
      Buffer.concat([Buffer.from([0x00]), Buffer.from('null')]),
      Buffer.alloc(0),
    ];
    for (const plain of bad) {
      const e = catchErr(() => decodeMetadata(key, seal(key, plain), WHAT));
      expect(e).toBeInstanceOf(IntegrityError);
      expect((e as IntegrityError).object).toBe(WHAT);
    }
  });
});
