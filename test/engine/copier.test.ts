// The copier reads the source pack by pack: a snapshot of many small files (a blob each) costs a
// request per run of nearby blobs, not one per blob (on S3, a round trip per file); blobs already
// copied by this run are not read again; and what it writes reads back byte-identical. Out of
// archive storage, it learns every pack it needs first, copies the snapshots whose packs are
// readable, and leaves the others (unread) until their packs are.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../../src/backend/memory.js';
import { backup } from '../../src/engine/archiver.js';
import { copySnapshots, packsToCopy } from '../../src/engine/copier.js';
import { InterruptedError } from '../../src/errors.js';
import { walkTree } from '../../src/engine/walk.js';
import { Repository } from '../../src/repository/repository.js';
import { CountingBackend } from '../helpers/counting-backend.js';
import { prng } from '../helpers/tree.js';

const tmp = mkdtempSync(join(tmpdir(), 'snap-copier-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** path -> SHA-256 of the file's contents, read back through the repository (deep equality of MiB-sized Buffers takes vitest seconds). */
async function contents(repo: Repository, tree: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const e of walkTree(repo, tree)) {
    if (e.node.type !== 'file') continue;
    const h = createHash('sha256');
    for (const id of e.node.content ?? []) h.update(await repo.loadBlob(id, 'data'));
    out.set(e.path.toString(), h.digest('hex'));
  }
  return out;
}

describe('copySnapshots', () => {
  it('reads a request per run of blobs in a pack, never a blob twice, and copies every byte', async () => {
    const src = join(tmp, 'src');
    const r = prng(3);
    for (let d = 0; d < 10; d++) {
      mkdirSync(join(src, `d${d}`), { recursive: true });
      for (let f = 0; f < 60; f++) writeFileSync(join(src, `d${d}`, `f${f}`), r.bytes(200 + ((d * 60 + f) % 7) * 300));
    }
    writeFileSync(join(src, 'large'), r.bytes(3_000_000));
    const counting = new CountingBackend(new MemoryBackend('copy-src'));
    const from = await Repository.init(counting, 'pw', { kdfN: 1024 });
    const first = await backup(from, { paths: [src], time: new Date('2026-01-01T00:00:00Z') });
    writeFileSync(join(src, 'd0', 'new'), 'one new file');
    const second = await backup(from, { paths: [src], time: new Date('2026-01-02T00:00:00Z') });
    await from.loadIndex();
    const to = await Repository.init(new MemoryBackend('copy-dst'), 'other', { kdfN: 1024, chunker: { min: 64 << 10, avg: 256 << 10, max: 1 << 20 } });
    const entries = await from.listSnapshots();
    const dataPacks = (await from.listPacks()).filter((p) => p.type === 'data').length;
    counting.reset();

    const { snapshots: done } = await copySnapshots(from, to, entries);
    expect(done.map((c) => c.skipped)).toEqual([false, false]);
    const blobs = new Set<string>();
    for (const e of entries) for await (const n of walkTree(from, e.snapshot.tree)) for (const id of n.node.content ?? []) blobs.add(id);
    // 600 small files and a large one in a few packs, in two snapshots: a request per pack (two
    // at most), not per blob, and the second snapshot's shared blobs are not read again.
    expect(blobs.size).toBeGreaterThan(600);
    expect(dataPacks).toBeLessThan(10);
    expect(counting.count('data')).toBeLessThanOrEqual(dataPacks * 2);

    await to.loadIndex();
    const copied = await to.listSnapshots();
    for (const [i, s] of [first, second].entries()) {
      const c = copied.find((e) => e.snapshot.original === s.id)!;
      expect(await contents(to, c.snapshot.tree)).toEqual(await contents(from, s.snapshot.tree));
      expect(c.id).toBe(done[i]!.to);
    }
    expect((await contents(to, copied[1]!.snapshot.tree)).get(join(src, 'large'))).toBe(createHash('sha256').update(readFileSync(join(src, 'large'))).digest('hex'));
  }, 60_000);

  it('with readablePacks, copies what is readable, leaves the rest unread, and waits with awaitPacks', async () => {
    const src = join(tmp, 'src-cold');
    mkdirSync(join(src, 'a'), { recursive: true });
    const r = prng(21);
    for (let f = 0; f < 4; f++) writeFileSync(join(src, 'a', `f${f}`), r.bytes(600_000));
    const counting = new CountingBackend(new MemoryBackend('cold-src'));
    const from = await Repository.init(counting, 'pw', { kdfN: 1024, dataPackTarget: 1 << 20 });
    await backup(from, { paths: [src], time: new Date('2026-01-01T00:00:00Z') });
    mkdirSync(join(src, 'b'));
    for (let f = 0; f < 4; f++) writeFileSync(join(src, 'b', `g${f}`), r.bytes(600_000));
    await backup(from, { paths: [src], time: new Date('2026-01-02T00:00:00Z') });
    await from.loadIndex();
    const entries = await from.listSnapshots();
    const to = await Repository.init(new MemoryBackend('cold-dst'), 'other', { kdfN: 1024 });

    // The first snapshot's packs are readable; the second needs more, which are "thawing".
    const all = await packsToCopy(from, to, entries);
    const early = new Set((await packsToCopy(from, to, [entries[0]!])).map((p) => p.id));
    const late = all.filter((p) => !early.has(p.id));
    expect(all.map((p) => p.id).sort()).toEqual((await from.listPacks()).filter((p) => p.type === 'data').map((p) => p.name).sort());
    expect(late.length).toBeGreaterThan(0);
    let asked: string[] = [];
    counting.reset();
    const first = await copySnapshots(from, to, entries, {
      readablePacks: async (packs) => {
        asked = packs.map((p) => p.id);
        return new Set(early);
      },
    });
    // Every pack asked about at once, before any was read.
    expect(asked.sort()).toEqual(all.map((p) => p.id).sort());
    expect(first.snapshots.map((c) => [c.skipped, c.to !== undefined, c.pending ?? 0])).toEqual([[false, true, 0], [false, false, late.length]]);
    expect(first.packsPending.map((p) => p.id).sort()).toEqual(late.map((p) => p.id).sort());
    expect(first.packsRead.sort()).toEqual([...early].sort());
    expect(counting.loaded.filter((h) => h.type === 'data').every((h) => early.has(h.name))).toBe(true);
    expect(await to.listSnapshots()).toHaveLength(1);

    // Again, waiting: the late packs become readable after one wait.
    let waits = 0;
    const second = await copySnapshots(from, to, entries, {
      readablePacks: async () => new Set(early),
      awaitPacks: async (pending) => {
        waits++;
        expect(pending.map((p) => p.id).sort()).toEqual(late.map((p) => p.id).sort());
        return new Set(pending.map((p) => p.id));
      },
    });
    expect(waits).toBe(1);
    expect(second.snapshots.map((c) => [c.skipped, c.to !== undefined])).toEqual([[true, true], [false, true]]);
    expect(second.packsPending).toEqual([]);
    await to.loadIndex();
    const copied = (await to.listSnapshots()).find((e) => e.snapshot.time === entries[1]!.snapshot.time)!;
    expect(await contents(to, copied.snapshot.tree)).toEqual(await contents(from, entries[1]!.snapshot.tree));
  }, 60_000);

  it('sharing the source\'s blob ID key, keeps tree IDs and reads only the blobs the destination lacks', async () => {
    const src = join(tmp, 'src-same');
    mkdirSync(src, { recursive: true });
    const r = prng(41);
    for (let f = 0; f < 6; f++) writeFileSync(join(src, `f${f}`), r.bytes(400_000));
    const counting = new CountingBackend(new MemoryBackend('same-src'));
    const from = await Repository.init(counting, 'pw', { kdfN: 1024, dataPackTarget: 1 << 20 });
    await backup(from, { paths: [src], time: new Date('2026-01-01T00:00:00Z') });
    await from.loadIndex();
    const to = await Repository.init(new MemoryBackend('same-dst'), 'other', { kdfN: 1024, chunker: from.config.chunker, idKey: from.keys.id });
    const first = await copySnapshots(from, to, await from.listSnapshots());
    expect(first.snapshots.map((c) => c.skipped)).toEqual([false]);

    // A second backup adds one file: the copy reads the packs of its blobs, and no other.
    writeFileSync(join(src, 'new'), r.bytes(700_000));
    await backup(from, { paths: [src], time: new Date('2026-01-02T00:00:00Z') });
    await from.loadIndex();
    const entries = await from.listSnapshots();
    const newBlobs = new Set<string>();
    for await (const e of walkTree(from, entries[1]!.snapshot.tree)) if (e.node.name.toString() === 'new') for (const b of e.node.content!) newBlobs.add(b);
    const newPacks = new Set([...newBlobs].map((b) => from.index.get(b)!.pack));
    expect(new Set((await packsToCopy(from, to, entries)).map((p) => p.id))).toEqual(newPacks);
    counting.reset();
    const second = await copySnapshots(from, to, entries);
    expect(second.snapshots.map((c) => c.skipped)).toEqual([true, false]);
    const read = counting.loaded.filter((h) => h.type === 'data');
    expect(read.length).toBeGreaterThan(0);
    expect(read.every((h) => newPacks.has(h.name))).toBe(true);

    await to.loadIndex();
    for (const e of entries) {
      const copy = (await to.listSnapshots()).find((c) => c.snapshot.original === e.id)!;
      expect(copy.snapshot.tree).toBe(e.snapshot.tree);
      expect(await contents(to, copy.snapshot.tree)).toEqual(await contents(from, e.snapshot.tree));
    }
  }, 60_000);

  it('interrupted, it keeps and indexes what it stored, saves no snapshot, and the next copy reuses it', async () => {
    const src = join(tmp, 'src-int');
    mkdirSync(src, { recursive: true });
    const r = prng(9);
    for (let f = 0; f < 8; f++) writeFileSync(join(src, `f${f}`), r.bytes(1_500_000));
    const from = await Repository.init(new MemoryBackend('int-src'), 'pw', { kdfN: 1024, dataPackTarget: 1 << 20 });
    await backup(from, { paths: [src] });
    await from.loadIndex();
    const dstBackend = new MemoryBackend('int-dst');
    const to = await Repository.init(dstBackend, 'other', { kdfN: 1024 });
    const entries = await from.listSnapshots();
    const stop = new AbortController();
    const first = copySnapshots(from, to, entries, { signal: stop.signal, onProgress: (p) => p.blobs >= 3 && stop.abort() });
    await expect(first).rejects.toBeInstanceOf(InterruptedError);
    expect(await to.listSnapshots()).toEqual([]);
    const reopened = await Repository.open(dstBackend, 'other');
    await reopened.loadIndex();
    const kept = reopened.index.blobCount;
    expect(kept).toBeGreaterThan(0);
    const { snapshots: again } = await copySnapshots(from, reopened, entries);
    expect(again[0]!.skipped).toBe(false);
    // What the interrupted run stored is not stored again.
    expect(again[0]!.added).toBeLessThan(8 * 1_500_000 - 2 * 1_000_000);
    await reopened.loadIndex();
    const copied = (await reopened.listSnapshots())[0]!;
    expect(await contents(reopened, copied.snapshot.tree)).toEqual(await contents(from, entries[0]!.snapshot.tree));
  }, 60_000);
});
