// Builds format-spec/vectors/v1.json: a complete small repository made from fixed keys, fixed nonces
// and a fixed input tree, with every object's exact bytes. test/format/vectors.test.ts compares a
// fresh build with the committed file, and rewrites it when UPDATE_VECTORS=1.
//
// Objects whose definition is short (the AEAD envelope, key files, pack layout) are composed here
// from the spec's definition rather than through the writer; trees, config, index and snapshot
// documents go through the real encoders, and the test checks their bytes against the spec rules.
import { createHash, createHmac, scryptSync } from 'node:crypto';
import { argon2id } from '@noble/hashes/argon2.js';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { seal } from '../../src/crypto/aead.js';
import { compressIfSmaller } from '../../src/compress/zstd.js';
import { encodeMetadata, METADATA_LEVEL } from '../../src/format/metadata.js';
import { configToJson, type RepoConfig } from '../../src/format/config.js';
import { indexToJson, type IndexPack, type PackType } from '../../src/format/index.js';
import { encodeHeader, type PackEntry } from '../../src/format/pack.js';
import { encodeTree } from '../../src/format/tree.js';
import type { BlobType } from '../../src/model/ids.js';
import type { Tree, TreeNode } from '../../src/model/tree.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const hmac = (key: Uint8Array, b: Uint8Array): string => createHmac('sha256', key).update(b).digest('hex');

/** A fixed 24-byte nonce per label: the first 24 bytes of SHA-256("snap-vector-nonce:" + label). */
export function fixedNonce(label: string): Buffer {
  return createHash('sha256').update(`snap-vector-nonce:${label}`).digest().subarray(0, 24);
}

/** Bytes 0x00, 0x01, ... starting at `from`. */
function seq(from: number, n: number): Buffer {
  return Buffer.from(Array.from({ length: n }, (_, i) => (from + i) & 0xff));
}

export const MASTER_KEYS = { encrypt: seq(0x00, 32), id: seq(0x20, 32) };

/** draft-irtf-cfrg-xchacha-03, appendix A.3.1 (published; not computed here). */
export const DRAFT_A31 = {
  key: '808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f',
  nonce: '404142434445464748494a4b4c4d4e4f5051525354555657',
  plaintext_text: "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
  aad: '50515253c0c1c2c3c4c5c6c7',
  ciphertext:
    'bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb' +
    '731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452' +
    '2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9' +
    '21f9664c97637da9768812f615c68b13b52e',
  tag: 'c0875924c1c7987947deafd8780acf49',
};

// ---- the input tree -------------------------------------------------------------------------

const HELLO = Buffer.from('Hello, snap! '.repeat(20) + '\n', 'utf8'); // compresses: stored as a zstd frame
const NOTES = Buffer.from('raw: too short to shrink\n', 'utf8'); // does not: stored raw
const CAFE_LATIN1 = Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74]); // "café.txt" in Latin-1: not UTF-8

const owner = { uid: 1000, gid: 1000, user: 'ann', group: 'ann' };
const T1 = 1763919233123456789n; // > 2^53: written as a decimal string
const T2 = 1763919240000000000n;
const DEV = 2049n;

