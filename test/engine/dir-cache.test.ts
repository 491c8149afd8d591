// The directory cache (format-spec ch. 16): an unchanged re-backup keeps each directory's tree ID
// without reading the parent snapshot's trees; any change below a directory, other options, a
// damaged cache or one made for another snapshot make the backup compare with the trees instead.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { nameTableDigests } from '../../src/fs/users.js';
import { backup, type BackupOptions } from '../../src/engine/archiver.js';
import { dirCacheFile, dirCacheOptions, dirKey, DirCache, DirCacheRecorder } from '../../src/engine/dir-cache.js';
import type { Repository } from '../../src/repository/repository.js';
import { describeTree } from '../helpers/tree.js';
import { initRepo, openRepo, snap, tempDir } from './helpers.js';

/** Opens the repository afresh and counts the trees the backup reads. */
async function counted(repoDir: string): Promise<{ repo: Repository; loads: () => number }> {
  const repo = await openRepo(repoDir);
  let n = 0;
  const load = repo.loadTree.bind(repo);
  repo.loadTree = (id) => {
    n++;
    return load(id);
  };
  return { repo, loads: () => n };
}

/** The tree ID of the backed-up directory `path` in a snapshot (above it are the directories on the way). */
async function treeOf(repo: Repository, root: string, path: string): Promise<string> {
  let id = root;
  for (const part of path.split('/').filter(Boolean)) {
    const node = (await repo.loadTree(id)).nodes.find((n) => n.name.toString() === part);
    id = node!.subtree!;
  }
  return id;
}

