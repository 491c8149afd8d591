import { describe, expect, it } from 'vitest';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { backup } from '../../src/engine/archiver.js';
import { decidePacks, planPrune, type PackFacts } from '../../src/engine/pruner.js';
import { walkTree } from '../../src/engine/walk.js';
import { initRepo, openRepo, randomBytesSeeded, tempDir } from './helpers.js';

const pack = (id: string, o: Partial<PackFacts>): PackFacts => ({ id, type: 'data', size: 1000, storageClass: 'STANDARD', ageDays: 400, indexed: true, usedBytes: 500, unusedBytes: 500, needsThaw: false, ...o });

describe('prune plan (cold-aware)', () => {
  it('never deletes or rewrites packs before their class minimum storage duration', () => {
    const ds = decidePacks([
      pack('deep-young', { storageClass: 'DEEP_ARCHIVE', ageDays: 179, usedBytes: 0, unusedBytes: 1000 }),
      pack('deep-old', { storageClass: 'DEEP_ARCHIVE', ageDays: 181, usedBytes: 0, unusedBytes: 1000 }),
      pack('glacier-young', { storageClass: 'GLACIER', ageDays: 89 }),
      pack('ia-young', { storageClass: 'STANDARD_IA', ageDays: 29, usedBytes: 0, unusedBytes: 1000 }),
      pack('std-new', { ageDays: 0, usedBytes: 0, unusedBytes: 1000 }),
    ], { maxUnused: 0 });
    expect(Object.fromEntries(ds.map((d) => [d.id, [d.action, d.held ?? null]]))).toEqual({
      'deep-young': ['keep', 'min-age'], 'deep-old': ['delete', null], 'glacier-young': ['keep', 'min-age'], 'ia-young': ['keep', 'min-age'], 'std-new': ['delete', null],
    });
    // --keep-pack-min-age overrides the class minimum.
    expect(decidePacks([pack('d', { storageClass: 'DEEP_ARCHIVE', ageDays: 10, usedBytes: 0 })], { keepPackMinAgeDays: 0 })[0]!.action).toBe('delete');
  });

  it('does not thaw archived packs to repack them unless allowed', () => {
    const p = pack('g', { storageClass: 'GLACIER', needsThaw: true });
    expect(decidePacks([p], { maxUnused: 0 })[0]).toMatchObject({ action: 'keep', held: 'cold' });
    expect(decidePacks([p], { maxUnused: 0, allowThaw: true })[0]!.action).toBe('repack');
  });

  it('repacks the emptiest packs until unused space is within --max-unused', () => {
    const ds = decidePacks([
      pack('full', { usedBytes: 1000, unusedBytes: 0 }),
      pack('a', { usedBytes: 900, unusedBytes: 100 }),
      pack('b', { usedBytes: 400, unusedBytes: 600 }),
    ], { maxUnused: 0.05 });
    // used 2300, 5% = 115: repacking b leaves 100 unused, within the tolerance.
    expect(ds.map((d) => d.action)).toEqual(['keep', 'keep', 'repack']);
    expect(decidePacks([pack('u', { indexed: false, usedBytes: 0, unusedBytes: 1000 })])[0]!.action).toBe('delete-unreferenced');
  });
});

describe('prune plan (what the snapshots use)', () => {
  it('counts every tree and data blob the snapshots reach as used, and refuses when the index lacks one', async () => {
    const tmp = await tempDir();
    try {
      const src = join(tmp, 'src');
      mkdirSync(join(src, 'd', 'e'), { recursive: true });
      writeFileSync(join(src, 'a'), randomBytesSeeded(40_000, 1));
      writeFileSync(join(src, 'd', 'e', 'b'), randomBytesSeeded(30_000, 2));
      const repoDir = join(tmp, 'repo');
      const repo = await initRepo(repoDir);
      await backup(repo, { paths: [src] });
      writeFileSync(join(src, 'd', 'c'), randomBytesSeeded(20_000, 3));
      await backup(await openRepo(repoDir), { paths: [src] });

      const reached = new Set<string>();
      const walked = await openRepo(repoDir);
      for (const { snapshot } of await walked.listSnapshots()) {
        reached.add(snapshot.tree);
        for await (const e of walkTree(walked, snapshot.tree)) {
          if (e.node.subtree) reached.add(e.node.subtree);
          for (const b of e.node.content ?? []) reached.add(b);
        }
      }
      expect((await planPrune(await openRepo(repoDir))).usedBlobs).toEqual(reached);

      // One data pack dropped from the index (as a repair that lost it would): prune must not run.
      const r = await openRepo(repoDir);
      const { names, packs } = await r.loadWholeIndex();
      const lost = [...packs.values()].find((p) => p.type === 'data')!;
      await r.replaceIndex(names, [...packs.values()].filter((p) => p !== lost), undefined);
      await expect(planPrune(await openRepo(repoDir))).rejects.toThrow(/data blob [0-9a-f]{64}.*used by snapshots\/[0-9a-f]{64} but not in the index/);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }, 30_000);
});
