// The index cache (format-spec ch. 17): a repository opened again loads its index from the cache
// file plus the index objects written since, and gets the same locations as from the index
// objects alone. A cache file that is damaged, made under another key, or out of date after a
// prune is ignored, never believed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalBackend } from '../../src/backend/local.js';
import { indexToJson } from '../../src/format/index.js';
import { Repository } from '../../src/repository/repository.js';
import { BlobWriter } from '../../src/repository/writer.js';
import { decodeIndexCache, encodeIndexCache, indexCacheKey } from '../../src/repository/index-cache.js';
import * as cli from '../helpers/cli.js';
import { initRepo, PASSWORD, randomBytesSeeded, tempDir } from '../engine/helpers.js';

let root: string;
let repoDir: string;
let cacheFile: string;
/** Every blob saved so far. */
const saved: string[] = [];

async function open(withCache = true): Promise<Repository> {
  const repo = await Repository.open(new LocalBackend(repoDir), PASSWORD);
  if (withCache) repo.useIndexCache(cacheFile);
  return repo;
}

/** Saves `n` new blobs (random, some compressible) in one go: one more index object. */
async function saveBlobs(repo: Repository, n: number, seed: number): Promise<void> {
  const writer = new BlobWriter(repo);
  try {
    for (let i = 0; i < n; i++) {
      const data = i % 3 === 0 ? Buffer.from(`text ${seed} ${i}\n`.repeat(500)) : randomBytesSeeded(3000 + i, seed * 1000 + i);
      saved.push((await writer.save(i % 5 === 0 ? 'tree' : 'data', data)).id);
    }
    await writer.flush();
  } finally {
    await writer.close();
  }
}

async function indexObjects(): Promise<number> {
  return (await readdir(join(repoDir, 'index'))).length;
}

/** The index as the index objects alone give it, blob by blob. */
async function expectSameAsObjects(repo: Repository): Promise<void> {
  const plain = await open(false);
  expect(await plain.loadIndex()).toEqual({ fromCache: false, objectsRead: await indexObjects() });
  expect(repo.index.blobCount).toBe(plain.index.blobCount);
  expect(repo.index.blobCount).toBe(new Set(saved).size);
  for (const id of saved) {
    const loc = repo.index.get(id);
    expect(loc).toEqual(plain.index.get(id));
    expect(repo.index.pack(loc!.pack)).toEqual(plain.index.pack(loc!.pack));
  }
  expect([...repo.index.indexNames].sort()).toEqual([...plain.index.indexNames].sort());
  expect([...repo.index.repairMarks].sort()).toEqual([...plain.index.repairMarks].sort());
  await plain.close();
}

