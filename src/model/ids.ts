/** Bytes of a blob ID or an object name (SHA-256 or HMAC-SHA256). */
export const ID_BYTES = 32;

/** 64 lowercase hex digits: a blob ID or an object name. A loop, not a regex: index loading checks millions. */
export function isId(s: unknown): s is string {
  if (typeof s !== 'string' || s.length !== 64) return false;
  for (let i = 0; i < 64; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

export type BlobType = 'data' | 'tree';
