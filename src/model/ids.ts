import { NoSuchItemError, UsageError } from '../errors.js';

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

/**
 * The one ID among `ids` that `ref` names: a full ID or a unique prefix of at least 4 hex digits,
 * in either case. `kind` names what the IDs are in the errors.
 */
export function matchIdPrefix(ids: readonly string[], ref: string, kind: 'snapshot' | 'pack'): string {
  if (!/^[0-9a-f]{4,64}$/i.test(ref)) throw new UsageError(`"${ref}" is not a ${kind} ID (hex digits, at least 4)${kind === 'snapshot' ? ' or "latest"' : ''}`);
  const prefix = ref.toLowerCase();
  const matches = ids.filter((id) => id.startsWith(prefix));
  if (matches.length === 0) throw new NoSuchItemError(`no ${kind} with ID ${ref}`);
  if (matches.length > 1) throw new NoSuchItemError(`${kind} ID ${ref} is ambiguous (${matches.length} matches); give more digits`);
  return matches[0]!;
}
