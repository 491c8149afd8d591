// Key files (format-spec ch. 2.3): many passwords, one set of master keys.
import { describe, expect, it } from 'vitest';
import { MemoryBackend } from '../../src/backend/memory.js';
import { sha256Hex } from '../../src/crypto/hash.js';
import { IntegrityError, SnapError, UnsupportedFormatError, WrongPasswordError } from '../../src/errors.js';
import { addKey, listKeys, newMasterKeys, openKeys } from '../../src/repository/keys.js';
import { deriveKey, newScryptParams, startDeriving } from '../../src/crypto/kdf.js';

const N = 1024; // small scrypt cost: tests only

async function repoWithKeys(passwords: string[]) {
  const backend = new MemoryBackend('keys');
  const keys = newMasterKeys();
  const names: string[] = [];
  for (const pw of passwords) names.push(await addKey(backend, keys, pw, N));
  return { backend, keys, names };
}

describe('key files', () => {
  it('several passwords each open the same master keys, through their own key file', async () => {
    const passwords = ['first password', 'second', 'ünïcödé 🔑', 'x'];
    const { backend, keys, names } = await repoWithKeys(passwords);
    expect(new Set(names).size).toBe(passwords.length);
    for (const [i, pw] of passwords.entries()) {
      const opened = await openKeys(backend, pw);
      expect(opened.keyName).toBe(names[i]);
      expect(opened.keys.encrypt.equals(keys.encrypt)).toBe(true);
      expect(opened.keys.id.equals(keys.id)).toBe(true);
    }
    const info = await listKeys(backend);
    expect(info.map((k) => k.name).sort()).toEqual([...names].sort());
    for (const k of info) expect(k.kdf).toMatchObject({ algorithm: 'scrypt', N, r: 8, p: 1 });
  });

  it('new key files use scrypt N=2^16, r=8, p=1 (64 MiB); key files written with N=2^17 still open', async () => {
    const backend = new MemoryBackend('keys');
    const keys = newMasterKeys();
    const current = await addKey(backend, keys, 'default');
    const older = await addKey(backend, keys, 'older', 2 ** 17);
    const info = await listKeys(backend);
    expect(info.find((k) => k.name === current)!.kdf).toMatchObject({ algorithm: 'scrypt', N: 2 ** 16, r: 8, p: 1 });
    expect(info.find((k) => k.name === older)!.kdf).toMatchObject({ algorithm: 'scrypt', N: 2 ** 17, r: 8, p: 1 });
    for (const [pw, name] of [['default', current], ['older', older]] as const) {
      const opened = await openKeys(backend, pw);
      expect(opened.keyName).toBe(name);
      expect(opened.keys.encrypt.equals(keys.encrypt)).toBe(true);
    }
  });

  it('a key file is plaintext JSON named by the SHA-256 of its bytes, with a fresh 32-byte salt', async () => {
    const { backend, names } = await repoWithKeys(['a', 'a']);
    const docs = [];
    for (const name of names) {
      const bytes = await backend.load({ type: 'key', name });
      expect(sha256Hex(bytes)).toBe(name);
      docs.push(JSON.parse(bytes.toString('utf8')) as { version: number; kdf: { salt: string }; data: string });
    }
    expect(docs[0]!.version).toBe(1);
    expect(Buffer.from(docs[0]!.kdf.salt, 'base64')).toHaveLength(32);
    expect(docs[0]!.kdf.salt).not.toBe(docs[1]!.kdf.salt);
    // data = seal(KEK, {"encrypt":..,"id":..}): 40 bytes of envelope around the JSON.
    const sealedLen = Buffer.from(docs[0]!.data, 'base64').length;
    expect(sealedLen).toBe(40 + JSON.stringify({ encrypt: Buffer.alloc(32).toString('base64'), id: Buffer.alloc(32).toString('base64') }).length);
  });

  it('a derivation started ahead (while the CLI loads) is taken once, and only for its own password', async () => {
    const params = newScryptParams(N);
    const ahead = startDeriving('pw', params);
    expect(deriveKey('other', params)).not.toBe(ahead);
    expect(deriveKey('pw', { ...params, salt: newScryptParams(N).salt })).not.toBe(ahead);
    expect(deriveKey('pw', params)).toBe(ahead);
    const again = deriveKey('pw', params);
    expect(again).not.toBe(ahead);
    expect((await again).equals(await ahead)).toBe(true);
    expect((await deriveKey('other', params)).equals(await ahead)).toBe(false);
  });

  it('a wrong password is WrongPasswordError (exit code 12)', async () => {
    const { backend } = await repoWithKeys(['right', 'also right']);
    for (const pw of ['wrong', 'right ', 'Right', '']) {
      const e = await openKeys(backend, pw).catch((x: unknown) => x);
      expect(e, pw).toBeInstanceOf(WrongPasswordError);
      expect((e as WrongPasswordError).exitCode).toBe(12);
    }
  });

  it('passwords are compared as their exact UTF-8 bytes (no Unicode normalization)', async () => {
    const nfc = 'caf\u00e9';
    const nfd = 'cafe\u0301';
    const { backend } = await repoWithKeys([nfc]);
    await expect(openKeys(backend, nfc)).resolves.toBeTruthy();
    await expect(openKeys(backend, nfd)).rejects.toBeInstanceOf(WrongPasswordError);
  });

  it('a tampered key file is IntegrityError naming keys/<name>', async () => {
    const { backend, names } = await repoWithKeys(['pw']);
    const name = names[0]!;
    const bytes = await backend.load({ type: 'key', name });
    const tampers = [
      Buffer.from(bytes.toString('utf8').replace('"hostname":"', '"hostname":"x')),
      Buffer.concat([bytes, Buffer.from(' ')]),
      bytes.subarray(0, bytes.length - 1),
      (() => {
        const t = Buffer.from(bytes);
        t[t.length - 10]! ^= 0x01;
        return t;
      })(),
    ];
    for (const t of tampers) {
      await backend.save({ type: 'key', name }, t);
      const e = await openKeys(backend, 'pw').catch((x: unknown) => x);
      expect(e).toBeInstanceOf(IntegrityError);
      expect((e as IntegrityError).object).toBe(`keys/${name}`);
      expect((e as Error).message).toContain(`keys/${name}`);
    }
    await backend.save({ type: 'key', name }, bytes);
    await expect(openKeys(backend, 'pw')).resolves.toMatchObject({ keyName: name });
  });

  it('a forged key file saved under its own hash yields no keys: its data does not authenticate', async () => {
    const { backend, names } = await repoWithKeys(['pw']);
    const doc = JSON.parse((await backend.load({ type: 'key', name: names[0]! })).toString('utf8')) as { data: string };
    const data = Buffer.from(doc.data, 'base64');
    data[30]! ^= 0x01;
    const forged = Buffer.from(JSON.stringify({ ...doc, data: data.toString('base64') }));
    await backend.remove({ type: 'key', name: names[0]! });
    await backend.save({ type: 'key', name: sha256Hex(forged) }, forged);
    await expect(openKeys(backend, 'pw')).rejects.toBeInstanceOf(WrongPasswordError);
  });

  it('an unknown key file version is UnsupportedFormatError; no key files at all is an error', async () => {
    const { backend, names } = await repoWithKeys(['pw']);
    const doc = JSON.parse((await backend.load({ type: 'key', name: names[0]! })).toString('utf8')) as object;
    const v2 = Buffer.from(JSON.stringify({ ...doc, version: 2 }));
    await backend.remove({ type: 'key', name: names[0]! });
    await backend.save({ type: 'key', name: sha256Hex(v2) }, v2);
    await expect(openKeys(backend, 'pw')).rejects.toBeInstanceOf(UnsupportedFormatError);
    const e = await openKeys(new MemoryBackend('none'), 'pw').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SnapError);
    expect((e as Error).message).toMatch(/no key files/);
  });
  it('a damaged key file does not lock out a password whose key file is intact', async () => {
    const { backend, keys, names } = await repoWithKeys(['one', 'two']);
    const [damaged, intact] = [...names].sort();
    const pwOfIntact = names[0] === intact ? 'one' : 'two';
    const bytes = await backend.load({ type: 'key', name: damaged! });
    bytes[10] ^= 1;
    await backend.remove({ type: 'key', name: damaged! });
    await backend.save({ type: 'key', name: damaged! }, bytes);
    const opened = await openKeys(backend, pwOfIntact);
    expect(opened.keyName).toBe(intact);
    expect(opened.keys.encrypt.equals(keys.encrypt)).toBe(true);
    // The password of the damaged key opens nothing, and the error names the damaged file.
    await expect(openKeys(backend, pwOfIntact === 'one' ? 'two' : 'one')).rejects.toThrow(`keys/${damaged}`);
  });
});