function demoNodes(ids: { hello: string; notes: string; empty: string }): TreeNode[] {
  // Deliberately not in sorted order: the encoder sorts by raw name bytes.
  return [
    { name: Buffer.from('tty'), type: 'chardev', mode: 0o620, ...owner, mtimeNs: T1, ctimeNs: T1, inode: 393230n, device: DEV, rdev: 1280n },
    { name: Buffer.from('link'), type: 'symlink', mode: 0o777, ...owner, mtimeNs: T2, ctimeNs: T2, inode: 393220n, device: DEV, target: Buffer.from('hello.txt') },
    {
      name: Buffer.from('hello.txt'), type: 'file', mode: 0o644, ...owner, mtimeNs: T1, ctimeNs: T1, size: HELLO.length, inode: 393219n, device: DEV, nlink: 1,
      content: [ids.hello],
      xattrs: [
        { name: 'user.mime_type', value: Buffer.from('text/plain') },
        { name: 'user.comment', value: Buffer.from([0x00, 0xff, 0x10]) },
      ],
    },
    // Two hard links to one inode, and the same content blob as each other: stored once.
    { name: Buffer.from('notes'), type: 'file', mode: 0o600, ...owner, mtimeNs: T2, ctimeNs: T2, size: NOTES.length, inode: 393221n, device: DEV, nlink: 2, content: [ids.notes] },
    { name: CAFE_LATIN1, type: 'file', mode: 0o600, ...owner, mtimeNs: T2, ctimeNs: T2, size: NOTES.length, inode: 393221n, device: DEV, nlink: 2, content: [ids.notes] },
    { name: Buffer.from('latin1-link'), type: 'symlink', mode: 0o777, ...owner, mtimeNs: T2, ctimeNs: T2, inode: 393222n, device: DEV, target: CAFE_LATIN1 },
    { name: Buffer.from('empty'), type: 'dir', mode: 0o755, ...owner, mtimeNs: T1, ctimeNs: T1, inode: 393223n, device: DEV, subtree: ids.empty },
    { name: Buffer.from('pipe'), type: 'fifo', mode: 0o600, uid: 1000, gid: 1000, mtimeNs: T1, ctimeNs: T1, inode: 393224n, device: DEV },
    // Upper case sorts before lower case in bytewise order (not in a locale collation).
    { name: Buffer.from('README'), type: 'symlink', mode: 0o777, ...owner, mtimeNs: T2, ctimeNs: T2, inode: 393225n, device: DEV, target: Buffer.from('notes') },
  ];
}

// ---- builders -------------------------------------------------------------------------------

interface BlobInput {
  label: string;
  type: BlobType;
  plaintext: Buffer;
}

function buildPack(packType: PackType, label: string, blobs: BlobInput[]) {
  const entries: PackEntry[] = [];
  const parts: Buffer[] = [];
  const blobVectors = [];
  let offset = 0;
  for (const b of blobs) {
    const z = compressIfSmaller(b.plaintext, b.type === 'tree' ? METADATA_LEVEL : 3);
    const stored = z ?? b.plaintext;
    const nonce = fixedNonce(b.label);
    const sealed = seal(MASTER_KEYS.encrypt, stored, nonce);
    const id = hmac(MASTER_KEYS.id, b.plaintext);
    entries.push({ id, type: b.type, offset, length: sealed.length, rawLength: b.plaintext.length, compressed: z !== null });
    blobVectors.push({
      label: b.label,
      id,
      type: b.type,
      compressed: z !== null,
      offset,
      plaintext: hex(b.plaintext),
      stored: hex(stored),
      nonce: hex(nonce),
      sealed: hex(sealed),
    });
    parts.push(sealed);
    offset += sealed.length;
  }
  const header = encodeHeader(entries);
  const headerNonce = fixedNonce(`${label}:header`);
  const sealedHeader = seal(MASTER_KEYS.encrypt, header, headerNonce);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(sealedHeader.length, 0);
  const bytes = Buffer.concat([...parts, sealedHeader, len]);
  const name = sha256(bytes);
  const indexPack: IndexPack = { id: name, type: packType, size: bytes.length, blobs: entries };
  return {
    vector: {
      type: packType,
      path: `${packType}/${name.slice(0, 2)}/${name}`,
      name,
      size: bytes.length,
      blobs: blobVectors,
      header: hex(header),
      header_nonce: hex(headerNonce),
      sealed_header: hex(sealedHeader),
      header_length: sealedHeader.length,
      entries: entries.map((e) => ({ type: e.type, compressed: e.compressed, offset: e.offset, stored_length: e.length, raw_length: e.rawLength, id: e.id })),
      bytes: hex(bytes),
    },
    indexPack,
  };
}

function metadataVector(path: (name: string) => string, label: string, doc: unknown, compressed: boolean) {
  const nonce = fixedNonce(label);
  const stored = encodeMetadata(MASTER_KEYS.encrypt, doc, compressed, nonce);
  const name = sha256(stored);
  return {
    path: path(name),
    name,
    compressed,
    nonce: hex(nonce),
    json: doc,
    json_text: JSON.stringify(doc),
    stored: hex(stored),
  };
}

