// snap repair index: lost or damaged index objects are rebuilt from the packs' own headers.
// snap repair packs: the intact blobs of damaged packs are kept, the damaged packs removed.
// snap repair snapshots: what the storage lost is removed from the snapshots, the rest restores.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initRepo, jsonLines, lastJson, snap, tempDir } from '../helpers/cli.js';
import { describeTree, prng } from '../helpers/tree.js';

const objects = (dir: string) => (readdirSync(dir, { recursive: true, encoding: 'utf8' }) as string[]).filter((f) => /^[0-9a-f]{64}$/.test(f.split('/').pop()!)).map((f) => join(dir, f));

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
    expect(c.stdout).toMatch(/hint: blobs in use are lost .*`snap repair snapshots` removes them/);
    expect(c.stdout).not.toMatch(/repair index/);
  }, 60_000);
});

describe('repair snapshots', () => {
  const tmp = tempDir();
  const src = join(tmp.path, 'src');
  const repo = join(tmp.path, 'repo');
  let env: Record<string, string>;
  const top = prng(60).bytes(400_000);
  const appended = prng(61).bytes(300_000);
  const later = prng(62).bytes(200_000);
  /** The packs the first backup wrote: all of them are lost below. */
  let firstPacks: string[];
  const ids = (): { id: string; original?: string; summary?: Record<string, number> }[] => JSON.parse(snap(['snapshots', '--json'], env).stdout);

  beforeAll(() => {
    mkdirSync(join(src, 'd'), { recursive: true });
    writeFileSync(join(src, 'top.bin'), top);
    for (let i = 0; i < 2; i++) writeFileSync(join(src, 'd', `f${i}`), prng(70 + i).bytes(100_000));
    env = initRepo(repo, ['--pack-size', '256K', '--chunk-min', '16K', '--chunk-avg', '64K', '--chunk-max', '256K']);
    env = { ...env, SNAP_REPOSITORY: repo };
    expect(snap(['backup', src], env).code).toBe(0);
    firstPacks = [...objects(join(repo, 'data')), ...objects(join(repo, 'meta'))];
    // The second snapshot: top.bin grown (its first chunks are the first backup's, its last ones
    // new), a new file, and d unchanged (its tree is the first backup's).
    writeFileSync(join(src, 'top.bin'), Buffer.concat([top, appended]));
    writeFileSync(join(src, 'later'), later);
    expect(snap(['backup', src], env).code).toBe(0);
  }, 60_000);
  afterAll(() => tmp.cleanup());

  it('after packs are lost: keeps what remains, stores unreadable directories empty, and the repository checks out', () => {
    const [first, second] = ids();
    for (const f of firstPacks) rmSync(f);
    // The index still names the lost packs: repair snapshots would take their blobs for present.
    const early = snap(['repair', 'snapshots'], env);
    expect(early.code).toBe(2);
    expect(early.stderr).toMatch(/the index names \d+ packs that are not stored[\s\S]*run `snap repair index` first/);
    const gone = snap(['check'], env);
    expect(gone.code).toBe(1);
    expect(gone.stdout).toMatch(/named in the index but missing from the repository/);
    expect(gone.stdout).toMatch(/hint: packs the index names are gone: `snap repair index` drops them .* then `snap repair snapshots`/);
    expect(snap(['repair', 'index'], env).code).toBe(0);
    expect(snap(['check'], env).code).toBe(1);

    // A dry run reports and changes nothing.
    const dry = snap(['repair', 'snapshots', '--dry-run', '--forget', '--json'], env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(ids()).toEqual([first, second]);
    expect(lastJson(dry.stdout)).toMatchObject({ dry_run: true, selected: 2, repaired: [{ from: second!.id, to: null }], unreadable: [{ id: first!.id, forgotten: false }] });

    const r = snap(['repair', 'snapshots', '--forget', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const lines = jsonLines(r.stdout);
    const file = lines.find((l) => l.message_type === 'repaired_file');
    expect(file).toMatchObject({ snapshot: second!.id, path: join(src, 'top.bin') });
    expect(file.kept).toBeGreaterThan(0);
    expect(file.kept).toBeLessThan(file.blobs);
    expect(lines.filter((l) => l.message_type === 'repaired_directory').map((l) => l.path)).toEqual([join(src, 'd')]);
    // The first snapshot's root tree is lost: nothing of it can be restored, so it goes.
    expect(r.stderr).toContain(`snapshot ${first!.id.slice(0, 8)}: its root tree cannot be read`);
    const summary = lines.pop();
    expect(summary).toMatchObject({ repaired: [{ from: second!.id, forgotten: true }], unreadable: [{ id: first!.id, forgotten: true }] });
    const now = ids();
    expect(now).toHaveLength(1);
    expect(now[0]).toMatchObject({ id: summary.repaired[0].to, original: second!.id });

    const c = snap(['check', '--read-data'], env);
    expect(c.code, c.stdout).toBe(0);
    const target = join(tmp.path, 'restored');
    expect(snap(['restore', 'latest', '--target', target], env).code).toBe(0);
    const out = join(target, src);
    expect(readFileSync(join(out, 'later')).equals(later)).toBe(true);
    expect(readdirSync(join(out, 'd'))).toEqual([]);
    // top.bin keeps the blobs that remain: the chunks the second backup stored, its end.
    const whole = Buffer.concat([top, appended]);
    const kept = readFileSync(join(out, 'top.bin'));
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(whole.length);
    expect(kept.equals(whole.subarray(whole.length - kept.length))).toBe(true);
    // Its summary counts what it now holds: top.bin as kept and later; d's files are gone.
    const [repaired] = JSON.parse(snap(['snapshots', '--json'], env).stdout);
    expect(second!.summary).toMatchObject({ total_files_processed: 4, total_bytes_processed: whole.length + later.length + 200_000 });
    expect(repaired.summary).toMatchObject({ total_files_processed: 2, total_bytes_processed: kept.length + later.length });

    // Nothing left to repair; prune keeps the repository sound.
    expect(lastJson(snap(['repair', 'snapshots', '--json'], env).stdout)).toMatchObject({ selected: 1, repaired: [], unreadable: [] });
    expect(snap(['prune'], env).code).toBe(0);
    expect(snap(['check', '--read-data'], env).code).toBe(0);
  }, 90_000);
});

describe('repair packs', () => {
  const tmp = tempDir();
  const src = join(tmp.path, 'src');
  const repo = join(tmp.path, 'repo');
  let env: Record<string, string>;

  beforeAll(() => {
    mkdirSync(src, { recursive: true });
    for (let i = 0; i < 4; i++) writeFileSync(join(src, `f${i}`), prng(80 + i).bytes(300_000));
    env = initRepo(repo, ['--pack-size', '256K', '--chunk-min', '16K', '--chunk-avg', '64K', '--chunk-max', '256K']);
    env = { ...env, SNAP_REPOSITORY: repo };
    expect(snap(['backup', src], env).code).toBe(0);
  }, 60_000);
  afterAll(() => tmp.cleanup());

  it('keeps the intact blobs of damaged packs, saves a copy of each, and a backup stores the lost blob again', () => {
    const [rotten, headless] = objects(join(repo, 'data'));
    // Bit rot in the first blob of one pack; in the header of another (its blobs are intact).
    const flip = (file: string, at: (size: number) => number) => {
      const b = readFileSync(file);
      b[at(b.length)] ^= 0x40;
      writeFileSync(file, b);
      return b;
    };
    const rottenBytes = flip(rotten!, () => 100);
    flip(headless!, (size) => size - 10);
    const id = (f: string) => f.split('/').pop()!;

    const c = snap(['check', '--read-data'], env);
    expect(c.code).toBe(1);
    expect(c.stdout).toContain(`hint: \`snap repair packs ${[id(rotten!), id(headless!)].sort().map((x) => x.slice(0, 8)).join(' ')}\``);

    const saveDir = join(tmp.path, 'saved');
    const r = snap(['repair', 'packs', id(rotten!).slice(0, 12), id(headless!), '--save-dir', saveDir, '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const res = lastJson(r.stdout);
    const byId = new Map(res.packs.map((p: { id: string }) => [p.id, p]));
    const rot = byId.get(id(rotten!)) as { blobs: number; salvaged: number; lost: string[]; saved_as: string };
    expect(rot.lost).toHaveLength(1);
    expect(rot.salvaged).toBe(rot.blobs - 1);
    // Its header unreadable, the other pack's blobs are found through the index: all kept.
    const head = byId.get(id(headless!)) as { blobs: number; salvaged: number; lost: string[] };
    expect(head.blobs).toBeGreaterThan(0);
    expect(head).toMatchObject({ salvaged: head.blobs, lost: [] });
    // The damaged packs are gone from the repository, a copy of each kept as it was stored.
    expect(existsSync(rotten!) || existsSync(headless!)).toBe(false);
    expect(readFileSync(rot.saved_as).equals(rottenBytes)).toBe(true);

    // Only the rotten blob is missing now, and check says what to do about it.
    const after = snap(['check'], env);
    expect(after.code).toBe(1);
    expect(after.stdout).toContain(`data blob ${rot.lost[0]}: used by snapshots/`);
    expect(after.stdout).toContain('1 problems found');
    expect(after.stdout).toMatch(/hint: blobs in use are lost .* a backup stores them again/);
    // The files still exist: a backup stores the lost blob again, and every file restores.
    expect(snap(['backup', src], env).code).toBe(0);
    expect(snap(['check', '--read-data'], env).code).toBe(0);
    const target = join(tmp.path, 'restored');
    expect(snap(['restore', 'latest', '--target', target], env).code).toBe(0);
    expect(describeTree(join(target, src))).toEqual(describeTree(src));
  }, 90_000);

  it('refuses what is not a stored pack, and says what to do about one that is gone', () => {
    const none = snap(['repair', 'packs', 'ffffffffffff'], env);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no pack ffffffffffff is stored/);
    expect(snap(['repair', 'packs', ''], env).code).toBe(2);
    expect(snap(['repair', 'packs', 'not-hex'], env).stderr).toMatch(/"not-hex" is not a pack ID/);
    const gone = objects(join(repo, 'data'))[0]!;
    rmSync(gone);
    const r = snap(['repair', 'packs', gone.split('/').pop()!], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is not stored, though the index names it[\s\S]*`snap repair index` drops it/);
  }, 30_000);
});
