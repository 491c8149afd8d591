// Worker thread: hashes (keyed blob ID), compresses (zstd) and seals data blobs, so the main thread
// only reads and chunks, and both cores work during a backup.
import { parentPort, workerData } from 'node:worker_threads';
import { seal } from '../crypto/aead.js';
import { compressIfSmaller } from '../compress/zstd.js';
import { blobId } from '../crypto/hash.js';

export interface SealTask {
  seq: number;
  data: Uint8Array;
  compress: boolean;
}
export interface SealResult {
  seq: number;
  id: string;
  sealed: Uint8Array;
  compressed: boolean;
}

const { key, idKey, level } = workerData as { key: Uint8Array; idKey: Uint8Array; level: number };
const port = parentPort!;
port.on('message', (t: SealTask) => {
  const id = blobId(idKey, t.data);
  const z = t.compress ? compressIfSmaller(t.data, level) : null;
  let sealed: Uint8Array = seal(key, z ?? t.data);
  // Small Buffers share Node's allocation pool; transfer only a buffer that owns its memory.
  if (sealed.byteOffset !== 0 || sealed.byteLength !== sealed.buffer.byteLength) sealed = new Uint8Array(sealed);
  const res: SealResult = { seq: t.seq, id, sealed, compressed: z !== null };
  port.postMessage(res, [sealed.buffer as ArrayBuffer]);
});