describe('directory cache', () => {
  let tmp: string;
  let src: string;
  let repoDir: string;
  let cacheDir: string;
  let opts: BackupOptions;

  beforeAll(async () => {
    tmp = await tempDir();
    src = join(tmp, 'src');
    repoDir = join(tmp, 'repo');
    cacheDir = join(tmp, 'cache');
    for (const d of ['a', 'b/c', 'b/d', 'e']) mkdirSync(join(src, d), { recursive: true });
    for (const [f, text] of [['a/x', 'x'], ['a/y', 'y'.repeat(5000)], ['b/c/z', 'zzz'], ['b/d/w', 'w'], ['top', 'top']] as const) {
      writeFileSync(join(src, f), text);
    }
    await initRepo(repoDir);
    opts = { paths: [src], host: 'h', dirCacheDir: cacheDir };
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  async function restoreAndCompare(): Promise<void> {
    const target = join(tmp, `target-${Date.now()}`);
    const r = await snap(['restore', 'latest', '--target', target, '--no-cache'], { SNAP_REPOSITORY: repoDir });
    expect(r.code, r.stderr).toBe(0);
    expect(describeTree(join(target, src))).toEqual(describeTree(src));
  }

  it('lets an unchanged re-backup keep every tree ID without reading a tree', async () => {
    const first = await backup(await openRepo(repoDir), opts);
    expect(readdirSync(join(cacheDir, 'dirs'))).toHaveLength(1);
    const { repo, loads } = await counted(repoDir);
    const second = await backup(repo, opts);
    expect(loads()).toBe(0);
    const srcTree = await treeOf(repo, first.snapshot.tree, src);
    expect(await treeOf(repo, second.snapshot.tree, src)).toBe(srcTree);
    expect(second.snapshot.summary).toMatchObject({ files_unchanged: 5, files_new: 0, files_changed: 0, dirs_unchanged: 6, dirs_new: 0, dirs_changed: 0 });
    expect(second.snapshot.summary!.total_bytes_processed).toBe(first.snapshot.summary!.total_bytes_processed);
    // Without the cache, the same backup reads the trees and reaches the same tree.
    const { repo: r3, loads: l3 } = await counted(repoDir);
    const third = await backup(r3, { paths: [src], host: 'h' });
    expect(l3()).toBeGreaterThan(0);
    expect(await treeOf(r3, third.snapshot.tree, src)).toBe(srcTree);
  });

  it('finds a change deep down (same size and mtime, new ctime) and keeps the other directories', async () => {
    await backup(await openRepo(repoDir), opts); // the cache describes the latest snapshot again
    const z = join(src, 'b/c/z');
    const { mtime } = statSync(z);
    writeFileSync(z, 'ZZZ');
    utimesSync(z, mtime, mtime);
    const { repo, loads } = await counted(repoDir);
    const res = await backup(repo, opts);
    expect(res.snapshot.summary).toMatchObject({ files_changed: 1, files_unchanged: 4, dirs_changed: 3, dirs_unchanged: 3 });
    // Only the trees on the way to the change: the directories above src, src, b and b/c; not a,
    // b/d or e.
    expect(loads()).toBe(src.split('/').filter(Boolean).length + 3);
    await restoreAndCompare();
  });

  it('records a mode change and a new empty directory', async () => {
    chmodSync(join(src, 'a/x'), 0o600);
    mkdirSync(join(src, 'e/new'));
    const res = await backup(await openRepo(repoDir), opts);
    expect(res.snapshot.summary).toMatchObject({ dirs_new: 1 });
    await restoreAndCompare();
    const repo = await openRepo(repoDir);
    const again = await backup(repo, opts);
    expect(await treeOf(repo, again.snapshot.tree, src)).toBe(await treeOf(repo, res.snapshot.tree, src));
  });

  it('is ignored under other options, for another parent, when damaged, or when its trees are unknown', async () => {
    const repo = await openRepo(repoDir);
    const base = await backup(repo, opts);
    const baseTree = await treeOf(repo, base.snapshot.tree, src);
    const srcTreeOf = async (r: { snapshot: { tree: string } }) => treeOf(repo, r.snapshot.tree, src);
    const file = dirCacheFile(cacheDir, 'h', [src]);
    const good = readFileSync(file);

    // Another exclude: the cache was made without it.
    const { repo: r1, loads: l1 } = await counted(repoDir);
    const excluded = await backup(r1, { ...opts, excludes: ['**/top'] });
    expect(l1()).toBeGreaterThan(0);
    expect(await treeOf(r1, excluded.snapshot.tree, src)).not.toBe(baseTree);
    await backup(await openRepo(repoDir), opts); // back to the usual options

    // Made for another snapshot than the parent.
    const stale = readFileSync(file);
    await backup(await openRepo(repoDir), { ...opts, dirCacheDir: undefined });
    writeFileSync(file, stale);
    const { repo: r2, loads: l2 } = await counted(repoDir);
    expect(await srcTreeOf(await backup(r2, opts))).toBe(baseTree);
    expect(l2()).toBeGreaterThan(0);

    // Truncated.
    writeFileSync(file, readFileSync(file).subarray(0, 100));
    const { repo: r3, loads: l3 } = await counted(repoDir);
    expect(await srcTreeOf(await backup(r3, opts))).toBe(baseTree);
    expect(l3()).toBeGreaterThan(0);

    // Tree IDs that the repository does not have: never used.
    const forged = Buffer.from(readFileSync(file));
    // Entries follow the header (84 bytes) and the repair marks (32 bytes each).
    for (let at = 84 + 32 * forged.readUInt32LE(80) + 32; at < forged.length; at += 64) forged.fill(0xab, at, at + 32);
    writeFileSync(file, forged);
    const { repo: r4, loads: l4 } = await counted(repoDir);
    expect(await srcTreeOf(await backup(r4, opts))).toBe(baseTree);
    expect(l4()).toBeGreaterThan(0);
    expect(forged.readUInt32LE(76)).toBe(good.readUInt32LE(76));
    await restoreAndCompare();
  });

  it('stays in use after a prune and a repair that lost nothing, and not after one that lost data', async () => {
    const env = { SNAP_REPOSITORY: repoDir };
    await backup(await openRepo(repoDir), opts);
    writeFileSync(join(src, 'a/y'), 'Y'.repeat(7000));
    const parent = await backup(await openRepo(repoDir), opts);
    const parentTree = await treeOf(await openRepo(repoDir), parent.snapshot.tree, src);
    const indexes = () => readdirSync(join(repoDir, 'index'));
    const unchanged = async (): Promise<number> => {
      const { repo, loads } = await counted(repoDir);
      const res = await backup(repo, opts);
      const n = loads();
      expect(await treeOf(repo, res.snapshot.tree, src)).toBe(parentTree);
      return n;
    };

    // Prune drops the old a/y, keeps what the parent reaches, and supersedes every index object.
    const before = indexes();
    const pruned = await snap(['forget', '--keep-last', '1', '--prune', '--max-unused', '0%'], env);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(indexes()).toHaveLength(1);
    expect(before).not.toContain(indexes()[0]);
    expect(await unchanged()).toBe(0);

    // The index lost and rebuilt from the packs: nothing a snapshot uses is gone.
    rmSync(join(repoDir, 'index', indexes()[0]!));
    const rebuilt = await snap(['repair', 'index'], env);
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    expect(await unchanged()).toBe(0);

    // A data pack lost: after `repair index` the backup reads the trees, and stores again what the
    // pack held (the restore needs it).
    const packs = readdirSync(join(repoDir, 'data'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && !e.name.startsWith('.'));
    expect(packs.length).toBeGreaterThan(0);
    rmSync(join(packs[0]!.parentPath, packs[0]!.name));
    const repaired = await snap(['repair', 'index'], env);
    expect(repaired.code, repaired.stderr).toBe(0);
    expect(await unchanged()).toBeGreaterThan(0);
    await restoreAndCompare();
    expect(await unchanged()).toBe(0);
  });

  it('finds every recorded key in the written file, and nothing else', async () => {
    const rec = new DirCacheRecorder();
    const keys = Array.from({ length: 200 }, (_, i) => dirKey(Buffer.from(`/d${i}`), Buffer.alloc(32, i), i % 2 ? ['ab'.repeat(32)] : []));
    keys.forEach((k, i) => rec.record(k, i.toString(16).padStart(64, '0')));
    const options = dirCacheOptions({});
    const snapshotId = 'cd'.repeat(32);
    const file = join(tmp, 'cache-unit', 'f');
    const marks = new Set(['02'.repeat(32), '01'.repeat(32)]);
    await rec.write(file, snapshotId, options, marks);
    const cache = (await DirCache.load(file, snapshotId, options, new Set(['01'.repeat(32), '02'.repeat(32)])))!;
    keys.forEach((k, i) => expect(cache.get(k)).toBe(i.toString(16).padStart(64, '0')));
    expect(cache.get(dirKey(Buffer.from('/d0'), Buffer.alloc(32, 0), ['ab'.repeat(32)]))).toBeUndefined();
    expect(await DirCache.load(file, 'ef'.repeat(32), options, marks)).toBeUndefined();
    expect(await DirCache.load(file, snapshotId, dirCacheOptions({ excludes: ['x'] }), marks)).toBeUndefined();
    expect(await DirCache.load(file, snapshotId, dirCacheOptions({ iexcludes: ['x'] }), marks)).toBeUndefined();
    expect(await DirCache.load(file, snapshotId, dirCacheOptions({ excludeLargerThan: 1 << 20 }), marks)).toBeUndefined();
    // The index's repair marks differ (a repair may have dropped blobs since): not used.
    for (const other of [['01', '03'], ['01'], ['01', '02', '03'], []]) {
      expect(await DirCache.load(file, snapshotId, options, new Set(other.map((m) => m.repeat(32))))).toBeUndefined();
    }
    // A cache written under exclude patterns before absolute ones matched is not used.
    const before = (doc: object) => createHash('sha256').update(JSON.stringify({ ...doc, ...nameTableDigests() })).digest();
    expect(dirCacheOptions({ excludes: ['/x'] })).not.toEqual(before({ excludes: ['/x'], one_file_system: false }));
    expect(dirCacheOptions({})).toEqual(before({ excludes: [], one_file_system: false }));
    // Options at their defaults leave the digest as it was before they existed.
    expect(dirCacheOptions({ excludes: [], iexcludes: [], excludeIfPresent: [], oneFileSystem: false })).toEqual(options);
  });
});
