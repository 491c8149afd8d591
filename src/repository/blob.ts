// Opening one stored blob (format-spec ch. 5.3), shared by the main thread and the crypto workers.
import { SEAL_OVERHEAD, openInto } from '../crypto/aead.js';
import { blobId } from '../crypto/hash.js';
import { zstdDecompress, zstdDecompressBorrowed } from '../compress/zstd.js';
import { Scratch } from '../util/scratch.js';

export interface StoredBlob {
  id: string;
  compressed: boolean;
  rawLength: number;
}

const openScratch = new Scratch();

/**
 * The verified plaintext, or the reason it is unusable. `borrowed`: the plaintext may be a view of
 * this thread's scratch buffers, valid until the next call (for a caller that writes it out at
 * once, such as the restore workers).
 */
export function openStoredBlob(encryptKey: Uint8Array, idKey: Uint8Array, blob: StoredBlob, sealed: Uint8Array, borrowed = false): Buffer | string {
  const length = Math.max(0, sealed.length - SEAL_OVERHEAD);
  const plain = borrowed ? openScratch.take(length) : Buffer.allocUnsafe(length);
  if (openInto(encryptKey, sealed, plain) < 0) return 'authentication failed (corrupt or tampered)';
  let data: Buffer;
  try {
    data = !blob.compressed ? plain : borrowed ? zstdDecompressBorrowed(plain, blob.rawLength) : zstdDecompress(plain);
  } catch (e) {
    return `cannot decompress: ${(e as Error).message}`;
  }
  if (data.length !== blob.rawLength) return `length ${data.length} differs from the index (${blob.rawLength})`;
  if (blobId(idKey, data) !== blob.id) return 'content does not match its ID';
  return data;
}
