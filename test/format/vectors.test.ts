// format-spec/vectors/v1.json: every vector is decoded through the real code paths and re-encoded to
// its exact bytes; the repository it describes is opened with Repository.open on a MemoryBackend.
// UPDATE_VECTORS=1 npx vitest run test/format/vectors.test.ts rewrites the file from the generator.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { describe, expect, it } from 'vitest';
import { open, seal } from '../../src/crypto/aead.js';
import { blobId } from '../../src/crypto/hash.js';
import { deriveKey, type KdfParams } from '../../src/crypto/kdf.js';
import { zstdDecompress } from '../../src/compress/zstd.js';
import { MemoryBackend } from '../../src/backend/memory.js';
import { decodeMetadata, encodeMetadata } from '../../src/format/metadata.js';
import { configFromJson, configToJson } from '../../src/format/config.js';
import { indexFromJson } from '../../src/format/index.js';
import { decodeHeader, packTrailer, readPackHeader, type PackEntry } from '../../src/format/pack.js';
import { decodeTree, encodeTree } from '../../src/format/tree.js';
import { addKey, newMasterKeys, openKeys } from '../../src/repository/keys.js';
import { Repository } from '../../src/repository/repository.js';
import { buildVectors, DRAFT_A31, type Vectors } from './make-vectors.js';

const FILE = fileURLToPath(new URL('../../format-spec/vectors/v1.json', import.meta.url));
const fresh = JSON.parse(JSON.stringify(buildVectors())) as Vectors;
if (process.env.UPDATE_VECTORS === '1') writeFileSync(FILE, JSON.stringify(fresh, null, 2) + '\n');
const v = JSON.parse(readFileSync(FILE, 'utf8')) as Vectors;

const h = (s: string): Buffer => Buffer.from(s, 'hex');
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const ENC = h(v.master_keys.encrypt);
const ID = h(v.master_keys.id);

/** Node keys in the order of the table in format-spec ch. 7.1. */
const SPEC_NODE_KEYS = ['name', 'name_b64', 'type', 'mode', 'uid', 'gid', 'user', 'group', 'mtime', 'ctime', 'size', 'inode', 'device', 'nlink', 'rdev', 'target', 'target_b64', 'content', 'subtree', 'xattrs'];

function entryView(e: PackEntry) {
  return { type: e.type, compressed: e.compressed, offset: e.offset, stored_length: e.length, raw_length: e.rawLength, id: e.id };
}

