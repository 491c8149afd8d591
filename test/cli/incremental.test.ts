// An incremental backup reuses what its parent snapshot knows (file contents, extended attributes
// of inodes whose ctime is unchanged, whole tree IDs of unchanged directories). These tests change
// only metadata between two backups and check the second snapshot has every change.
import { afterAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lgetxattr, llistxattr, lremovexattr, lsetxattr } from '../../src/native/binding.js';
import { describeTree } from '../helpers/tree.js';
import { initRepo, snap, tempDir } from '../helpers/cli.js';

function xattrsSupported(path: string): boolean {
  try {
    lsetxattr(path, 'user.snap-probe', Buffer.from('1'));
    lremovexattr(path, 'user.snap-probe');
    return true;
  } catch {
    return false;
  }
}

function lastJson<T>(r: { code: number; stdout: string; stderr: string }): T {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as T;
}

interface Summary {
  files_unchanged: number;
  dirs_unchanged: number;
  dirs_changed: number;
}

describe('incremental backup', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('records metadata-only changes (mode, mtime, xattrs) and keeps unchanged directories', () => {
    const src = join(tmp.path, 'src');
    for (const d of ['changed', 'xattrs', 'same']) {
      mkdirSync(join(src, d), { recursive: true });
      for (const f of ['a', 'b', 'c']) writeFileSync(join(src, d, f), `${d}/${f}\n`);
    }
    const withXattrs = xattrsSupported(join(src, 'xattrs', 'a'));
    if (withXattrs) {
      lsetxattr(join(src, 'xattrs', 'a'), 'user.k', Buffer.from('v1'));
      lsetxattr(join(src, 'xattrs', 'b'), 'user.gone', Buffer.from('soon'));
    }
    const env = initRepo(join(tmp.path, 'repo'));
    lastJson(snap(['backup', src, '--json'], env));

    chmodSync(join(src, 'changed', 'a'), 0o600);
    utimesSync(join(src, 'changed', 'b'), new Date('2020-01-02T03:04:05Z'), new Date('2020-01-02T03:04:05Z'));
    if (withXattrs) {
      lsetxattr(join(src, 'xattrs', 'a'), 'user.k', Buffer.from('v2'));
      lremovexattr(join(src, 'xattrs', 'b'), 'user.gone');
      lsetxattr(join(src, 'xattrs', 'c'), 'user.new', Buffer.from([0, 255]));
    }
    // A directory new since the parent snapshot: its scan sizes the xattr lists.
    mkdirSync(join(src, 'fresh'));
    writeFileSync(join(src, 'fresh', 'x'), 'x\n');
    writeFileSync(join(src, 'fresh', 'y'), 'y\n');
    if (withXattrs) lsetxattr(join(src, 'fresh', 'x'), 'user.fresh', Buffer.from('new dir'));
    const second = lastJson<Summary>(snap(['backup', src, '--json'], env));
    // A metadata change moves ctime, so those files are read again (their content dedups); 'same'
    // (and, without xattr support, 'xattrs') keep their tree.
    expect(second.files_unchanged).toBe(withXattrs ? 4 : 7);
    expect(second.dirs_unchanged).toBe(withXattrs ? 1 : 2);
    expect(second.dirs_changed).toBeGreaterThanOrEqual(withXattrs ? 2 : 1);

    const target = join(tmp.path, 'target');
    expect(snap(['restore', 'latest', '--target', target], env).code).toBe(0);
    expect(describeTree(join(target, src))).toEqual(describeTree(src));
    if (withXattrs) {
      const out = (f: string) => join(target, src, 'xattrs', f);
      expect(lgetxattr(out('a'), 'user.k').toString()).toBe('v2');
      expect(llistxattr(out('b')).map(String)).not.toContain('user.gone');
      expect([...lgetxattr(out('c'), 'user.new')]).toEqual([0, 255]);
      expect(lgetxattr(join(target, src, 'fresh', 'x'), 'user.fresh').toString()).toBe('new dir');
      expect(llistxattr(join(target, src, 'fresh', 'y'))).toEqual([]);
    }
  }, 60_000);
});
