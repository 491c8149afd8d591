// Metadata objects (format-spec ch. 3.3): seal(format byte || JSON or zstd(JSON)).
import { open, seal } from '../crypto/aead.js';
import { zstdCompressBorrowed, zstdDecompress } from '../compress/zstd.js';
import { IntegrityError, UnsupportedFormatError } from '../errors.js';

const RAW = 0x00;
const ZSTD = 0x01;

/**
 * zstd level of metadata: index objects and tree blobs. Their JSON is mostly hex IDs, on which
 * level 1 is both faster and smaller than 3: the index of a 1 GiB backup, 5.8 MB of JSON, 15 ms
 * and 2.75 MB against 38 ms and 2.88 MB; its trees, 12.8 MB of them, 531 MB/s and 2.3 MiB
 * against 296 MB/s and 2.7 MiB. Both are written on the main thread of every backup.
 */
export const METADATA_LEVEL = 1;

export function encodeMetadata(key: Uint8Array, doc: unknown, compressed = false, nonce?: Uint8Array): Buffer {
  const json = Buffer.from(JSON.stringify(doc), 'utf8');
  // Copied into `plain` at once, so the compressor's scratch buffer serves.
  const payload = compressed ? zstdCompressBorrowed(json, METADATA_LEVEL) : json;
  const plain = Buffer.allocUnsafe(1 + payload.length);
  plain[0] = compressed ? ZSTD : RAW;
  payload.copy(plain, 1);
  return seal(key, plain, nonce);
}

/** Opens and parses a metadata object; `what` names it in errors (e.g. "snapshots/3fa1…"). */
export function decodeMetadata(key: Uint8Array, stored: Uint8Array, what: string): Record<string, unknown> {
  const plain = open(key, stored);
  if (!plain) throw new IntegrityError(what, 'authentication failed (corrupt or tampered object, or another repository key)');
  let json: Buffer;
  try {
    if (plain[0] === RAW) json = plain.subarray(1);
    else if (plain[0] === ZSTD) json = zstdDecompress(plain.subarray(1));
    else throw new IntegrityError(what, `unknown metadata format byte ${plain[0]}`);
    const doc: unknown = JSON.parse(json.toString('utf8'));
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error('not a JSON object');
    const version = (doc as { version?: unknown }).version;
    if (version !== undefined && version !== 1) throw new UnsupportedFormatError(`${what}: format version ${String(version)} is not supported by this snap (knows 1)`);
    return doc as Record<string, unknown>;
  } catch (e) {
    if (e instanceof IntegrityError || e instanceof UnsupportedFormatError) throw e;
    throw new IntegrityError(what, `cannot decode: ${(e as Error).message}`);
  }
}
