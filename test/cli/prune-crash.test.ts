// kill -9 during prune at seeded points: check passes, every kept snapshot restores byte-identical,
// and re-running prune finishes the job.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { cp, mkdir, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalBackend } from '../../src/backend/local.js';
import { backup } from '../../src/engine/archiver.js';
import { check } from '../../src/engine/checker.js';
import { executePrune, planPrune } from '../../src/engine/pruner.js';
import { restore } from '../../src/engine/restorer.js';
import { Repository } from '../../src/repository/repository.js';
import { mapLimit } from '../../src/util/concurrency.js';
import { PASSWORD, initRepo, listFiles, prng, readAll, snap, tempDir, writeTree } from '../engine/helpers.js';

let root: string;
let template: string;
const src = () => join(root, 'src');
/** Kept snapshot ID -> version written by writeTree. */
const kept = new Map<string, number>();
let totalSteps = 0;

const VERSIONS = 12;

beforeAll(async () => {
  root = await tempDir();
  template = join(root, 'template');
  const repo = await initRepo(template);
  const ids: string[] = [];
  for (let v = 0; v < VERSIONS; v++) {
    await writeTree(src(), v);
    const r = await backup(repo, { paths: [src()], time: new Date(Date.UTC(2023, v, 1)) });
    ids.push(r.id!);
  }
  // Forget every other snapshot: their unique blobs become unused, spread over many packs.
  for (let v = 0; v < VERSIONS; v++) {
    if (v % 2 === 0) await repo.backend.remove({ type: 'snapshot', name: ids[v]! });
    else kept.set(ids[v]!, v);
  }
  await repo.close();
}, 60_000);
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function openBare(dir: string): Promise<Repository> {
  return Repository.open(new LocalBackend(dir), PASSWORD);
}

async function verifyRepo(dir: string, label: string, restoreAll = true): Promise<void> {
  const repo = await openBare(dir);
  const r = await check(repo, { readData: { all: true } });
  expect(r.problems, label).toEqual([]);
  expect(r.snapshots, label).toBe(kept.size);
  await repo.close();
  if (!restoreAll) return;
  const r2 = await openBare(dir);
  await r2.loadIndex();
  for (const [id, v] of kept) {
    const target = join(dir + '-restore', id);
    await restore(r2, { tree: (await r2.loadSnapshot(id)).tree, target });
    const expectedDir = join(dir + '-expected', String(v));
    await writeTree(expectedDir, v);
    const got = await readAll(join(target, src()));
    const want = await readAll(expectedDir);
    expect([...got.keys()].sort(), label).toEqual([...want.keys()].sort());
    for (const [p, b] of want) expect(got.get(p)!.equals(b), `${label}: ${p} of snapshot ${id}`).toBe(true);
  }
  await r2.close();
  await rm(dir + '-restore', { recursive: true, force: true });
}

