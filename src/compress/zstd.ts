import { Compressor, decompress } from 'zstd-napi';

export const DEFAULT_LEVEL = 3;

// One compressor per level, parameters set once: zstd-napi's compress() resets the parameters of
// its shared context on every call, which cost ~20% on 1 KiB inputs (63k small files per GiB).
const compressors = new Map<number, Compressor>();

function compressor(level: number): Compressor {
  let c = compressors.get(level);
  if (!c) {
    c = new Compressor();
    c.setParameters({ compressionLevel: level });
    compressors.set(level, c);
  }
  return c;
}

/** Returns the zstd frame when it is strictly smaller than the input, else null (store raw). */
export function compressIfSmaller(data: Uint8Array, level: number): Buffer | null {
  if (data.length === 0) return null;
  const out = compressor(level).compress(data);
  return out.length < data.length ? out : null;
}

export function zstdCompress(data: Uint8Array, level: number): Buffer {
  return compressor(level).compress(data);
}

export function zstdDecompress(data: Uint8Array): Buffer {
  return decompress(data);
}
