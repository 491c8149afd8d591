// The pack writer and memory it borrows: a chunk in a shared slab is sealed in place by a worker
// and written from there, and the slab is given back only when the pack no longer needs it. A
// slab reused too early would put another chunk's bytes into the pack.
import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { MemoryBackend } from '../../src/backend/memory.js';
import { Repository } from '../../src/repository/repository.js';
import { BlobWriter } from '../../src/repository/writer.js';
import { initRepo, PASSWORD, randomBytesSeeded, rm, tempDir } from '../engine/helpers.js';

/** Saves views of shared memory; each release scribbles over the view at once, as reuse would. */
async function saveBorrowed(repo: Repository, blobs: Buffer[]): Promise<{ ids: string[]; released: number }> {
  const writer = new BlobWriter(repo);
  let released = 0;
  const ids: Promise<string>[] = [];
  try {
    for (const plain of blobs) {
      const view = Buffer.from(new SharedArrayBuffer(plain.length + 100), 50, plain.length);
      plain.copy(view);
      const release = () => {
        released++;
        view.fill(0xee);
      };
      ids.push((await writer.saveData(view, release)).id);
    }
    const done = await Promise.all(ids);
    await writer.flush();
    return { ids: done, released };
  } finally {
    await writer.close();
  }
}

function blobsFor(seed: number): Buffer[] {
  // Random (stored raw) and repetitive (stored compressed), and one duplicate of the first.
  const random = [1, 2, 3].map((i) => randomBytesSeeded(300_000 + i * 1000, seed + i));
  const text = Buffer.from('the same line of text again and again\n'.repeat(20_000));
  return [...random, text, Buffer.from(random[0]!)];
}

describe('BlobWriter with shared memory', () => {
  let root: string;
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('writes sealed chunks from their slab before giving it back (local repository: staged pack)', async () => {
    root = await tempDir();
    const repo = await initRepo(join(root, 'repo'));
    const blobs = blobsFor(1);
    const { ids, released } = await saveBorrowed(repo, blobs);
    expect(released).toBe(blobs.length);
    expect(ids[4]).toBe(ids[0]);
    for (const [i, id] of ids.entries()) expect((await repo.loadBlob(id, 'data')).equals(blobs[i]!)).toBe(true);
    await repo.close();
  });

  it('and copies them into the pack before giving it back (memory backend: pack in memory)', async () => {
    const repo = await Repository.init(new MemoryBackend(), PASSWORD);
    const blobs = blobsFor(2);
    const { ids, released } = await saveBorrowed(repo, blobs);
    expect(released).toBe(blobs.length);
    for (const [i, id] of ids.entries()) expect((await repo.loadBlob(id, 'data')).equals(blobs[i]!)).toBe(true);
    await repo.close();
  });
});

describe('BlobWriter pack order', () => {
  let root: string;
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('puts data blobs into the pack in the order they were queued, whichever worker finishes first', async () => {
    root = await tempDir();
    const repo = await initRepo(join(root, 'repo'), { dataPackTarget: 32 << 20 });
    const writer = new BlobWriter(repo);
    // A large compressible blob goes to one worker, then small random ones alternate between
    // both: the other worker seals its small ones long before the large one is compressed.
    const words = randomBytesSeeded(6 << 20, 7).map((b) => 97 + (b % 26));
    const blobs = [words, ...Array.from({ length: 24 }, (_, i) => randomBytesSeeded(2000 + i, 100 + i))];
    const ids: Promise<string>[] = [];
    try {
      for (const b of blobs) ids.push((await writer.saveData(Buffer.from(b))).id);
      await writer.flush();
    } finally {
      await writer.close();
    }
    const locations = await Promise.all(ids.map(async (id) => repo.index.get(await id)!));
    expect(new Set(locations.map((l) => l.pack)).size).toBe(1);
    const offsets = locations.map((l) => l.offset);
    expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
    await repo.close();
  });
});
