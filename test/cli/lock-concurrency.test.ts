import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { LocalBackend } from '../../src/backend/local.js';
import { Lock, listLocks } from '../../src/repository/lock.js';
import { Repository } from '../../src/repository/repository.js';
import { PASSWORD, initRepo, listFiles, rm, snap, snapSpawn, tempDir, writeTree } from '../engine/helpers.js';

let root: string;
let repoDir: string;
beforeAll(async () => {
  root = await tempDir();
  repoDir = join(root, 'repo');
  await (await initRepo(repoDir)).close();
  await writeTree(join(root, 'a'), 1);
  await writeTree(join(root, 'b'), 2);
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const snapshots = async () => (await listFiles(join(repoDir, 'snapshots'))).length;

describe('locking', () => {
  it('two backups from two processes at once both succeed', async () => {
    const [x, y] = await Promise.all([snapSpawn(['-r', repoDir, 'backup', join(root, 'a')]), snapSpawn(['-r', repoDir, 'backup', join(root, 'b')])]);
    expect(x.code, x.stderr).toBe(0);
    expect(y.code, y.stderr).toBe(0);
    expect(await snapshots()).toBe(2);
    expect(await listFiles(join(repoDir, 'locks'))).toEqual([]);
  }, 30_000);

  it('a backup during an exclusive lock fails with exit 11 and writes nothing; --retry-lock waits for it', async () => {
    const repo = await Repository.open(new LocalBackend(repoDir), PASSWORD);
    const lock = await Lock.acquire(repo, 'exclusive');
    const before = await listFiles(repoDir);
    const r = await snap(['-r', repoDir, 'backup', join(root, 'a')]);
    expect(r.code).toBe(11);
    expect(r.stderr).toMatch(/repository is locked: exclusive lock .* held by pid \d+/);
    expect(await listFiles(repoDir)).toEqual(before);
    const waiting = snapSpawn(['-r', repoDir, '--retry-lock', '20s', 'backup', join(root, 'a')]);
    await new Promise((r) => setTimeout(r, 1500));
    await lock.release();
    const w = await waiting;
    expect(w.code, w.stderr).toBe(0);
    expect(await snapshots()).toBe(3);
    await repo.close();
  }, 30_000);

  it('backup + prune in two processes: each succeeds or fails with 11, and check passes', async () => {
    // Without --retry-lock, two commands that start together may both see the other's lock and
    // both give up (exit 11): allowed, as long as nothing is harmed.
    const [b, p] = await Promise.all([snapSpawn(['-r', repoDir, 'backup', join(root, 'b'), '--force']), snapSpawn(['-r', repoDir, 'prune'])]);
    expect([0, 11]).toContain(b.code);
    expect([0, 11]).toContain(p.code);
    const c = await snap(['-r', repoDir, 'check', '--read-data']);
    expect(c.code, c.stdout).toBe(0);
    // With --retry-lock both get their turn (randomised back-off breaks the tie) and succeed.
    const [b2, p2] = await Promise.all([
      snapSpawn(['-r', repoDir, '--retry-lock', '30s', 'backup', join(root, 'b'), '--force']),
      snapSpawn(['-r', repoDir, '--retry-lock', '30s', 'prune']),
    ]);
    expect(b2.code, b2.stderr).toBe(0);
    expect(p2.code, p2.stderr).toBe(0);
    const c2 = await snap(['-r', repoDir, 'check', '--read-data']);
    expect(c2.code, c2.stdout).toBe(0);
  }, 60_000);

  it('a stale lock (old refresh time) is ignored with a note; unlock removes only stale locks unless --remove-all', async () => {
    const repo = await Repository.open(new LocalBackend(repoDir), PASSWORD);
    const old = new Date(Date.now() - 3600_000).toISOString();
    await repo.saveMetadata('lock', { version: 1, time: old, refreshed: old, hostname: 'elsewhere', username: 'u', pid: 1, exclusive: true });
    const live = await Lock.acquire(repo, 'shared');
    const r = await snap(['-r', repoDir, 'snapshots']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/ignoring stale lock .* not refreshed for 60 min/);
    const u = await snap(['-r', repoDir, 'unlock']);
    expect(u.stdout).toContain('1 locks removed');
    expect((await listLocks(repo)).map((l) => l.name)).toEqual([live.lockName]);
    const all = await snap(['-r', repoDir, 'unlock', '--remove-all']);
    expect(all.stdout).toContain('1 locks removed');
    expect(await listLocks(repo)).toEqual([]);
    await live.release();
    await repo.close();
  }, 30_000);

  it('a lock left by a process of this host that no longer exists is removed by the next command, which says so once', async () => {
    const repo = await Repository.open(new LocalBackend(repoDir), PASSWORD);
    const gone = spawnSync(process.execPath, ['-e', '']).pid;
    const now = new Date().toISOString();
    await repo.saveMetadata('lock', { version: 1, time: now, refreshed: now, hostname: hostname(), username: 'u', pid: gone, exclusive: true });
    const r = await snap(['-r', repoDir, 'snapshots']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`removed stale lock \\S+ \\(pid ${gone} on .*\\): process ${gone} on .* no longer exists`));
    expect(await listLocks(repo)).toEqual([]);
    const again = await snap(['-r', repoDir, 'snapshots']);
    expect(again.stderr).toBe('');
    await repo.close();
  }, 30_000);
});
