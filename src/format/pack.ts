// Pack layout (format-spec ch. 5): blobs || seal(header) || u32 LE header length.
import { open, seal } from '../crypto/aead.js';
import type { BlobType } from '../model/ids.js';

export const PACK_VERSION = 1;
export const ENTRY_SIZE = 44;
export const FLAG_ZSTD = 1;

export interface PackEntry {
  id: string;
  type: BlobType;
  /** Offset of the sealed blob in the pack. */
  offset: number;
  /** Sealed length in the pack. */
  length: number;
  /** Plaintext length after decompression. */
  rawLength: number;
  compressed: boolean;
}

export function encodeHeader(entries: readonly PackEntry[]): Buffer {
  const h = Buffer.alloc(1 + entries.length * ENTRY_SIZE);
  h[0] = PACK_VERSION;
  let pos = 1;
  for (const e of entries) {
    h[pos] = e.type === 'data' ? 0 : 1;
    h[pos + 1] = e.compressed ? FLAG_ZSTD : 0;
    h.writeUInt32LE(e.length, pos + 4);
    h.writeUInt32LE(e.rawLength, pos + 8);
    h.write(e.id, pos + 12, 32, 'hex');
    pos += ENTRY_SIZE;
  }
  return h;
}

/**
 * Seals the header and appends the length trailer; returns the bytes that end the pack. `nonce` is
 * for test vectors only (format-spec/vectors); writers always let seal() draw a random one.
 */
export function packTrailer(key: Uint8Array, entries: readonly PackEntry[], nonce?: Uint8Array): Buffer {
  const sealed = seal(key, encodeHeader(entries), nonce);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(sealed.length, 0);
  return Buffer.concat([sealed, len]);
}

/** Decodes a plaintext header; offsets are recomputed from the stored lengths. */
export function decodeHeader(h: Uint8Array): PackEntry[] {
  const buf = Buffer.from(h.buffer, h.byteOffset, h.byteLength);
  if (buf.length < 1 || buf[0] !== PACK_VERSION) throw new Error(`unknown pack header version ${buf[0]}`);
  if ((buf.length - 1) % ENTRY_SIZE !== 0) throw new Error('pack header length is not a whole number of entries');
  const entries: PackEntry[] = [];
  let offset = 0;
  for (let pos = 1; pos < buf.length; pos += ENTRY_SIZE) {
    const type = buf[pos];
    if (type !== 0 && type !== 1) throw new Error(`unknown blob type ${type}`);
    const length = buf.readUInt32LE(pos + 4);
    entries.push({
      type: type === 0 ? 'data' : 'tree',
      compressed: (buf[pos + 1]! & FLAG_ZSTD) !== 0,
      offset,
      length,
      rawLength: buf.readUInt32LE(pos + 8),
      id: buf.toString('hex', pos + 12, pos + 44),
    });
    offset += length;
  }
  return entries;
}

/**
 * Reads the header of a whole pack held in memory. Throws Error with a reason when the trailer or
 * header is damaged; the caller names the pack.
 */
export function readPackHeader(key: Uint8Array, pack: Uint8Array): PackEntry[] {
  if (pack.length < 4) throw new Error('pack is shorter than its trailer');
  const view = Buffer.from(pack.buffer, pack.byteOffset, pack.byteLength);
  const hlen = view.readUInt32LE(view.length - 4);
  if (hlen + 4 > view.length) throw new Error('header length points outside the pack');
  const plain = open(key, view.subarray(view.length - 4 - hlen, view.length - 4));
  if (!plain) throw new Error('pack header authentication failed');
  const entries = decodeHeader(plain);
  const end = entries.length ? entries[entries.length - 1]!.offset + entries[entries.length - 1]!.length : 0;
  if (end !== view.length - 4 - hlen) throw new Error('blob lengths do not add up to the header position');
  return entries;
}
