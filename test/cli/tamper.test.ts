// A flipped byte or a truncation in any stored object is detected, the error names the object, and
// restore never writes a wrong byte under a real file name.
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { initRepo, snap, snapEnv, tempDir } from '../helpers/cli.js';
import { randomData } from '../helpers/tree.js';

function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)));
}

function flipByte(path: string, at: number): void {
  const b = readFileSync(path);
  b[at] ^= 0x01;
  writeFileSync(path, b);
}

describe('tampered and damaged objects', () => {
  const tmp = tempDir();
  const src = join(tmp.path, 'src');
  const pristine = join(tmp.path, 'pristine');
  const repo = join(tmp.path, 'repo');
  const env = snapEnv(repo);

  mkdirSync(src);
  writeFileSync(join(src, 'file'), randomData(3 * 1024 * 1024));
  mkdirSync(join(src, 'dir'));
  writeFileSync(join(src, 'dir', 'small'), 'small file');
  initRepo(pristine);
  const b = snap(['backup', src], snapEnv(pristine));
  if (b.code !== 0) throw new Error(b.stderr);

  beforeEach(() => {
    rmSync(repo, { recursive: true, force: true });
    cpSync(pristine, repo, { recursive: true });
  });
  afterAll(() => tmp.cleanup());

  const one = (prefix: string) => files(repo).filter((f) => f.startsWith(prefix));

  it.each([
    ['config', 'config'],
    ['keys/', 'key file'],
    ['snapshots/', 'snapshot'],
    ['index/', 'index'],
  ])('a flipped byte in %s is named', (prefix) => {
    const [f] = one(prefix);
    flipByte(join(repo, f!), Math.floor(statSync(join(repo, f!)).size / 2));
    // Without the index cache, which holds the index as read before the damage (as restic's
    // cache would); `snap check` never uses it (check-integrity.test.ts).
    const r = snap(['--no-cache', 'ls', 'latest'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stderr).toContain(f!);
  });

  it('a flipped byte in a meta pack names the tree blob and the pack', () => {
    const [f] = one('meta/');
    flipByte(join(repo, f!), 30);
    const r = snap(['ls', 'latest'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/tree blob [0-9a-f]{64}/);
    expect(r.stderr).toContain(f!);
  });

  it('a flipped byte in a data pack: restore fails naming it, and writes no wrong byte', () => {
    const [f] = one('data/');
    flipByte(join(repo, f!), 1000);
    const target = join(tmp.path, 'out-flip');
    const r = snap(['restore', 'latest', '--target', target], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/data blob [0-9a-f]{64}/);
    expect(r.stderr).toContain(f!);
    expect(existsSync(join(target, src, 'file'))).toBe(false);
  });

  it('a damaged blob of a one-blob file leaves no file under its name', () => {
    const one = join(tmp.path, 'one-src');
    mkdirSync(one);
    writeFileSync(join(one, 'small'), randomData(10_000));
    const r1 = join(tmp.path, 'one-repo');
    const e1 = initRepo(r1);
    expect(snap(['backup', one], e1).code).toBe(0);
    const [pack] = files(r1).filter((f) => f.startsWith('data/'));
    flipByte(join(r1, pack!), 30);
    const target = join(tmp.path, 'out-one');
    const r = snap(['restore', 'latest', '--target', target], e1);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/data blob [0-9a-f]{64}/);
    expect(existsSync(join(target, one, 'small'))).toBe(false);
  });

  it('a truncated data pack: restore fails naming it', () => {
    const [f] = one('data/');
    truncateSync(join(repo, f!), 100_000);
    const target = join(tmp.path, 'out-trunc');
    const r = snap(['restore', 'latest', '--target', target], env);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stderr).toContain(f!.split('/').pop()!);
    expect(existsSync(join(target, src, 'file'))).toBe(false);
  });

  it('the untouched copy restores byte-identical (the tests above damaged something real)', () => {
    const target = join(tmp.path, 'out-ok');
    const r = snap(['restore', 'latest', '--target', target], env);
    expect(r.code).toBe(0);
    expect(readFileSync(join(target, src, 'file')).equals(readFileSync(join(src, 'file')))).toBe(true);
  });
});
