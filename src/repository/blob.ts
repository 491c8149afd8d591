// Opening one stored blob (format-spec ch. 5.3), shared by the main thread and the crypto workers.
import { open as openSealed } from '../crypto/aead.js';
import { blobId } from '../crypto/hash.js';
import { zstdDecompress, zstdDecompressBorrowed } from '../compress/zstd.js';

export interface StoredBlob {
  id: string;
  compressed: boolean;
  rawLength: number;
}

/**
 * The verified plaintext, or the reason it is unusable. `borrowed`: a compressed blob's plaintext
 * may be a view of this thread's scratch buffer, valid until the next call (for a caller that
 * writes it out at once, such as the restore workers).
 */
export function openStoredBlob(encryptKey: Uint8Array, idKey: Uint8Array, blob: StoredBlob, sealed: Uint8Array, borrowed = false): Buffer | string {
  const plain = openSealed(encryptKey, sealed);
  if (!plain) return 'authentication failed (corrupt or tampered)';
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
