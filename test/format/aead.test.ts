// The sealed envelope (format-spec ch. 2.1): nonce || ciphertext || tag, all-or-nothing on open.
import { randomBytes } from 'node:crypto';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { describe, expect, it } from 'vitest';
import { NONCE_SIZE, open, openInto, seal, sealInto, SEAL_OVERHEAD, TAG_SIZE } from '../../src/crypto/aead.js';

const key = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');

describe('seal/open', () => {
  it('round-trips messages of many sizes, adding exactly 40 bytes', () => {
    expect(SEAL_OVERHEAD).toBe(40);
    for (const n of [0, 1, 15, 16, 17, 63, 64, 65, 1000, 65536 + 3, 1 << 20]) {
      const pt = randomBytes(n);
      const sealed = seal(key, pt);
      expect(sealed.length).toBe(n + 40);
      const back = open(key, sealed);
      expect(back).not.toBeNull();
      expect(back!.equals(pt)).toBe(true);
    }
  });

  it('empty plaintext seals to nonce || tag and opens to an empty buffer, not null', () => {
    const sealed = seal(key, Buffer.alloc(0));
    expect(sealed.length).toBe(NONCE_SIZE + TAG_SIZE);
    const back = open(key, sealed);
    expect(back).not.toBeNull();
    expect(back!.length).toBe(0);
  });

  it('draws a fresh nonce per message and puts it first; a fixed nonce is used verbatim', () => {
    const pt = Buffer.from('same plaintext');
    const a = seal(key, pt);
    const b = seal(key, pt);
    expect(a.subarray(0, 24).equals(b.subarray(0, 24))).toBe(false);
    expect(a.equals(b)).toBe(false);
    const nonce = randomBytes(24);
    const c = seal(key, pt, nonce);
    expect(c.subarray(0, 24).equals(nonce)).toBe(true);
    expect(seal(key, pt, nonce).equals(c)).toBe(true);
    // Same bytes as the reference implementation (empty associated data).
    expect(c.subarray(24).equals(Buffer.from(xchacha20poly1305(key, nonce).encrypt(pt)))).toBe(true);
  });

  it('rejects any single bit flip in nonce, ciphertext or tag', () => {
    const sealed = seal(key, Buffer.from('twenty bytes of text'));
    expect(sealed.length).toBe(60);
    let rejected = 0;
    for (let i = 0; i < sealed.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const t = Buffer.from(sealed);
        t[i]! ^= 1 << bit;
        if (open(key, t) === null) rejected++;
      }
    }
    expect(rejected).toBe(sealed.length * 8);
    expect(open(key, sealed)).not.toBeNull();
  });

  it('rejects every truncation and an appended byte', () => {
    const sealed = seal(key, Buffer.from('a message that will be cut short'));
    for (let len = 0; len < sealed.length; len++) expect(open(key, sealed.subarray(0, len))).toBeNull();
    for (let start = 1; start < sealed.length; start++) expect(open(key, sealed.subarray(start))).toBeNull();
    expect(open(key, Buffer.concat([sealed, Buffer.from([0])]))).toBeNull();
  });

  it('rejects the wrong key, including one differing in a single bit', () => {
    const sealed = seal(key, Buffer.from('secret'));
    expect(open(randomBytes(32), sealed)).toBeNull();
    for (const i of [0, 15, 16, 31]) {
      const k = Buffer.from(key);
      k[i]! ^= 0x80;
      expect(open(k, sealed)).toBeNull();
    }
    expect(open(key, sealed)?.toString()).toBe('secret');
  });

  it('agrees with @noble/ciphers on random keys, nonces and lengths (the native cipher against an independent one)', () => {
    for (let i = 0; i < 200; i++) {
      const k = randomBytes(32);
      const nonce = randomBytes(24);
      const pt = randomBytes(i < 100 ? i : Math.floor(Math.random() * 300_000));
      const sealed = seal(k, pt, nonce);
      expect(sealed.subarray(24).equals(Buffer.from(xchacha20poly1305(k, nonce).encrypt(pt)))).toBe(true);
      const noble = Buffer.concat([nonce, xchacha20poly1305(k, nonce).encrypt(pt)]);
      expect(open(k, noble)?.equals(pt)).toBe(true);
    }
  });

  it('sealInto() writes over its input in place, and into shared memory, as seal() would', () => {
    const nonce = randomBytes(24);
    for (const n of [0, 1, 64, 100_000]) {
      const pt = randomBytes(n);
      const shared = new Uint8Array(new SharedArrayBuffer(n + 8));
      shared.set(pt, 8);
      const view = shared.subarray(8);
      const env = new Uint8Array(SEAL_OVERHEAD);
      sealInto(key, view, view, env.subarray(0, NONCE_SIZE), env.subarray(NONCE_SIZE), nonce);
      const expected = seal(key, pt, nonce);
      expect(Buffer.from(env.subarray(0, NONCE_SIZE)).equals(nonce)).toBe(true);
      expect(Buffer.from(view).equals(expected.subarray(NONCE_SIZE, NONCE_SIZE + n))).toBe(true);
      expect(Buffer.from(env.subarray(NONCE_SIZE)).equals(expected.subarray(NONCE_SIZE + n))).toBe(true);
    }
  });

  it('sealInto() refuses output that is too short or overlaps the input without being it', () => {
    const buf = randomBytes(100);
    const nonce = Buffer.alloc(NONCE_SIZE);
    const tag = Buffer.alloc(TAG_SIZE);
    expect(() => sealInto(key, buf.subarray(0, 50), buf.subarray(10, 60), nonce, tag)).toThrow(/overlaps/);
    expect(() => sealInto(key, buf, Buffer.alloc(99), nonce, tag)).toThrow(/shorter/);
    expect(() => sealInto(key.subarray(1), buf, buf, nonce, tag)).toThrow(/32, 24 and 16/);
  });

  it('openInto() gives the length into a larger buffer, and -1 for a forgery', () => {
    const pt = randomBytes(1000);
    const sealed = seal(key, pt);
    const out = Buffer.alloc(2000);
    expect(openInto(key, sealed, out)).toBe(1000);
    expect(out.subarray(0, 1000).equals(pt)).toBe(true);
    sealed[500]! ^= 1;
    expect(openInto(key, sealed, out)).toBe(-1);
    expect(openInto(key, sealed.subarray(0, 39), out)).toBe(-1);
  });
});