function keyFileVector(args: { password: string; created: string; hostname: string; username: string; kdf: Record<string, unknown>; kek: Buffer; label: string }) {
  const masterKeysJson = JSON.stringify({ encrypt: MASTER_KEYS.encrypt.toString('base64'), id: MASTER_KEYS.id.toString('base64') });
  const nonce = fixedNonce(args.label);
  const data = seal(args.kek, Buffer.from(masterKeysJson, 'utf8'), nonce);
  const doc = { version: 1, created: args.created, hostname: args.hostname, username: args.username, kdf: args.kdf, data: data.toString('base64') };
  const text = JSON.stringify(doc);
  const name = sha256(Buffer.from(text, 'utf8'));
  return { password: args.password, kek: hex(args.kek), master_keys_json: masterKeysJson, nonce: hex(nonce), sealed_master_keys: hex(data), path: `keys/${name}`, name, text };
}

/** The whole vector document. Deterministic: same code and libraries -> same JSON. */
export function buildVectors() {
  // AEAD: the primitive on fixed inputs, and noble's reference implementation as a second opinion.
  const aeadKey = seq(0x80, 32);
  const aeadNonce = seq(0x40, 24);
  const aeadPlain = Buffer.from('snap seals every object with XChaCha20-Poly1305.', 'utf8');
  const aeadSealed = seal(aeadKey, aeadPlain, aeadNonce);
  const nobleSealed = Buffer.concat([aeadNonce, xchacha20poly1305(aeadKey, aeadNonce).encrypt(aeadPlain)]);
  if (!nobleSealed.equals(aeadSealed)) throw new Error('seal() disagrees with @noble/ciphers xchacha20poly1305');
  const emptySealed = seal(aeadKey, Buffer.alloc(0), aeadNonce);

  const blobIdPlain = Buffer.from('hello\n', 'utf8');

  // Key files: one scrypt, one argon2id, both wrapping MASTER_KEYS.
  const scryptSalt = seq(0xa0, 32);
  const scryptPw = 'correct horse battery staple';
  const scryptKdf = { algorithm: 'scrypt', N: 1024, r: 8, p: 1, salt: scryptSalt.toString('base64') };
  const scryptKek = scryptSync(Buffer.from(scryptPw, 'utf8'), scryptSalt, 32, { N: 1024, r: 8, p: 1 });
  const argonSalt = seq(0xc0, 32);
  const argonPw = 'Tr0ub4dor&3 — ünïcödé';
  const argonKdf = { algorithm: 'argon2id', m: 256, t: 2, p: 1, salt: argonSalt.toString('base64') };
  const argonKek = Buffer.from(argon2id(Buffer.from(argonPw, 'utf8'), argonSalt, { m: 256, t: 2, p: 1, dkLen: 32 }));
  const keyFiles = [
    keyFileVector({ password: scryptPw, created: '2026-11-23T17:40:00.000Z', hostname: 'web1', username: 'root', kdf: scryptKdf, kek: scryptKek, label: 'key:scrypt' }),
    keyFileVector({ password: argonPw, created: '2026-11-23T17:41:00.000Z', hostname: 'laptop', username: 'ann', kdf: argonKdf, kek: argonKek, label: 'key:argon2id' }),
  ];

  const config: RepoConfig = {
    version: 1,
    id: sha256(Buffer.from('snap vector repository')),
    created: '2026-11-23T17:40:00.000Z',
    chunker: { min: 512 * 1024, avg: 1024 * 1024, max: 8 * 1024 * 1024, normalization: 1, seed: 0x9f1c2a7e30b4d566n },
    compressionLevel: 3,
    dataPackTarget: 16 * 1024 * 1024,
    metaPackTarget: 4 * 1024 * 1024,
    dataStorageClass: 'STANDARD',
  };
  const configVec = metadataVector(() => 'config', 'config', configToJson(config), false);

  // Data blobs and trees.
  const helloId = hmac(MASTER_KEYS.id, HELLO);
  const notesId = hmac(MASTER_KEYS.id, NOTES);
  const emptyTree: Tree = { nodes: [] };
  const emptyBytes = encodeTree(emptyTree);
  const emptyId = hmac(MASTER_KEYS.id, emptyBytes);
  const demoTree: Tree = { nodes: demoNodes({ hello: helloId, notes: notesId, empty: emptyId }) };
  const demoBytes = encodeTree(demoTree);
  const demoId = hmac(MASTER_KEYS.id, demoBytes);
  const rootTree: Tree = {
    nodes: [{ name: Buffer.from('demo'), type: 'dir', mode: 0o755, ...owner, mtimeNs: T2, ctimeNs: T2, inode: 393218n, device: DEV, subtree: demoId }],
  };
  const rootBytes = encodeTree(rootTree);
  const rootId = hmac(MASTER_KEYS.id, rootBytes);

  const dataPack = buildPack('data', 'pack:data', [
    { label: 'blob:hello.txt', type: 'data', plaintext: HELLO },
    { label: 'blob:notes', type: 'data', plaintext: NOTES },
  ]);
  const metaPack = buildPack('meta', 'pack:meta', [
    { label: 'tree:empty', type: 'tree', plaintext: emptyBytes },
    { label: 'tree:demo', type: 'tree', plaintext: demoBytes },
    { label: 'tree:root', type: 'tree', plaintext: rootBytes },
  ]);

  const indexVec = metadataVector((n) => `index/${n}`, 'index', indexToJson({ supersedes: [], packs: [dataPack.indexPack, metaPack.indexPack] }), true);
  const snapshotDoc = {
    version: 1,
    time: '2026-11-23T17:45:00.000Z',
    tree: rootId,
    paths: ['/demo'],
    hostname: 'web1',
    username: 'ann',
    uid: 1000,
    gid: 1000,
    tags: ['vectors'],
    excludes: ['*.tmp'],
    program_version: 'snap 0.1.0',
    summary: {
      backup_start: '2026-11-23T17:45:00.000Z', backup_end: '2026-11-23T17:45:00.250Z', duration_ms: 250,
      files_new: 3, files_changed: 0, files_unchanged: 0, dirs_new: 3, dirs_changed: 0, dirs_unchanged: 0,
      data_blobs: 2, tree_blobs: 3,
      data_added: HELLO.length + NOTES.length,
      data_added_packed: dataPack.vector.blobs.reduce((s, b) => s + b.sealed.length / 2, 0),
      total_files_processed: 3, total_bytes_processed: HELLO.length + 2 * NOTES.length, errors: 0,
    },
  };
  const snapshotVec = metadataVector((n) => `snapshots/${n}`, 'snapshot', snapshotDoc, false);

  const treeVec = (label: string, bytes: Buffer, id: string) => ({ label, id, text: bytes.toString('utf8') });

  return {
    format_version: 1,
    note: 'Generated by test/format/make-vectors.ts; checked by test/format/vectors.test.ts. Field meanings: format-spec/vectors/README.md.',
    master_keys: { encrypt: hex(MASTER_KEYS.encrypt), id: hex(MASTER_KEYS.id) },
    aead: [
      { key: hex(aeadKey), nonce: hex(aeadNonce), plaintext: hex(aeadPlain), sealed: hex(aeadSealed) },
      { key: hex(aeadKey), nonce: hex(aeadNonce), plaintext: '', sealed: hex(emptySealed) },
    ],
    xchacha_draft_a31: DRAFT_A31,
    blob_id: { id_key: hex(MASTER_KEYS.id), plaintext: hex(blobIdPlain), id: hmac(MASTER_KEYS.id, blobIdPlain) },
    key_files: keyFiles.map((k, i) => ({ kdf: i === 0 ? scryptKdf : argonKdf, ...k })),
    config: configVec,
    trees: [treeVec('empty', emptyBytes, emptyId), treeVec('demo', demoBytes, demoId), treeVec('root', rootBytes, rootId)],
    packs: [dataPack.vector, metaPack.vector],
    index: indexVec,
    snapshot: snapshotVec,
    files: [
      { path: '/demo/hello.txt', content: hex(HELLO) },
      { path: '/demo/notes', content: hex(NOTES) },
    ],
  };
}

export type Vectors = ReturnType<typeof buildVectors>;