describe('prune crash safety', () => {
  it('an uninterrupted prune frees space, repacks, and leaves a repository that checks and restores', async () => {
    const dir = join(root, 'full');
    await cp(template, dir, { recursive: true });
    const before = (await listFiles(join(dir, 'data'))).length;
    const r = await snap(['-r', dir, '--cache-dir', join(root, 'cache'), '--json', 'prune', '--max-unused', '0%']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(j.packsDeleted).toBeGreaterThan(5);
    expect(j.packsWritten).toBeGreaterThan(0);
    expect(j.bytesFreed).toBeGreaterThan(50_000);
    totalSteps = j.packsWritten + 1 + j.indexesDeleted + j.packsDeleted;
    expect(totalSteps).toBeGreaterThanOrEqual(20);
    expect((await listFiles(join(dir, 'data'))).length).toBeLessThan(before);
    expect(await listFiles(join(dir, 'locks'))).toEqual([]);
    await verifyRepo(dir, 'uninterrupted');
    // Nothing left to do.
    const again = await openBare(dir);
    const plan = await planPrune(again, { maxUnused: 0 });
    expect(plan.summary.packs.delete + plan.summary.packs.repack + plan.summary.packs.unreferenced).toBe(0);
    await again.close();
  }, 60_000);

  it('removes the temporary files killed writers left (an hour old), not a fresh one', async () => {
    const dir = join(root, 'stale-temp');
    await cp(template, dir, { recursive: true });
    const hoursAgo = new Date(Date.now() - 2 * 3600_000);
    const old = [join(dir, 'data', '.tmp-0123456789abcdef'), join(dir, 'meta', '.tmp-89abcdef01234567'), join(dir, 'data', 'ab', '.tmp-old-style-123456'), join(dir, 'keys', '.tmp-fedcba9876543210'), join(dir, '.tmp-config-abcdef')];
    await mkdir(join(dir, 'data', 'ab'), { recursive: true });
    for (const [i, f] of old.entries()) {
      await writeFile(f, Buffer.alloc(1000 * (i + 1)));
      await utimes(f, hoursAgo, hoursAgo);
    }
    const fresh = join(dir, 'data', '.tmp-being-written-now');
    await writeFile(fresh, 'partial');
    const r = await snap(['-r', dir, '--cache-dir', join(root, 'cache'), '--json', 'prune']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect({ files: j.tempFilesRemoved, bytes: j.tempBytesRemoved }).toEqual({ files: 5, bytes: 15_000 });
    for (const f of old) expect(existsSync(f)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
    await verifyRepo(dir, 'stale-temp');
  }, 60_000);

  it('killed at >= 20 seeded points: check passes, kept snapshots restore byte-identical, re-run finishes', async () => {
    expect(totalSteps).toBeGreaterThanOrEqual(20);
    const rnd = prng(4242);
    const points = new Set<number>([1, 2, totalSteps - 1, totalSteps]);
    while (points.size < Math.min(24, totalSteps)) points.add(1 + Math.floor(rnd() * totalSteps));
    // One past the last step: expected to finish; it is handled like any run that is not killed.
    points.add(totalSteps + 1);
    let viaCli = false;
    const kills: number[] = [];
    const completed: number[] = [];
    await mapLimit([...points].sort((a, b) => a - b), 2, async (k) => {
      const dir = join(root, `crash-${k}`);
      await cp(template, dir, { recursive: true });
      const r = await snap(['-r', dir, '--cache-dir', join(root, `cache-${k}`), 'prune', '--max-unused', '0%'], { SNAP_TEST_CRASH_AT: String(k) });
      if (r.signal !== 'SIGKILL') {
        // The plan is deterministic, so this should not happen; if a run has fewer steps than the
        // reference, it must have finished cleanly and left a good repository, but it is no crash point.
        expect(r.code, `crash point ${k} neither killed nor clean: ${r.code} ${r.signal} ${r.stdout} ${r.stderr}`).toBe(0);
        expect(await listFiles(join(dir, 'locks')), `lock left by the finished prune at ${k}`).toEqual([]);
        await verifyRepo(dir, `finished run at step ${k}`, false);
        completed.push(k);
        await rm(dir, { recursive: true, force: true });
        return;
      }
      kills.push(k);
      expect((await listFiles(join(dir, 'locks'))).length, `lock left by the killed prune at ${k}`).toBe(1);
      await verifyRepo(dir, `after crash at step ${k}`);
      if (!viaCli) {
        // Once through the CLI: the dead process's lock is removed as stale, and check exits 0.
        viaCli = true;
        const c = await snap(['-r', dir, 'check']);
        expect(c.code, c.stdout + c.stderr).toBe(0);
        expect(c.stderr).toMatch(/removed stale lock .* no longer exists/);
        expect(await listFiles(join(dir, 'locks'))).toEqual([]);
      }
      // Re-run: finishes the job.
      const repo = await openBare(dir);
      const plan = await planPrune(repo, { maxUnused: 0 });
      await executePrune(repo, plan, { maxUnused: 0 });
      await repo.close();
      const after = await openBare(dir);
      const plan2 = await planPrune(after, { maxUnused: 0 });
      expect(plan2.summary.packs.delete + plan2.summary.packs.repack + plan2.summary.packs.unreferenced, `leftovers after re-run at ${k}`).toBe(0);
      await after.close();
      expect((await listFiles(join(dir, "index"))).length, `index objects after re-run at ${k}`).toBe(1);
      await verifyRepo(dir, `after re-run at step ${k}`, false);
      await rm(dir, { recursive: true, force: true });
    });
    expect(kills.length, `real kills (finished without a kill at ${completed.join(', ') || 'none'})`).toBeGreaterThanOrEqual(20);
  }, 120_000);
});
