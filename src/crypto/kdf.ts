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

/** Derivations started ahead of need (startDeriving), by parameters and password; each is taken once. */
const started = new Map<string, Promise<Buffer>>();
const startedKey = (password: string, params: KdfParams) => `${JSON.stringify(params)}\n${password}`;

/**
 * Starts deriving a key that is likely to be asked for soon: deriveKey with the same password and
 * parameters then takes this derivation instead of starting one. Failures surface there.
 */
export function startDeriving(password: string, params: KdfParams): Promise<Buffer> {
  const key = derive(password, params);
  key.catch(() => undefined);
  started.set(startedKey(password, params), key);
  return key;
}

export function deriveKey(password: string, params: KdfParams): Promise<Buffer> {
  const id = startedKey(password, params);
  const key = started.get(id);
  if (!key) return derive(password, params);
  started.delete(id);
  return key;
}

async function derive(password: string, params: KdfParams): Promise<Buffer> {
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
