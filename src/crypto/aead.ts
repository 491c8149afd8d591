// XChaCha20-Poly1305 (format-spec ch. 2.1), sealed and opened by the native addon (native/src/aead.c):
// HChaCha20 there derives a per-message subkey, and the OpenSSL that Node links does the bulk
// ChaCha20-Poly1305 into memory the caller gives, in place if asked. node:crypto cannot write into
// given memory: each blob cost a fresh buffer and a copy, which made sealing 3-5x slower.
import { randomFillSync } from 'node:crypto';
import { loadNative } from '../native/binding.js';

export const KEY_SIZE = 32;
export const NONCE_SIZE = 24;
export const TAG_SIZE = 16;
/** Bytes a sealed message adds to its plaintext. */
export const SEAL_OVERHEAD = NONCE_SIZE + TAG_SIZE;

// Random nonces are cut from a pool refilled from the CSPRNG 2730 nonces at a time: one
// randomFillSync per small blob cost ~10 us, a third of sealing a 1 KiB file. Each pool byte is
// handed out once (the offset only moves forward; the pool is refilled before it runs out).
const noncePool = Buffer.allocUnsafeSlow(NONCE_SIZE * 2730);
let noncePoolOffset = noncePool.length;

function freshNonce(): Buffer {
  if (noncePoolOffset + NONCE_SIZE > noncePool.length) {
    randomFillSync(noncePool);
    noncePoolOffset = 0;
  }
  const nonce = noncePool.subarray(noncePoolOffset, noncePoolOffset + NONCE_SIZE);
  noncePoolOffset += NONCE_SIZE;
  return nonce;
}

/**
 * Seals `plaintext` into `output` (its first plaintext.length bytes; `output` may be `plaintext`
 * itself), and writes the nonce (a fresh random one, or the given one: test vectors only) and the
 * tag. The stored form is nonce || ciphertext || tag.
 */
export function sealInto(
  key: Uint8Array,
  plaintext: Uint8Array,
  output: Uint8Array,
  nonce: Uint8Array,
  tag: Uint8Array,
  fixedNonce?: Uint8Array,
): void {
  nonce.set(fixedNonce ?? freshNonce());
  loadNative().seal(key, nonce, plaintext, output, tag);
}

/**
 * Writes the stored form (nonce || ciphertext || tag) of `plaintext` into `out` at `offset`;
 * returns its length (plaintext.length + SEAL_OVERHEAD).
 */
export function sealAt(key: Uint8Array, plaintext: Uint8Array, out: Uint8Array, offset: number, fixedNonce?: Uint8Array): number {
  const tagAt = offset + NONCE_SIZE + plaintext.length;
  sealInto(key, plaintext, out.subarray(offset + NONCE_SIZE, tagAt), out.subarray(offset, offset + NONCE_SIZE), out.subarray(tagAt, tagAt + TAG_SIZE), fixedNonce);
  return plaintext.length + SEAL_OVERHEAD;
}

/** Seals with a fresh random nonce, or the given one (test vectors only). */
export function seal(key: Uint8Array, plaintext: Uint8Array, fixedNonce?: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(SEAL_OVERHEAD + plaintext.length);
  sealAt(key, plaintext, out, 0, fixedNonce);
  return out;
}

/**
 * Opens `sealed` into `output` (at least sealed.length - SEAL_OVERHEAD bytes): returns the
 * plaintext's length, or -1 when the message is not authentic (wrong key, tampered, truncated);
 * `output` then holds bytes that must not be used.
 */
export function openInto(key: Uint8Array, sealed: Uint8Array, output: Uint8Array): number {
  if (sealed.length < SEAL_OVERHEAD) return -1;
  const length = sealed.length - SEAL_OVERHEAD;
  const authentic = loadNative().open(
    key,
    sealed.subarray(0, NONCE_SIZE),
    sealed.subarray(NONCE_SIZE, NONCE_SIZE + length),
    output,
    sealed.subarray(NONCE_SIZE + length),
  );
  return authentic ? length : -1;
}

/** Returns the plaintext, or null when the message is not authentic (wrong key, tampered, truncated). */
export function open(key: Uint8Array, sealed: Uint8Array): Buffer | null {
  const out = Buffer.allocUnsafe(Math.max(0, sealed.length - SEAL_OVERHEAD));
  return openInto(key, sealed, out) < 0 ? null : out;
}
