import { createHash, createHmac } from 'node:crypto';

/** SHA-256 of stored bytes: every object's name (format-spec ch. 3.2). */
export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Keyed blob ID (format-spec ch. 3.1). */
export function blobId(idKey: Uint8Array, plaintext: Uint8Array): string {
  return createHmac('sha256', idKey).update(plaintext).digest('hex');
}
