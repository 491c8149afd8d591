// Restores of many small files, where the crypto workers create, write and finish the files while
// the trees are still being read.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeTree, prng } from '../helpers/tree.js';
import { initRepo, snap, snapInterrupted, tempDir } from '../helpers/cli.js';

describe('restore of many small files', () => {
  const tmp = tempDir();
  const src = join(tmp.path, 'src');
  const repo = join(tmp.path, 'repo');
  let env: Record<string, string>;

  beforeAll(() => {
    const r = prng(7);
    // 40 directories of 100 small files; every 10th file of a directory has the same content as a
    // file of the first directory, so its blob is needed again long after that pack was first read.
    for (let d = 0; d < 40; d++) {
      const dir = join(src, `d${String(d).padStart(2, '0')}`);
      mkdirSync(dir, { recursive: true });
      for (let f = 0; f < 100; f++) {
        const same = f % 10 === 0;
        writeFileSync(join(dir, `f${f}`), same ? `shared content ${f}`.repeat(50) : r.bytes(200 + ((d * 100 + f) % 3000)));
        utimesSync(join(dir, `f${f}`), 1_600_000_000 + f, 1_600_000_000 + d * 100 + f + 0.123456789);
      }
    }
    // Permission bits the umask would strip at creation, and none at all.
    writeFileSync(join(src, 'd00', 'all-rw'), 'everyone writes');
    chmodSync(join(src, 'd00', 'all-rw'), 0o777);
    writeFileSync(join(src, 'd00', 'none'), 'nobody reads');
    chmodSync(join(src, 'd00', 'none'), 0o000);
    // Small packs: the restore reads many, several of them in parts.
    env = initRepo(repo, ['--pack-size', '64K', '--chunk-min', '16K', '--chunk-avg', '64K', '--chunk-max', '256K']);
    const b = snap(['backup', src], env);
    if (b.code !== 0) throw new Error(b.stderr);
  }, 120_000);

  afterAll(() => tmp.cleanup());

  it('restores byte-identical with modes and times, duplicates included', () => {
    const target = join(tmp.path, 'out');
    const r = snap(['restore', 'latest', '--target', target, '--json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(describeTree(join(target, src))).toEqual(describeTree(src));
    expect(statSync(join(target, src, 'd00', 'all-rw')).mode & 0o7777).toBe(0o777);
    expect(statSync(join(target, src, 'd00', 'none')).mode & 0o7777).toBe(0);
    expect(statSync(join(target, src, 'd39', 'f99'), { bigint: true }).mtimeNs).toBe(statSync(join(src, 'd39', 'f99'), { bigint: true }).mtimeNs);
  }, 120_000);

  it('Ctrl-C: exit 130, every file under its own name is complete, and the same command finishes', async () => {
    const target = join(tmp.path, 'out-int');
    const count = () => {
      try {
        return readdirSync(join(target, src)).reduce((n, d) => n + readdirSync(join(target, src, d)).length, 0);
      } catch {
        return 0;
      }
    };
    const { code, stderr } = await snapInterrupted(['restore', 'latest', '--target', target], env, () => count() >= 300, 2);
    expect(code).toBe(130);
    expect(stderr).toMatch(/interrupted/);
    // A file under its own name has its snapshot content and time: none was left half-written.
    const want = describeTree(src);
    for (const [path, e] of describeTree(join(target, src))) {
      if (path.endsWith('.snap-restore') || e.type !== 'file') continue;
      expect({ path, ...e }).toEqual({ path, ...want.get(path) });
    }
    const again = snap(['restore', 'latest', '--target', target], env);
    expect(again.code).toBe(0);
    expect(describeTree(join(target, src))).toEqual(want);
  }, 120_000);
});

describe('restore of blobs larger than one read', () => {
  const tmp = tempDir();

  afterAll(() => tmp.cleanup());

  it('reads every blob, those larger than a read and more than the read memory at once, byte-identical', () => {
    const src = join(tmp.path, 'src');
    mkdirSync(src);
    const r = prng(11);
    // Chunks of 8 MiB on average: most blobs are larger than a read (reads are cut at 4 MiB) and
    // read alone, and the 4 parallel reads together exceed the memory reads may hold (24 MiB).
    for (let i = 0; i < 3; i++) writeFileSync(join(src, `big${i}`), r.bytes((18 + i) << 20));
    const env = initRepo(join(tmp.path, 'repo'), ['--chunk-min', '1M', '--chunk-avg', '8M', '--chunk-max', '16M']);
    expect(snap(['backup', src], env).code).toBe(0);
    const target = join(tmp.path, 'out');
    const res = snap(['restore', 'latest', '--target', target], env);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(describeTree(join(target, src))).toEqual(describeTree(src));
  }, 120_000);
});
