// Password -> key-encryption key (format-spec ch. 2.3).
import { randomBytes, scrypt as scryptCb } from 'node:crypto';
import { argon2idAsync } from '@noble/hashes/argon2.js';
import { UnsupportedFormatError } from '../errors.js';

export type KdfParams =
  | { algorithm: 'scrypt'; N: number; r: number; p: number; salt: string }
  | { algorithm: 'argon2id'; m: number; t: number; p: number; salt: string };

/** 64 MiB, as kopia; see format-spec ch. 2.3 for why not 2^17. */
export const DEFAULT_SCRYPT_N = 2 ** 16;

export function newScryptParams(N = DEFAULT_SCRYPT_N): KdfParams {
  return { algorithm: 'scrypt', N, r: 8, p: 1, salt: randomBytes(32).toString('base64') };
}

export async function deriveKey(password: string, params: KdfParams): Promise<Buffer> {
  const pw = Buffer.from(password, 'utf8');
  const salt = Buffer.from(params.salt, 'base64');
  switch (params.algorithm) {
    case 'scrypt': {
      const { N, r, p } = params;
      if (!isPow2(N) || N < 2 || r < 1 || p < 1) throw new UnsupportedFormatError(`key file: invalid scrypt parameters N=${N} r=${r} p=${p}`);
      const maxmem = 128 * N * r * p + 64 * 1024 * 1024;
      return new Promise((resolve, reject) =>
        scryptCb(pw, salt, 32, { N, r, p, maxmem }, (err, key) => (err ? reject(err) : resolve(key))),
      );
    }
    case 'argon2id':
      return Buffer.from(await argon2idAsync(pw, salt, { m: params.m, t: params.t, p: params.p, dkLen: 32 }));
    default:
      throw new UnsupportedFormatError(`key file: unknown KDF ${(params as { algorithm: string }).algorithm}`);
  }
}

function isPow2(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}
