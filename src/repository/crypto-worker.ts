// Worker thread for the bulk work, so both cores take part and the main thread stays free:
// - seal (backup): hash (keyed blob ID), compress (zstd) and seal a data blob;
// - file (backup): the same for a small file read here, so small files are read in parallel;
// - restore: open (decrypt, decompress, verify) the needed blobs of a pack region, write each into
//   the files that need it and finish those files (restore-task.ts).
import { closeSync, readSync } from 'node:fs';
import { openForBackup } from '../fs/metadata.js';
import { parentPort, workerData } from 'node:worker_threads';
import { NONCE_SIZE, SEAL_OVERHEAD, sealInto } from '../crypto/aead.js';
import { compressIfSmaller } from '../compress/zstd.js';
import { blobId } from '../crypto/hash.js';
import { runRestoreTask, type RestoreTask } from './restore-task.js';
import { collectYoungGarbage } from '../util/gc.js';
import { Scratch } from '../util/scratch.js';

export type { RestoreResult, RestoreTask } from './restore-task.js';

export interface SealTask {
  kind: 'seal';
  seq: number;
  /** A view of shared memory gets the ciphertext written over it instead of sent back. */
  data: Uint8Array;
  compress: boolean;
}
export interface SealResult {
  kind: 'seal';
  seq: number;
  id: string;
  /**
   * The sealed blob is nonce || ciphertext || tag; the writer copies the parts into its pack.
   * `envelope` is nonce || tag in a buffer of its own (a view of Node's shared pool would be
   * copied whole into the message).
   */
  envelope: Uint8Array;
  /**
   * The ciphertext, or null when it was written over the task's shared input: then it is the
   * input's first `ciphertextLength` bytes (never more than the input: a blob is stored
   * compressed only when that is smaller).
   */
  ciphertext: Uint8Array | null;
  ciphertextLength: number;
  compressed: boolean;
  rawLength: number;
}

/** A whole small file to read (at most maxBytes), hash, compress and seal. */
export interface FileTask {
  kind: 'file';
  seq: number;
  path: Uint8Array;
  maxBytes: number;
}
/**
 * Small files travel in batches, one message each way per batch: a message per file cost ~1 s of
 * CPU per GiB of small files, in the structured clone and the wake-ups on both sides.
 */
export interface FileBatch {
  kind: 'files';
  tasks: FileTask[];
}
export interface BatchResult {
  kind: 'batch';
  results: (SealResult | ReadError)[];
}
/** The file could not be read (or grew past maxBytes: code 'EFBIG'). */
export interface ReadError {
  kind: 'read-error';
  seq: number;
  code?: string;
  message: string;
}

const { key, idKey, level } = workerData as { key: Uint8Array; idKey: Uint8Array; level: number };
const port = parentPort!;

/**
 * One read buffer for every small file: sealing writes its output elsewhere (zstd's scratch, the
 * ciphertext's own buffer), so it is free again once sealBlob returns. A fresh 512 KiB buffer per
 * file cost more than the read itself (malloc, page faults, GC).
 */
const readBuffer = new Scratch();

function readSmallFile(rawPath: Uint8Array, maxBytes: number): Buffer {
  // Buffers arrive as plain Uint8Arrays; fs wants a Buffer for a byte path.
  const fd = openForBackup(Buffer.from(rawPath.buffer, rawPath.byteOffset, rawPath.byteLength));
  try {
    const buf = readBuffer.take(maxBytes + 1);
    let n = 0;
    for (let r; n <= maxBytes && (r = readSync(fd, buf, n, maxBytes + 1 - n, null)) > 0; ) n += r;
    if (n > maxBytes) throw Object.assign(new Error(`grew past ${maxBytes} bytes while being read`), { code: 'EFBIG' });
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

function sealBlob(seq: number, data: Uint8Array, compress: boolean): SealResult {
  const id = blobId(idKey, data);
  const z = compress ? compressIfSmaller(data, level) : null;
  const plaintext = z ?? data;
  // Shared memory gets the ciphertext written over the input (a blob is stored compressed only when
  // that is smaller, so it fits); otherwise it goes to a buffer of its own, transferred back.
  const inPlace = data.buffer instanceof SharedArrayBuffer;
  const ciphertext = inPlace ? data.subarray(0, plaintext.length) : new Uint8Array(plaintext.length);
  const envelope = new Uint8Array(SEAL_OVERHEAD);
  sealInto(key, plaintext, ciphertext, envelope.subarray(0, NONCE_SIZE), envelope.subarray(NONCE_SIZE));
  return {
    kind: 'seal',
    seq,
    id,
    envelope,
    ciphertext: inPlace ? null : ciphertext,
    ciphertextLength: ciphertext.length,
    compressed: z !== null,
    rawLength: data.length,
  };
}

function sealFile(t: FileTask): SealResult | ReadError {
  let data: Uint8Array;
  try {
    data = readSmallFile(t.path, t.maxBytes);
  } catch (e) {
    const err = e as { code?: string; message: string };
    return { kind: 'read-error', seq: t.seq, message: err.message, ...(err.code ? { code: err.code } : {}) };
  }
  return sealBlob(t.seq, data, true);
}

port.on('message', (t: SealTask | FileBatch | RestoreTask) => {
  if (t.kind === 'restore') {
    port.postMessage(runRestoreTask(t, key, idKey));
    // The task's region and the blobs it decrypted are dead now: free them before the next task
    // (peak RSS of a 1 GiB restore: 277-279 MiB against 341-355 MiB).
    collectYoungGarbage();
    return;
  }
  if (t.kind === 'files') {
    const results = t.tasks.map(sealFile);
    const transfer = results.flatMap((r) => (r.kind === 'seal' && r.ciphertext ? [r.ciphertext.buffer as ArrayBuffer] : []));
    port.postMessage({ kind: 'batch', results } satisfies BatchResult, transfer);
    return;
  }
  const res = sealBlob(t.seq, t.data, t.compress);
  port.postMessage(res, res.ciphertext ? [res.ciphertext.buffer as ArrayBuffer] : []);
});