describe('format-spec/vectors/v1.json', () => {
  it('is exactly what test/format/make-vectors.ts builds (after a deliberate change: UPDATE_VECTORS=1)', () => {
    expect(fresh).toEqual(v);
  });

  describe('XChaCha20-Poly1305 (ch. 2.1)', () => {
    it('seal() reproduces each vector, open() inverts it, and @noble/ciphers agrees', () => {
      expect(v.aead.length).toBeGreaterThanOrEqual(2);
      for (const a of v.aead) {
        const key = h(a.key);
        const nonce = h(a.nonce);
        const pt = h(a.plaintext);
        expect(seal(key, pt, nonce).toString('hex')).toBe(a.sealed);
        expect(open(key, h(a.sealed))?.toString('hex')).toBe(a.plaintext);
        const sealed = h(a.sealed);
        expect(sealed.subarray(0, 24).toString('hex')).toBe(a.nonce);
        expect(sealed.length).toBe(pt.length + 40);
        expect(Buffer.from(xchacha20poly1305(key, nonce).decrypt(sealed.subarray(24))).toString('hex')).toBe(a.plaintext);
      }
    });

    it('matches draft-irtf-cfrg-xchacha-03 A.3.1 (primitive via noble with AAD; seal() on the AAD-independent ciphertext and, with empty AAD, against noble)', () => {
      const d = v.xchacha_draft_a31;
      expect(d).toEqual(DRAFT_A31);
      const key = h(d.key);
      const nonce = h(d.nonce);
      const pt = Buffer.from(d.plaintext_text, 'utf8');
      const withAad = xchacha20poly1305(key, nonce, h(d.aad)).encrypt(pt);
      expect(Buffer.from(withAad).toString('hex')).toBe(d.ciphertext + d.tag);
      const ours = seal(key, pt, nonce);
      // The keystream (hence the ciphertext) does not depend on the AAD; only the tag does.
      expect(ours.subarray(24, 24 + pt.length).toString('hex')).toBe(d.ciphertext);
      expect(ours.subarray(24).toString('hex')).toBe(Buffer.from(xchacha20poly1305(key, nonce).encrypt(pt)).toString('hex'));
      expect(ours.subarray(24 + pt.length).toString('hex')).not.toBe(d.tag);
      expect(open(key, ours)?.equals(pt)).toBe(true);
    });
  });

  it('blob ID = HMAC-SHA256(id key, plaintext) (ch. 3.1)', () => {
    expect(blobId(h(v.blob_id.id_key), h(v.blob_id.plaintext))).toBe(v.blob_id.id);
  });

  describe('key files (ch. 2.3)', () => {
    it('derive the recorded KEK, seal the master keys to the recorded bytes, and are named by their SHA-256', async () => {
      for (const k of v.key_files) {
        const kdf = k.kdf as KdfParams;
        const kek = await deriveKey(k.password, kdf);
        expect(kek.toString('hex')).toBe(k.kek);
        expect(seal(kek, Buffer.from(k.master_keys_json, 'utf8'), h(k.nonce)).toString('hex')).toBe(k.sealed_master_keys);
        const doc = JSON.parse(k.text) as Record<string, unknown>;
        expect(JSON.stringify(doc)).toBe(k.text);
        expect(doc.kdf).toEqual(k.kdf);
        expect(Buffer.from(doc.data as string, 'base64').toString('hex')).toBe(k.sealed_master_keys);
        expect(JSON.parse(k.master_keys_json)).toEqual({ encrypt: ENC.toString('base64'), id: ID.toString('base64') });
        expect(sha256(Buffer.from(k.text, 'utf8'))).toBe(k.name);
        expect(k.path).toBe(`keys/${k.name}`);
      }
      expect(v.key_files.map((k) => (k.kdf as KdfParams).algorithm).sort()).toEqual(['argon2id', 'scrypt']);
    });

    it('openKeys opens each of them with its password to the same master keys', async () => {
      const backend = new MemoryBackend('vectors');
      for (const k of v.key_files) await backend.save({ type: 'key', name: k.name }, Buffer.from(k.text, 'utf8'));
      for (const k of v.key_files) {
        const { keys, keyName } = await openKeys(backend, k.password);
        expect(keyName).toBe(k.name);
        expect(keys.encrypt.equals(ENC)).toBe(true);
        expect(keys.id.equals(ID)).toBe(true);
      }
    });

    it('have the field order addKey writes', async () => {
      const backend = new MemoryBackend('addkey');
      const name = await addKey(backend, newMasterKeys(), 'pw', 1024);
      const written = JSON.parse((await backend.load({ type: 'key', name })).toString('utf8')) as Record<string, unknown>;
      const scrypt = JSON.parse(v.key_files.find((k) => (k.kdf as KdfParams).algorithm === 'scrypt')!.text) as Record<string, unknown>;
      expect(Object.keys(written)).toEqual(Object.keys(scrypt));
      expect(Object.keys(written.kdf as object)).toEqual(Object.keys(scrypt.kdf as object));
    });
  });

  it('config (ch. 4): decodes, round-trips through configFromJson/configToJson, re-encodes to the stored bytes', () => {
    const c = v.config;
    expect(c.path).toBe('config');
    const stored = h(c.stored);
    expect(open(ENC, stored)![0]).toBe(0x00);
    const doc = decodeMetadata(ENC, stored, 'config');
    expect(doc).toEqual(c.json);
    expect(JSON.stringify(doc)).toBe(c.json_text);
    const cfg = configFromJson(doc);
    expect(cfg.chunker.seed).toBe(0x9f1c2a7e30b4d566n);
    expect(configToJson(cfg)).toEqual(c.json);
    expect(encodeMetadata(ENC, configToJson(cfg), false, h(c.nonce)).toString('hex')).toBe(c.stored);
    expect(sha256(stored)).toBe(c.name);
  });

  describe('trees (ch. 7)', () => {
    it('decode and re-encode to the exact bytes; the blob ID is the HMAC of those bytes', () => {
      expect(v.trees.map((t) => t.label)).toEqual(['empty', 'demo', 'root']);
      for (const t of v.trees) {
        const bytes = Buffer.from(t.text, 'utf8');
        expect(encodeTree(decodeTree(bytes)).equals(bytes)).toBe(true);
        expect(blobId(ID, bytes)).toBe(t.id);
      }
    });

    it('follow the ch. 7.1 rules: no whitespace, nodes sorted by raw name bytes, keys in table order', () => {
      for (const t of v.trees) {
        const doc = JSON.parse(t.text) as { nodes: Record<string, unknown>[] };
        expect(JSON.stringify(doc)).toBe(t.text);
        expect(Object.keys(doc)).toEqual(['nodes']);
        const names = doc.nodes.map((n) => (typeof n.name === 'string' ? Buffer.from(n.name, 'utf8') : Buffer.from(n.name_b64 as string, 'base64')));
        for (let i = 1; i < names.length; i++) expect(Buffer.compare(names[i - 1]!, names[i]!)).toBe(-1);
        for (const n of doc.nodes) {
          const positions = Object.keys(n).map((k) => SPEC_NODE_KEYS.indexOf(k));
          expect(positions).not.toContain(-1);
          expect([...positions].sort((a, b) => a - b)).toEqual(positions);
          for (const k of ['mtime', 'ctime', 'inode', 'device', 'rdev']) if (k in n) expect(n[k]).toMatch(/^\d+$/);
          if (Array.isArray(n.xattrs)) {
            const xn = (n.xattrs as { name: string }[]).map((x) => Buffer.from(x.name));
            for (let i = 1; i < xn.length; i++) expect(Buffer.compare(xn[i - 1]!, xn[i]!)).toBe(-1);
          }
        }
      }
    });

    it('the demo tree carries a non-UTF-8 name and link target as base64, and a symlink', () => {
      const demo = v.trees.find((t) => t.label === 'demo')!;
      const tree = decodeTree(Buffer.from(demo.text, 'utf8'));
      const latin1 = Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74]);
      expect(tree.nodes.some((n) => n.name.equals(latin1))).toBe(true);
      expect(tree.nodes.find((n) => n.name.toString() === 'latin1-link')!.target!.equals(latin1)).toBe(true);
      expect(tree.nodes.find((n) => n.name.toString() === 'link')).toMatchObject({ type: 'symlink', target: Buffer.from('hello.txt') });
      expect(demo.text).toContain(`"name_b64":"${latin1.toString('base64')}"`);
      expect(demo.text).toContain(`"target_b64":"${latin1.toString('base64')}"`);
      expect(demo.text).toContain('"mtime":"1763919233123456789"');
    });
  });

  describe('packs (ch. 5)', () => {
    it('readPackHeader yields the recorded entries; the header bytes follow ch. 5.2 field by field', () => {
      expect(v.packs.map((p) => p.type)).toEqual(['data', 'meta']);
      for (const p of v.packs) {
        const bytes = h(p.bytes);
        expect(sha256(bytes)).toBe(p.name);
        expect(p.path).toBe(`${p.type}/${p.name.slice(0, 2)}/${p.name}`);
        expect(bytes.length).toBe(p.size);
        expect(readPackHeader(ENC, bytes).map(entryView)).toEqual(p.entries);
        expect(bytes.readUInt32LE(bytes.length - 4)).toBe(p.header_length);
        const sealedHeader = bytes.subarray(bytes.length - 4 - p.header_length, bytes.length - 4);
        expect(sealedHeader.toString('hex')).toBe(p.sealed_header);
        expect(open(ENC, sealedHeader)?.toString('hex')).toBe(p.header);
        expect(decodeHeader(h(p.header)).map(entryView)).toEqual(p.entries);
        // Independent parse of the plaintext header, per the table in ch. 5.2.
        const hdr = h(p.header);
        expect(hdr[0]).toBe(1);
        expect((hdr.length - 1) / 44).toBe(p.entries.length);
        p.entries.forEach((e, i) => {
          const at = 1 + 44 * i;
          expect(hdr[at]).toBe(e.type === 'data' ? 0 : 1);
          expect(hdr[at + 1]).toBe(e.compressed ? 1 : 0);
          expect(hdr.readUInt16LE(at + 2)).toBe(0);
          expect(hdr.readUInt32LE(at + 4)).toBe(e.stored_length);
          expect(hdr.readUInt32LE(at + 8)).toBe(e.raw_length);
          expect(hdr.toString('hex', at + 12, at + 44)).toBe(e.id);
          expect(e.type).toBe(p.type === 'data' ? 'data' : 'tree');
        });
      }
    });

    it('every blob opens, decompresses when flagged, and matches its ID; the data pack has one compressed and one raw blob', () => {
      const data = v.packs.find((p) => p.type === 'data')!;
      expect(data.blobs.map((b) => b.compressed)).toEqual([true, false]);
      for (const p of v.packs) {
        const bytes = h(p.bytes);
        p.blobs.forEach((b, i) => {
          const e = p.entries[i]!;
          expect(b.offset).toBe(e.offset);
          const sealed = bytes.subarray(e.offset, e.offset + e.stored_length);
          expect(sealed.toString('hex')).toBe(b.sealed);
          const stored = open(ENC, sealed)!;
          expect(stored.toString('hex')).toBe(b.stored);
          const plain = b.compressed ? zstdDecompress(stored) : stored;
          expect(plain.toString('hex')).toBe(b.plaintext);
          expect(plain.length).toBe(e.raw_length);
          expect(blobId(ID, plain)).toBe(b.id);
          if (!b.compressed) expect(b.stored).toBe(b.plaintext);
        });
      }
      const trees = v.packs.find((p) => p.type === 'meta')!.blobs.map((b) => Buffer.from(b.plaintext, 'hex').toString('utf8'));
      expect(trees).toEqual(v.trees.map((t) => t.text));
    });

    it('re-encode to the exact bytes: sealed blobs then packTrailer(key, entries, nonce)', () => {
      for (const p of v.packs) {
        const parts = p.blobs.map((b) => seal(ENC, h(b.stored), h(b.nonce)));
        const entries = readPackHeader(ENC, h(p.bytes));
        const rebuilt = Buffer.concat([...parts, packTrailer(ENC, entries, h(p.header_nonce))]);
        expect(rebuilt.toString('hex')).toBe(p.bytes);
      }
    });
  });

  it('index (ch. 6): zstd metadata object listing both packs; re-encodes to the stored bytes', () => {
    const x = v.index;
    const stored = h(x.stored);
    expect(sha256(stored)).toBe(x.name);
    expect(x.path).toBe(`index/${x.name}`);
    expect(open(ENC, stored)![0]).toBe(0x01);
    const doc = decodeMetadata(ENC, stored, x.path);
    expect(doc).toEqual(x.json);
    const idx = indexFromJson(doc);
    expect(idx.supersedes).toEqual([]);
    expect(idx.packs.map((p) => [p.id, p.type, p.size])).toEqual(v.packs.map((p) => [p.name, p.type, p.size]));
    idx.packs.forEach((p, i) => expect(p.blobs.map(entryView)).toEqual(v.packs[i]!.entries));
    // Depends on zstd producing the same frame; after a zstd upgrade regenerate with UPDATE_VECTORS=1.
    expect(encodeMetadata(ENC, x.json, true, h(x.nonce)).toString('hex')).toBe(x.stored);
  });

  it('snapshot (ch. 8): decodes and re-encodes to the stored bytes; names the root tree', () => {
    const s = v.snapshot;
    const stored = h(s.stored);
    expect(sha256(stored)).toBe(s.name);
    expect(s.path).toBe(`snapshots/${s.name}`);
    expect(open(ENC, stored)![0]).toBe(0x00);
    const doc = decodeMetadata(ENC, stored, s.path);
    expect(doc).toEqual(s.json);
    expect(JSON.stringify(doc)).toBe(s.json_text);
    expect(doc.tree).toBe(v.trees.find((t) => t.label === 'root')!.id);
    expect(encodeMetadata(ENC, s.json, false, h(s.nonce)).toString('hex')).toBe(s.stored);
  });

  it('Repository.open reads the whole vector repository from a MemoryBackend with either password', async () => {
    const backend = new MemoryBackend('vector-repo');
    await backend.save({ type: 'config', name: '' }, h(v.config.stored));
    for (const k of v.key_files) await backend.save({ type: 'key', name: k.name }, Buffer.from(k.text, 'utf8'));
    for (const p of v.packs) await backend.save({ type: p.type as 'data' | 'meta', name: p.name }, h(p.bytes));
    await backend.save({ type: 'index', name: v.index.name }, h(v.index.stored));
    await backend.save({ type: 'snapshot', name: v.snapshot.name }, h(v.snapshot.stored));
    for (const k of v.key_files) {
      const repo = await Repository.open(backend, k.password);
      expect(repo.keyName).toBe(k.name);
      expect(repo.config.id).toBe((v.config.json as { id: string }).id);
      await repo.loadIndex();
      expect(repo.index.blobCount).toBe(5);
      const snaps = await repo.listSnapshots();
      expect(snaps.map((e) => e.id)).toEqual([v.snapshot.name]);
      const root = await repo.loadTree(snaps[0]!.snapshot.tree);
      const demoNode = root.nodes.find((n) => n.name.toString() === 'demo')!;
      const demo = await repo.loadTree(demoNode.subtree!);
      expect(encodeTree(demo).toString('utf8')).toBe(v.trees.find((t) => t.label === 'demo')!.text);
      for (const f of v.files) {
        const node = demo.nodes.find((n) => `/demo/${n.name.toString()}` === f.path)!;
        const parts = await Promise.all(node.content!.map((id) => repo.loadBlob(id, 'data')));
        expect(Buffer.concat(parts).toString('hex')).toBe(f.content);
        expect(node.size).toBe(f.content.length / 2);
      }
      const empty = await repo.loadTree(demo.nodes.find((n) => n.name.toString() === 'empty')!.subtree!);
      expect(empty.nodes).toEqual([]);
    }
    await expect(Repository.open(backend, 'not the password')).rejects.toThrow(/wrong password/);
  });
});
