// Key files (format-spec ch. 2.3): one per password, each wrapping the same master keys.
import { hostname, userInfo } from 'node:os';
import { randomBytes } from 'node:crypto';
import { open, seal } from '../crypto/aead.js';
import { sha256Hex } from '../crypto/hash.js';
import { deriveKey, newScryptParams, type KdfParams } from '../crypto/kdf.js';
import type { Backend } from '../backend/backend.js';
import { IntegrityError, NoSuchItemError, SnapError, UnsupportedFormatError, WrongPasswordError } from '../errors.js';

export interface MasterKeys {
  encrypt: Buffer;
  id: Buffer;
}

export interface KeyFileInfo {
  name: string;
  created: string;
  hostname: string;
  username: string;
  kdf: KdfParams;
}

interface KeyFileDoc extends Omit<KeyFileInfo, 'name'> {
  version: 1;
  data: string;
}

export function newMasterKeys(): MasterKeys {
  return { encrypt: randomBytes(32), id: randomBytes(32) };
}

function currentUser(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? '');
  }
}

/** Writes a new key file for `password`; returns its name. */
export async function addKey(backend: Backend, keys: MasterKeys, password: string, kdfN?: number): Promise<string> {
  const kdf = newScryptParams(kdfN);
  const kek = await deriveKey(password, kdf);
  const secret = Buffer.from(JSON.stringify({ encrypt: keys.encrypt.toString('base64'), id: keys.id.toString('base64') }));
  const doc: KeyFileDoc = {
    version: 1,
    created: new Date().toISOString(),
    hostname: hostname(),
    username: currentUser(),
    kdf,
    data: seal(kek, secret).toString('base64'),
  };
  const bytes = Buffer.from(JSON.stringify(doc), 'utf8');
  const name = sha256Hex(bytes);
  await backend.save({ type: 'key', name }, bytes);
  return name;
}

async function loadKeyDoc(backend: Backend, name: string): Promise<KeyFileDoc> {
  const what = `keys/${name}`;
  const bytes = await backend.load({ type: 'key', name });
  if (sha256Hex(bytes) !== name) throw new IntegrityError(what, 'content does not match its name (corrupt or tampered)');
  let doc: KeyFileDoc;
  try {
    doc = JSON.parse(bytes.toString('utf8')) as KeyFileDoc;
  } catch {
    throw new IntegrityError(what, 'not a key file (invalid JSON)');
  }
  if (doc.version !== 1) throw new UnsupportedFormatError(`${what}: key file version ${String(doc.version)} is not supported`);
  if (typeof doc.data !== 'string' || typeof doc.kdf !== 'object') throw new IntegrityError(what, 'malformed key file');
  return doc;
}

function unwrap(kek: Buffer, doc: KeyFileDoc, what: string): MasterKeys | null {
  const plain = open(kek, Buffer.from(doc.data, 'base64'));
  if (!plain) return null;
  try {
    const j = JSON.parse(plain.toString('utf8')) as { encrypt: string; id: string };
    const keys = { encrypt: Buffer.from(j.encrypt, 'base64'), id: Buffer.from(j.id, 'base64') };
    if (keys.encrypt.length !== 32 || keys.id.length !== 32) throw new Error('bad key length');
    return keys;
  } catch {
    throw new IntegrityError(what, 'decrypted key material is malformed');
  }
}

export async function listKeyNames(backend: Backend): Promise<string[]> {
  const names: string[] = [];
  for await (const f of backend.list('key')) names.push(f.name);
  return names.sort();
}

/** Tries every key file; returns the master keys and the name of the key that opened them. */
export async function openKeys(backend: Backend, password: string): Promise<{ keys: MasterKeys; keyName: string }> {
  const names = await listKeyNames(backend);
  if (names.length === 0) throw new SnapError(`${backend.location}: repository has no key files`);
  // A damaged key file must not lock out passwords whose key files are intact: try them all.
  let damaged: IntegrityError | undefined;
  for (const name of names) {
    let doc: KeyFileDoc;
    try {
      doc = await loadKeyDoc(backend, name);
    } catch (e) {
      if (!(e instanceof IntegrityError)) throw e;
      damaged ??= e;
      continue;
    }
    const kek = await deriveKey(password, doc.kdf);
    const keys = unwrap(kek, doc, `keys/${name}`);
    if (keys) return { keys, keyName: name };
  }
  if (damaged) throw damaged;
  throw new WrongPasswordError('wrong password or no key file matches it');
}

export async function listKeys(backend: Backend): Promise<KeyFileInfo[]> {
  const out: KeyFileInfo[] = [];
  for (const name of await listKeyNames(backend)) {
    const d = await loadKeyDoc(backend, name);
    out.push({ name, created: d.created, hostname: d.hostname, username: d.username, kdf: d.kdf });
  }
  return out;
}

/** Resolves a full or unique prefix of a key file name. */
export async function resolveKeyName(backend: Backend, prefix: string): Promise<string> {
  const matches = (await listKeyNames(backend)).filter((n) => n.startsWith(prefix.toLowerCase()));
  if (matches.length === 0) throw new NoSuchItemError(`no key file ${prefix}`);
  if (matches.length > 1) throw new NoSuchItemError(`key ID ${prefix} is ambiguous`);
  return matches[0]!;
}
