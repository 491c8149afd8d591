import { decompress } from 'zstd-napi';
import binding from 'zstd-napi/binding.js';
import { Scratch } from '../util/scratch.js';

export const DEFAULT_LEVEL = 3;

// One compression context per level, parameters set once: zstd-napi's compress() resets the
// parameters of its shared context on every call, which cost ~20% on 1 KiB inputs (63k small
// files per GiB).
const contexts = new Map<number, binding.CCtx>();
let dctx: binding.DCtx | undefined;

function context(level: number): binding.CCtx {
  let c = contexts.get(level);
  if (!c) {
    c = new binding.CCtx();
    c.setParameter(binding.CParameter.compressionLevel, level);
    contexts.set(level, c);
  }
  return c;
}

// Blob-sized output goes to this thread's scratch buffers (zstd-napi's compress() allocates a
// buffer per call, and copies again to trim it).
const compressScratch = new Scratch();
const decompressScratch = new Scratch();

/** The zstd frame of `data`, as a view of this thread's scratch buffer: valid until the next call. */
export function zstdCompressBorrowed(data: Uint8Array, level: number): Buffer {
  const out = compressScratch.take(binding.compressBound(data.length));
  return out.subarray(0, context(level).compress2(out, data));
}

/**
 * Returns the zstd frame when it is strictly smaller than the input, else null (store raw). The
 * frame is a view of this thread's scratch buffer: valid until the next call, so use it at once.
 */
export function compressIfSmaller(data: Uint8Array, level: number): Buffer | null {
  if (data.length === 0) return null;
  const z = zstdCompressBorrowed(data, level);
  return z.length < data.length ? z : null;
}

export function zstdDecompress(data: Uint8Array): Buffer {
  return decompress(data);
}

/**
 * Decompresses a frame that must hold exactly `rawLength` bytes (a blob: the index records its
 * length) into this thread's scratch buffer: the view is valid until the next call. Throws when
 * the frame is invalid or holds more; returns fewer bytes when it holds fewer.
 */
export function zstdDecompressBorrowed(data: Uint8Array, rawLength: number): Buffer {
  const out = decompressScratch.take(rawLength);
  dctx ??= new binding.DCtx();
  return out.subarray(0, dctx.decompress(out, data));
}
