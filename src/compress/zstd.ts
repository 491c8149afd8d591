import { decompress } from 'zstd-napi';
import binding from 'zstd-napi/binding.js';
import { Scratch } from '../util/scratch.js';

export const DEFAULT_LEVEL = 3;

// Compression contexts keep their parameters: zstd-napi's compress() resets the parameters of its
// shared context on every call, which cost ~20% on 1 KiB inputs (63k small files per GiB).
// Per level, one context for inputs up to 16 KiB (zstd's smallest parameter table) and one for
// larger ones. zstd replaces a context's workspace when an input needs more than it holds, and
// after 128 inputs that need less than a third: with one context, runs of small files shrank it
// and the next chunks grew it again, ~500 new workspaces of up to 1.3 MB of fresh (page-faulted)
// memory in a 1 GiB backup. Split, ~50, all under 150 KB: 11% fewer page faults in all.
const SMALL_INPUT = 16 << 10;
const contexts = new Map<number, binding.CCtx>();
let dctx: binding.DCtx | undefined;

function context(level: number, inputLength: number): binding.CCtx {
  const key = 2 * level + (inputLength <= SMALL_INPUT ? 0 : 1);
  let c = contexts.get(key);
  if (!c) {
    c = new binding.CCtx();
    c.setParameter(binding.CParameter.compressionLevel, level);
    contexts.set(key, c);
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
  return out.subarray(0, context(level, data.length).compress2(out, data));
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
