// Worker thread: compresses (zstd) and seals blobs so both cores work during a backup. The main
// thread reads, chunks and hashes (it must know the ID to deduplicate before spending this work).
import { parentPort, workerData } from 'node:worker_threads';
import { seal } from '../crypto/aead.js';
import { compressIfSmaller } from '../compress/zstd.js';

export interface SealTask {
  seq: number;
  data: Uint8Array;
  compress: boolean;
}
export interface SealResult {
  seq: number;
  sealed: Uint8Array;
  compressed: boolean;
}

const { key, level } = workerData as { key: Uint8Array; level: number };
const port = parentPort!;
port.on('message', (t: SealTask) => {
  const z = t.compress ? compressIfSmaller(t.data, level) : null;
  let sealed: Uint8Array = seal(key, z ?? t.data);
  // Small Buffers share Node's allocation pool; transfer only a buffer that owns its memory.
  if (sealed.byteOffset !== 0 || sealed.byteLength !== sealed.buffer.byteLength) sealed = new Uint8Array(sealed);
  const res: SealResult = { seq: t.seq, sealed, compressed: z !== null };
  port.postMessage(res, [sealed.buffer as ArrayBuffer]);
});
