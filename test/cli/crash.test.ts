// kill -9 during a backup at several points: the repository still opens, earlier snapshots restore
// byte-identical, and the next backup succeeds (format-spec ch. 10).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initRepo, snap, snapInterrupted, snapSignalled, tempDir } from '../helpers/cli.js';
import { describeTree, prng } from '../helpers/tree.js';

function count(dir: string): number {
  if (!existsSync(dir)) return 0;
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && !e.name.startsWith('.tmp-')).length;
}

describe('crash during backup', () => {
  const tmp = tempDir();
  const src = join(tmp.path, 'src');
  const repo = join(tmp.path, 'repo');
  let env: Record<string, string>;
  let firstTree: ReturnType<typeof describeTree>;

  beforeAll(() => {
    const r = prng(3);
    mkdirSync(src);
    for (let i = 0; i < 6; i++) writeFileSync(join(src, `first-${i}`), r.bytes(300_000));
    // Small packs so the backup writes many of them: more distinct places to die.
    env = initRepo(repo, ['--pack-size', '256K', '--chunk-min', '16K', '--chunk-avg', '64K', '--chunk-max', '256K']);
    expect(snap(['backup', src], env).code).toBe(0);
    firstTree = describeTree(src);
    for (let d = 0; d < 8; d++) {
      mkdirSync(join(src, `more-${d}`));
      for (let i = 0; i < 10; i++) writeFileSync(join(src, `more-${d}`, `f${i}`), r.bytes(250_000));
    }
  }, 60_000);
  afterAll(() => tmp.cleanup());

  const packs = () => count(join(repo, 'data'));
  const points: [string, () => boolean][] = [
    ['right after start', () => true],
    ['after the first new pack', () => packs() >= 3],
    ['in the middle', () => packs() >= 20],
    ['near the end', () => packs() >= 60],
  ];

  it.each(points)('killed %s: repository opens, old snapshot restores, next backup works', async (_, when) => {
    const before = packs();
    // SIGKILL once the point is reached (checked every 5 ms): no clean-up of any kind.
    const killedAt = (await snapSignalled(['backup', src], env, 'SIGKILL', () => when() || false, 5)).sent;
    expect(killedAt).toBe(true);
    expect(packs()).toBeGreaterThanOrEqual(before);
    const list = snap(['snapshots', '--json'], env);
    expect(list.code).toBe(0);
    const snaps = JSON.parse(list.stdout) as { id: string; paths: string[] }[];
    expect(snaps.length).toBeGreaterThanOrEqual(1);
    const target = join(tmp.path, `restore-${before}`);
    const r = snap(['restore', snaps[0]!.id, '--target', target], env);
    expect(r.code).toBe(0);
    expect(describeTree(join(target, src))).toEqual(firstTree);
  }, 60_000);

  it('Ctrl-C: exit 130, no snapshot, and what was stored is indexed so the next backup reuses it', async () => {
    const dir = join(tmp.path, 'interrupt-src');
    mkdirSync(dir);
    const r = prng(77);
    for (let i = 0; i < 40; i++) writeFileSync(join(dir, `f${i}`), r.bytes(500_000));
    const repo2 = join(tmp.path, 'repo-int');
    const env2 = initRepo(repo2, ['--pack-size', '256K', '--chunk-min', '16K', '--chunk-avg', '64K', '--chunk-max', '256K']);
    const { code, stderr } = await snapInterrupted(['backup', dir], env2, () => count(join(repo2, 'data')) >= 10, 5);
    expect(code).toBe(130);
    expect(stderr).toMatch(/interrupted/);
    // One message: the files the interruption cut short are not reported one by one.
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(count(join(repo2, 'snapshots'))).toBe(0);
    expect(count(join(repo2, 'index'))).toBeGreaterThan(0);
    // Packs are written to temporary files as they fill: the open one was stored or removed.
    expect(readdirSync(repo2, { recursive: true, encoding: 'utf8' }).filter((f) => f.split('/').pop()!.startsWith('.tmp-'))).toEqual([]);
    const next = JSON.parse(snap(['backup', dir, '--json'], env2).stdout.trim().split('\n').pop()!);
    expect(next.total_bytes_processed).toBe(40 * 500_000);
    // Blobs stored before the interruption are not stored again.
    expect(next.data_added).toBeLessThan(40 * 500_000 * 0.9);
    expect(snap(['check', '--read-data'], env2).code).toBe(0);
  }, 60_000);

  it('the next backup completes and restores everything', () => {
    const b = snap(['backup', src], env);
    expect(b.code).toBe(0);
    const target = join(tmp.path, 'restore-final');
    expect(snap(['restore', 'latest', '--target', target], env).code).toBe(0);
    expect(describeTree(join(target, src))).toEqual(describeTree(src));
    expect(readFileSync(join(target, src, 'more-7', 'f9')).equals(readFileSync(join(src, 'more-7', 'f9')))).toBe(true);
  }, 60_000);

  it('Ctrl-C during prune: exit 130 with a message saying so, check passes, and the next prune finishes', async () => {
    expect(snap(['forget', '--keep-last', '1'], env).code).toBe(0);
    // Interrupted as soon as its lock is written, so long before it is done.
    const locks = join(repo, 'locks');
    const { code, stderr } = await snapInterrupted(['prune'], env, () => existsSync(locks) && readdirSync(locks).length > 0, 1);
    expect({ code, stderr }).toEqual({ code: 130, stderr: expect.stringMatching(/^snap: prune interrupted/) });
    expect(snap(['check', '--read-data'], env).code).toBe(0);
    expect(snap(['prune'], env).code).toBe(0);
    expect(JSON.parse(snap(['prune', '--dry-run', '--json'], env).stdout.trim().split('\n').pop()!).packs.delete).toBe(0);
  }, 60_000);
});
