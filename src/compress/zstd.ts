import { compress, decompress } from 'zstd-napi';

export const DEFAULT_LEVEL = 3;

/** Returns the zstd frame when it is strictly smaller than the input, else null (store raw). */
export function compressIfSmaller(data: Uint8Array, level: number): Buffer | null {
  if (data.length === 0) return null;
  const out = compress(data, { compressionLevel: level });
  return out.length < data.length ? out : null;
}

export function zstdCompress(data: Uint8Array, level: number): Buffer {
  return compress(data, { compressionLevel: level });
}

export function zstdDecompress(data: Uint8Array): Buffer {
  return decompress(data);
}