describe('index cache', () => {
  beforeAll(async () => {
    root = await tempDir();
    repoDir = join(root, 'repo');
    cacheFile = join(root, 'cache', 'index');
    const repo = await initRepo(repoDir);
    await saveBlobs(repo, 40, 1);
    await saveBlobs(repo, 25, 2);
    await repo.close();
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('is written on the first load and serves the next one alone', async () => {
    const first = await open();
    expect(await first.loadIndex()).toEqual({ fromCache: false, objectsRead: await indexObjects() });
    await first.close();
    const second = await open();
    expect(await second.loadIndex()).toEqual({ fromCache: true, objectsRead: 0 });
    await expectSameAsObjects(second);
    // Blobs are readable through the cached locations, tree and data alike.
    for (const id of saved.slice(0, 6)) expect(second.blobIdOf(await second.loadBlob(id, second.index.get(id)!.type))).toBe(id);
    await second.close();
  });

  it('adds the index objects written since, and is rewritten once it lags by an eighth', async () => {
    const cached = await indexObjects();
    const writer = await open();
    await writer.loadIndex();
    await saveBlobs(writer, 3, 3);
    await writer.saveIndexCache();
    await writer.close();
    const before = await readFile(cacheFile);
    // 3 blobs on 65: too few to rewrite the cache.
    const a = await open();
    expect(await a.loadIndex()).toEqual({ fromCache: true, objectsRead: (await indexObjects()) - cached });
    await expectSameAsObjects(a);
    await saveBlobs(a, 12, 4);
    await a.saveIndexCache();
    await a.close();
    expect((await readFile(cacheFile)).length).toBeGreaterThan(before.length);
    const b = await open();
    expect(await b.loadIndex()).toEqual({ fromCache: true, objectsRead: 0 });
    await expectSameAsObjects(b);
    await b.close();
  });

  it('is ignored when damaged, truncated or made under another key, then rewritten', async () => {
    const good = await readFile(cacheFile);
    const flipped = Buffer.from(good);
    flipped[good.length >> 1]! ^= 1;
    const repo = await open();
    const key = indexCacheKey(repo.keys.encrypt);
    const other = await initRepo(join(root, 'other'));
    const foreign = encodeIndexCache(decodeIndexCache(good, key)!, indexCacheKey(other.keys.encrypt));
    await other.close();
    await repo.close();
    for (const bad of [flipped, good.subarray(0, good.length - 1), foreign, Buffer.from('snapidxc')]) {
      await writeFile(cacheFile, bad);
      const r = await open();
      expect((await r.loadIndex()).fromCache).toBe(false);
      await expectSameAsObjects(r);
      await r.close();
      expect(decodeIndexCache(await readFile(cacheFile), key)).toBeDefined();
    }
    const again = await open();
    expect(await again.loadIndex()).toEqual({ fromCache: true, objectsRead: 0 });
    await again.close();
  });

  it('is ignored once an index object it names is gone or superseded (a prune or a repair)', async () => {
    const repo = await open();
    await repo.loadIndex();
    const names = [...repo.index.indexNames].sort();
    const files = await Promise.all(names.map((n) => repo.loadIndexFile(n)));
    // As a repair does: one index for all packs, superseding the others, then the old ones
    // removed; with a repair mark, which the cache keeps.
    const repairMark = 'ab'.repeat(32);
    const merged = await repo.saveMetadata('index', indexToJson({ supersedes: names, repairMark, packs: files.flatMap((f) => f.packs) }), true);
    await repo.close();
    const superseding = await open();
    expect(await superseding.loadIndex()).toEqual({ fromCache: false, objectsRead: names.length + 1 });
    await expectSameAsObjects(superseding);
    expect([...superseding.index.indexNames]).toEqual([merged]);
    await superseding.close();
    // The cache now names the superseded objects too; removing them leaves it out of date.
    for (const n of names) await rm(join(repoDir, 'index', n));
    const pruned = await open();
    expect(await pruned.loadIndex()).toEqual({ fromCache: false, objectsRead: 1 });
    await expectSameAsObjects(pruned);
    await pruned.close();
    const after = await open();
    expect(await after.loadIndex()).toEqual({ fromCache: true, objectsRead: 0 });
    expect([...after.index.repairMarks]).toEqual([repairMark]);
    await expectSameAsObjects(after);
    await after.close();
  });
});

describe('index cache of the CLI', () => {
  it('is kept by backup and restore under --cache-dir, and not at all with --no-cache', async () => {
    const tmp = cli.tempDir();
    try {
      const src = join(tmp.path, 'src');
      await mkdir(src);
      await writeFile(join(src, 'a'), randomBytesSeeded(50_000, 7));
      const env = cli.initRepo(join(tmp.path, 'repo'));
      const cached = join(tmp.path, 'cache');
      const uncached = join(tmp.path, 'cache-none');
      const indexFiles = async (dir: string) => (await readdir(dir).catch(() => [] as string[])).filter((d) => existsSync(join(dir, d, 'index')));
      expect(cli.snap(['--cache-dir', uncached, '--no-cache', 'backup', src], env).code).toBe(0);
      expect(await indexFiles(uncached)).toEqual([]);
      expect(cli.snap(['--cache-dir', cached, 'backup', src], env).code).toBe(0);
      expect(await indexFiles(cached)).toHaveLength(1);
      // Restores through the cached index, byte for byte.
      const target = join(tmp.path, 'out');
      expect(cli.snap(['--cache-dir', cached, 'restore', 'latest', '--target', target], env).code).toBe(0);
      expect((await readFile(join(target, src, 'a'))).equals(await readFile(join(src, 'a')))).toBe(true);
    } finally {
      tmp.cleanup();
    }
  });
});
