// Worker thread for the bulk work, so both cores take part and the main thread stays free:
// - seal (backup): hash (keyed blob ID), compress (zstd) and seal a data blob;
// - files (backup): the same for a batch of small files read here, so they are read in parallel;
// - restore: open (decrypt, decompress, verify) the needed blobs of a pack region, write each into
//   the files that need it and finish those files (restore-task.ts).
import { getSystemErrorMap } from 'node:util';
import { parentPort, workerData } from 'node:worker_threads';
import { NONCE_SIZE, SEAL_OVERHEAD, sealAt, sealInto } from '../crypto/aead.js';
import { compressIfSmaller } from '../compress/zstd.js';
import { blobId } from '../crypto/hash.js';
import { runRestoreTask, type RestoreTask } from './restore-task.js';
import { collectYoungGarbage } from '../util/gc.js';
import { Scratch } from '../util/scratch.js';
import { READ_NOT_REGULAR, READ_OPEN_FAILED, READ_TOO_BIG, readFiles } from '../native/binding.js';
import { NOT_REGULAR } from '../fs/metadata.js';
import { ID_BYTES } from '../model/ids.js';
import { lowerThreadPriority } from '../util/thread-priority.js';

/** Nice levels below the main thread. */
const WORKER_NICE_STEPS = 5;

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

/**
 * Small files to read (each at most `maxBytes`), hash, compress and seal, in one message each way
 * for the whole batch: a message, a promise and two ArrayBuffers per file cost the main thread
 * more than the file itself (~20 KB of garbage per file, and scavenges copying what was in flight).
 * Paths are latin1 strings: byte paths, cheaper to clone than Buffers (a view of Node's pool
 * clones the whole pool slab).
 */
export interface FileBatch {
  kind: 'files';
  seq: number;
  paths: string[];
  maxBytes: number;
  /** Expected bytes in all (from lstat): the first size of the result's buffer. */
  bytes: number;
}
/**
 * The batch's sealed blobs, one after another in `sealed` (a buffer of its own, transferred), in
 * the order of the files that were read; and per file, its blob or why it could not be read.
 */
export interface FileBatchResult {
  kind: 'files';
  seq: number;
  sealed: Uint8Array;
  files: (SealedFile | ReadError)[];
}
/** A small file's blob: the next `length` bytes of the batch's `sealed`. */
export interface SealedFile {
  id: string;
  length: number;
  rawLength: number;
  compressed: boolean;
}
/** The file could not be read (or grew past maxBytes: code 'EFBIG'). */
export interface ReadError {
  code?: string;
  message: string;
}

const { key, idKey, level } = workerData as { key: Uint8Array; idKey: Uint8Array; level: number };
const port = parentPort!;

// The main thread feeds the workers (walk, trees, packs): when the three contend for two cores,
// it goes first, and the workers take what it leaves.
lowerThreadPriority(WORKER_NICE_STEPS);

/**
 * One read buffer for every batch of small files: sealing writes its output elsewhere (zstd's
 * scratch, the batch's sealed buffer), so it is free again once the batch is sealed. A fresh
 * buffer per file cost more than the read itself (malloc, page faults, GC).
 */
const readBuffer = new Scratch();

/** The error of a file readFiles could not read, worded as node:fs words its errors. */
function readError(path: string, status: number, errno: number, maxBytes: number): ReadError {
  if (status === READ_TOO_BIG) return { code: 'EFBIG', message: `grew past ${maxBytes} bytes while being read` };
  if (status === READ_NOT_REGULAR) return { message: NOT_REGULAR };
  const [code, description] = getSystemErrorMap().get(-errno) ?? [`E${errno}`, `error ${errno}`];
  const syscall = status === READ_OPEN_FAILED ? 'open' : 'read';
  return { code, message: `${code}: ${description}, ${syscall} '${Buffer.from(path, 'latin1').toString()}'` };
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

function sealFiles(b: FileBatch): FileBatchResult {
  const n = b.paths.length;
  const paths = b.paths.join('\0');
  const status = new Int32Array(2 * n);
  const ids = Buffer.allocUnsafe(ID_BYTES * n);
  // Room for the batch as lstat saw it, and for any one file however much it grew: each call
  // reads at least one file.
  const data = readBuffer.take(b.bytes + b.maxBytes + 1);
  let out = new Uint8Array(b.bytes + n * SEAL_OVERHEAD);
  let used = 0;
  const files: (SealedFile | ReadError)[] = [];
  for (let i = 0; i < n; ) {
    const next = readFiles(paths, i, b.maxBytes, data, 0, status, idKey, ids);
    let offset = 0;
    for (; i < next; i++) {
      const length = status[2 * i]!;
      if (length < 0) {
        files.push(readError(b.paths[i]!, length, status[2 * i + 1]!, b.maxBytes));
        continue;
      }
      const file = data.subarray(offset, offset + length);
      offset += length;
      const z = compressIfSmaller(file, level);
      const plaintext = z ?? file;
      if (used + plaintext.length + SEAL_OVERHEAD > out.length) {
        // Files grew since lstat: a bigger buffer.
        const grown = new Uint8Array(Math.max(out.length * 2, used + plaintext.length + SEAL_OVERHEAD));
        grown.set(out.subarray(0, used));
        out = grown;
      }
      const sealed = sealAt(key, plaintext, out, used);
      used += sealed;
      files.push({ id: ids.toString('hex', i * ID_BYTES, (i + 1) * ID_BYTES), length: sealed, rawLength: length, compressed: z !== null });
    }
  }
  return { kind: 'files', seq: b.seq, sealed: out.subarray(0, used), files };
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
    const res = sealFiles(t);
    port.postMessage(res, [res.sealed.buffer as ArrayBuffer]);
    return;
  }
  const res = sealBlob(t.seq, t.data, t.compress);
  port.postMessage(res, res.ciphertext ? [res.ciphertext.buffer as ArrayBuffer] : []);
});
