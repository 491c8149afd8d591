// snap repair index: lost or damaged index objects are rebuilt from the packs' own headers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initRepo, snap, tempDir } from '../helpers/cli.js';
import { describeTree, prng } from '../helpers/tree.js';

const objects = (dir: string) => (readdirSync(dir, { recursive: true, encoding: 'utf8' }) as string[]).filter((f) => /^[0-9a-f]{64}$/.test(f.split('/').pop()!)).map((f) => join(dir, f));
const lastJson = (s: string) => JSON.parse(s.trim().split('\n').pop()!);

describe('repair index', () => {
  const tmp = tempDir();
  const src = join(tmp.path, 'src');
  const pristine = join(tmp.path, 'pristine');
  let repo: string;
  let env: Record<string, string>;

  beforeAll(() => {
    mkdirSync(join(src, 'd'), { recursive: true });
    for (let i = 0; i < 4; i++) writeFileSync(join(src, 'd', `f${i}`), prng(40 + i).bytes(300_000));
    env = initRepo(pristine, ['--pack-size', '256K', '--chunk-min', '16K', '--chunk-avg', '64K', '--chunk-max', '256K']);
    env = { ...env, SNAP_REPOSITORY: pristine };
    expect(snap(['backup', src], env).code).toBe(0);
    writeFileSync(join(src, 'later'), prng(50).bytes(200_000));
    expect(snap(['backup', src], env).code).toBe(0);
  }, 60_000);
  afterAll(() => tmp.cleanup());

  /** A fresh copy of the two-snapshot repository to damage. */
  const copy = (name: string) => {
    repo = join(tmp.path, name);
    cpSync(pristine, repo, { recursive: true });
    env = { ...env, SNAP_REPOSITORY: repo, XDG_CACHE_HOME: join(tmp.path, `cache-${name}`) };
  };

  it('every index object lost: check says to repair, repair rebuilds it, and everything restores', () => {
    copy('lost');
    for (const f of objects(join(repo, 'index'))) rmSync(f);
    const broken = snap(['check'], env);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(/but not in the index/);
    expect(broken.stdout).toMatch(/hint: .*`snap repair index` rebuilds the index from the packs/);
    // Prune refuses such a repository rather than delete the packs no index names.
    expect(snap(['prune'], env).code).toBe(1);
    const r = snap(['repair', 'index', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const packs = objects(join(repo, 'data')).length + objects(join(repo, 'meta')).length;
    expect(lastJson(r.stdout)).toMatchObject({ indexes_read: 0, packs, packs_read: packs, packs_missing: 0, unreadable: [] });
    expect(objects(join(repo, 'index'))).toHaveLength(1);
    expect(snap(['check', '--read-data'], env).code).toBe(0);
    const target = join(tmp.path, 'restored');
    expect(snap(['restore', 'latest', '--target', target], env).code).toBe(0);
    expect(describeTree(join(target, src))).toEqual(describeTree(src));
    // Run again: the index is complete, nothing is written.
    expect(lastJson(snap(['repair', 'index', '--json'], env).stdout)).toMatchObject({ index: null, packs_read: 0 });
    expect(objects(join(repo, 'index'))).toHaveLength(1);
  }, 60_000);

  it('a damaged index object is named, replaced by what the packs say, and removed', () => {
    copy('damaged');
    const indexes = objects(join(repo, 'index'));
    expect(indexes.length).toBeGreaterThan(1);
    const bytes = readFileSync(indexes[0]!);
    bytes[bytes.length >> 1] ^= 0xff;
    writeFileSync(indexes[0]!, bytes);
    expect(snap(['check'], env).code).toBe(1);
    const r = snap(['repair', 'index', '--json'], env);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(indexes[0]!.split('/').pop()!);
    const res = lastJson(r.stdout);
    expect(res).toMatchObject({ indexes_damaged: 1, indexes_read: indexes.length - 1, indexes_removed: indexes.length });
    // Only the packs the damaged object described had their headers read.
    expect(res.packs_read).toBeGreaterThan(0);
    expect(res.packs_read).toBeLessThan(res.packs);
    expect(objects(join(repo, 'index')).map((f) => f.split('/').pop())).toEqual([res.index]);
    expect(snap(['check', '--read-data'], env).code).toBe(0);
  }, 60_000);

  it('a pack that is gone: its entries are dropped, and check then names what is really lost', () => {
    copy('pack-gone');
    const data = objects(join(repo, 'data'));
    rmSync(data[0]!);
    const res = lastJson(snap(['repair', 'index', '--json'], env).stdout);
    expect(res).toMatchObject({ packs_missing: 1, packs: data.length - 1 + objects(join(repo, 'meta')).length });
    const c = snap(['check'], env);
    expect(c.code).toBe(1);
    expect(c.stdout).toMatch(/data blob [0-9a-f]{64}: used by snapshots\/.* but not in the index/);
    expect(c.stdout).not.toMatch(/hint:/);
  }, 60_000);
});
