// Worker thread for the bulk work, so both cores take part and the main thread stays free:
// - seal (backup): hash (keyed blob ID), compress (zstd) and seal a data blob;
// - file (backup): the same for a small file read here, so small files are read in parallel;
// - restore: open (decrypt, decompress, verify) the needed blobs of a pack region and write each
//   into the files that need it, through descriptors the main thread opened.
import { closeSync, readSync, writeSync } from 'node:fs';
import { openForBackup } from '../fs/metadata.js';
import { parentPort, workerData } from 'node:worker_threads';
import { NONCE_SIZE, SEAL_OVERHEAD, sealParts } from '../crypto/aead.js';
import { compressIfSmaller } from '../compress/zstd.js';
import { blobId } from '../crypto/hash.js';
import { openStoredBlob, type StoredBlob } from './blob.js';

export interface SealTask {
  kind: 'seal';
  seq: number;
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
  ciphertext: Uint8Array;
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
/** The file could not be read (or grew past maxBytes: code 'EFBIG'). */
export interface ReadError {
  kind: 'read-error';
  seq: number;
  code?: string;
  message: string;
}

/** A blob in a region (its sealed bytes are region[offset, offset + length)) and where it goes. */
export interface RegionBlob extends StoredBlob {
  offset: number;
  length: number;
  writes: { fd: number; position: number }[];
}
export interface RestoreTask {
  kind: 'restore';
  seq: number;
  region: Uint8Array;
  blobs: RegionBlob[];
  /** Leave all-zero 4 KiB blocks as holes. */
  sparse: boolean;
}
export interface RestoreResult {
  kind: 'restore';
  seq: number;
  /** The first failure, if any: which blob, why, and the errno code of a failed write. */
  error?: { blob: number; reason: string; code?: string; write?: number };
}

const { key, idKey, level } = workerData as { key: Uint8Array; idKey: Uint8Array; level: number };
const port = parentPort!;

const SPARSE_BLOCK = 4096;
const ZERO_BLOCK = Buffer.alloc(SPARSE_BLOCK);

/** The [start, end) runs of `b` that are not all-zero 4 KiB blocks: what a sparse restore writes. */
function dataRuns(b: Buffer): [number, number][] {
  const runs: [number, number][] = [];
  for (let i = 0; i < b.length; i += SPARSE_BLOCK) {
    const end = Math.min(i + SPARSE_BLOCK, b.length);
    if (b.compare(ZERO_BLOCK, 0, end - i, i, end) === 0) continue;
    const last = runs[runs.length - 1];
    if (last && last[1] === i) last[1] = end;
    else runs.push([i, end]);
  }
  return runs;
}

/** write(2) may write less than asked (a full disk does that before failing): loop until done. */
function writeAll(fd: number, data: Buffer, from: number, to: number, position: number): void {
  while (from < to) {
    const n = writeSync(fd, data, from, to - from, position);
    if (n === 0) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    from += n;
    position += n;
  }
}

/**
 * One read buffer for every small file: sealing copies out of it (the HMAC, zstd and cipher all
 * write new buffers), so it is free again once sealBlob returns. A fresh 512 KiB buffer per file
 * cost more than the read itself (malloc, page faults, GC).
 */
let readBuffer = Buffer.alloc(0);

function readSmallFile(rawPath: Uint8Array, maxBytes: number): Buffer {
  // Buffers arrive as plain Uint8Arrays; fs wants a Buffer for a byte path.
  const fd = openForBackup(Buffer.from(rawPath.buffer, rawPath.byteOffset, rawPath.byteLength));
  try {
    if (readBuffer.length < maxBytes + 1) readBuffer = Buffer.allocUnsafeSlow(maxBytes + 1);
    const buf = readBuffer;
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
  const { nonce, ciphertext, tag } = sealParts(key, z ?? data);
  // Small Buffers share Node's allocation pool; transfer only a buffer that owns its memory.
  const owned = ciphertext.byteOffset === 0 && ciphertext.byteLength === ciphertext.buffer.byteLength;
  const envelope = new Uint8Array(SEAL_OVERHEAD);
  envelope.set(nonce, 0);
  envelope.set(tag, NONCE_SIZE);
  return { kind: 'seal', seq, id, envelope, ciphertext: owned ? ciphertext : new Uint8Array(ciphertext), compressed: z !== null, rawLength: data.length };
}

function restore(t: RestoreTask): RestoreResult {
  for (const [i, b] of t.blobs.entries()) {
    const data = openStoredBlob(key, idKey, b, t.region.subarray(b.offset, b.offset + b.length));
    if (typeof data === 'string') return { kind: 'restore', seq: t.seq, error: { blob: i, reason: data } };
    const runs: [number, number][] = t.sparse ? dataRuns(data) : [[0, data.length]];
    for (const [w, { fd, position }] of b.writes.entries()) {
      try {
        for (const [from, to] of runs) writeAll(fd, data, from, to, position + from);
      } catch (e) {
        const err = e as { code?: string; message: string };
        return { kind: 'restore', seq: t.seq, error: { blob: i, reason: err.message, write: w, ...(err.code ? { code: err.code } : {}) } };
      }
    }
  }
  return { kind: 'restore', seq: t.seq };
}

port.on('message', (t: SealTask | FileTask | RestoreTask) => {
  if (t.kind === 'restore') {
    port.postMessage(restore(t));
    return;
  }
  let data: Uint8Array;
  if (t.kind === 'file') {
    try {
      data = readSmallFile(t.path, t.maxBytes);
    } catch (e) {
      const err = e as { code?: string; message: string };
      const res: ReadError = { kind: 'read-error', seq: t.seq, message: err.message, ...(err.code ? { code: err.code } : {}) };
      port.postMessage(res);
      return;
    }
  } else data = t.data;
  const res = sealBlob(t.seq, data, t.kind === 'file' || t.compress);
  port.postMessage(res, [res.ciphertext.buffer as ArrayBuffer]);
});
