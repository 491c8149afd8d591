// The flags users rely on, each checked for its effect.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync, existsSync, utimesSync } from 'node:fs';
import { llistxattr, lsetxattr } from '../../src/native/binding.js';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { initRepo, snap, tempDir, jsonLines as lines, lastJson as last } from '../helpers/cli.js';
import { prng } from '../helpers/tree.js';

/** Where a restore keeps the temporary file of `dir/name` (restorer.ts: tempName). */
const restoreTemp = (dir: string, name: string) => join(dir, `.${createHash('sha256').update(name).digest('hex').slice(0, 16)}.snap-restore`);

describe('command options', () => {
  const tmp = tempDir();
  const src = join(tmp.path, 'src');
  const repo = join(tmp.path, 'repo');
  let env: Record<string, string>;

  beforeAll(() => {
    mkdirSync(join(src, 'keep'), { recursive: true });
    mkdirSync(join(src, 'cache'));
    writeFileSync(join(src, 'keep', 'a.txt'), 'alpha');
    writeFileSync(join(src, 'keep', 'b.log'), 'log line');
    writeFileSync(join(src, 'cache', 'big.tmp'), prng(1).bytes(100_000));
    env = initRepo(repo);
  });
  afterAll(() => tmp.cleanup());

  it('--one-file-system stores a mount point as an empty directory and reads nothing below it', () => {
    if (process.getuid?.() !== 0) throw new Error('this test mounts a tmpfs and needs root (CI runs as root)');
    const root = join(tmp.path, 'ofs');
    const mnt = join(root, 'mnt');
    mkdirSync(mnt, { recursive: true });
    writeFileSync(join(root, 'here.txt'), 'on the root file system');
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]).status).toBe(0);
    try {
      mkdirSync(join(mnt, 'sub'));
      writeFileSync(join(mnt, 'sub', 'there.txt'), 'on the tmpfs');
      const ofsEnv = initRepo(join(tmp.path, 'repo-ofs'));
      const files = (args: string[]) => {
        const b = snap(['backup', root, '--json', ...args], ofsEnv);
        expect(b.code, b.stderr).toBe(0);
        const ls = snap(['ls', last(b.stdout).snapshot_id, '--json'], ofsEnv);
        return lines(ls.stdout)
          .filter((n: { message_type: string }) => n.message_type === 'node')
          .map((n: { path: string }) => n.path)
          .filter((p: string) => p.startsWith(root))
          .sort();
      };
      expect(files([])).toEqual([root, join(root, 'here.txt'), mnt, join(mnt, 'sub'), join(mnt, 'sub', 'there.txt')]);
      expect(files(['--one-file-system'])).toEqual([root, join(root, 'here.txt'), mnt]);
    } finally {
      spawnSync('umount', [mnt]);
    }
  });

  it('--exclude and --exclude-file leave matching paths out', () => {
    // An absolute pattern is anchored at the root.
    writeFileSync(join(tmp.path, 'excludes'), `# comment\n${src}/keep/*.log\n`);
    const r = snap(['backup', src, '--exclude', 'cache', '--exclude-file', join(tmp.path, 'excludes'), '--json', '--tag', 'a', '--tag', 'b', '--host', 'web1', '--time', '2020-01-02T03:04:05Z'], env);
    expect(r.code).toBe(0);
    const ls = lines(snap(['ls', 'latest', '--json'], env).stdout).filter((n) => n.message_type === 'node').map((n) => n.path);
    expect(ls).toContain(join(src, 'keep', 'a.txt'));
    expect(ls).not.toContain(join(src, 'keep', 'b.log'));
    expect(ls.some((p: string) => p.includes('/cache'))).toBe(false);
  });

  it('--exclude-if-present and --exclude-caches leave tagged directories out; --files-from lists the paths', () => {
    const base = join(tmp.path, 'tagged');
    for (const d of ['plain', 'nobackup', 'cache', 'fake-cache']) mkdirSync(join(base, d), { recursive: true });
    writeFileSync(join(base, 'plain', 'f'), 'kept');
    writeFileSync(join(base, 'nobackup', '.nobackup'), '');
    writeFileSync(join(base, 'nobackup', 'f'), 'left out');
    writeFileSync(join(base, 'cache', 'CACHEDIR.TAG'), 'Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag.\n');
    writeFileSync(join(base, 'cache', 'f'), 'left out');
    writeFileSync(join(base, 'fake-cache', 'CACHEDIR.TAG'), 'no signature here');
    writeFileSync(join(base, 'fake-cache', 'f'), 'kept: its tag lacks the signature');
    const list = join(tmp.path, 'files-from');
    writeFileSync(list, `# what to back up\n${base}\n\n${join(src, 'keep')}\n`);
    const r = snap(['backup', '--files-from', list, '--exclude-if-present', '.nobackup', '--exclude-caches', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const id = last(r.stdout).snapshot_id;
    const ls = lines(snap(['ls', id, '--json'], env).stdout).filter((n) => n.message_type === 'node').map((n) => n.path);
    expect(ls).toEqual(expect.arrayContaining([join(base, 'plain', 'f'), join(base, 'fake-cache', 'f'), join(base, 'fake-cache', 'CACHEDIR.TAG'), join(src, 'keep', 'a.txt')]));
    expect(ls.filter((p: string) => p.startsWith(join(base, 'nobackup')) || p.startsWith(join(base, 'cache')))).toEqual([]);
    expect(lines(snap(['snapshots', '--json'], env).stdout)[0].find((s: { id: string }) => s.id === id).paths).toEqual([join(src, 'keep'), base].sort());
    // Without the flags, the tagged directories are backed up like any other.
    const all = last(snap(['backup', base, '--json'], env).stdout).snapshot_id;
    expect(lines(snap(['ls', all, '--json'], env).stdout).map((n) => n.path)).toEqual(expect.arrayContaining([join(base, 'nobackup', 'f'), join(base, 'cache', 'f')]));
  });

  it('--files-from expands globs; -verbatim and -raw take paths as written; --iexclude and --exclude-larger-than leave files out', () => {
    const base = join(tmp.path, 'lists');
    mkdirSync(join(base, 'sub'), { recursive: true });
    for (const f of ['x1.conf', 'x2.conf', 'y.txt', '#hash', ' lead', 'Small.LOG', 'sub/deep.conf']) writeFileSync(join(base, f), f);
    writeFileSync(join(base, 'big.bin'), prng(2).bytes(200_000));
    const nodes = (id: string) => lines(snap(['ls', id, '--json'], env).stdout).filter((n) => n.message_type === 'node').map((n) => n.path);
    const under = (id: string) => nodes(id).filter((p: string) => p.startsWith(base + '/')).sort();
    writeFileSync(join(tmp.path, 'globs'), `# config files\n  ${base}/x*.conf  \n${base}/nothing-*.zzz\n`);
    writeFileSync(join(tmp.path, 'verbatim'), `${base}/#hash\n${base}/ lead\n`);
    writeFileSync(join(tmp.path, 'raw'), `${base}/y.txt\0${base}/sub\0`);
    const r = snap(['backup', '--files-from', join(tmp.path, 'globs'), '--files-from-verbatim', join(tmp.path, 'verbatim'), '--files-from-raw', join(tmp.path, 'raw'), '--json'], env);
    // A pattern that matches nothing is only a warning, as in restic: the snapshot is complete.
    expect(r.code, r.stderr).toBe(0);
    expect(lines(r.stderr).map((w) => w.message)).toEqual([`--files-from ${join(tmp.path, 'globs')}: "${base}/nothing-*.zzz" matches no file; skipped`]);
    const listed = last(r.stdout).snapshot_id;
    expect(under(listed)).toEqual(['#hash', ' lead', 'sub', 'sub/deep.conf', 'x1.conf', 'x2.conf', 'y.txt'].map((f) => join(base, f)).sort());
    // From standard input.
    const fromStdin = snap(['backup', '--files-from', '-', '--json'], env, `${base}/*.txt\n`);
    expect(fromStdin.code, fromStdin.stderr).toBe(0);
    expect(under(last(fromStdin.stdout).snapshot_id)).toEqual([join(base, 'y.txt')]);

    // Each filter follows a backup of the same paths without it (so that one is its parent, with
    // its directory cache): the filter must take effect, not the cached trees.
    const filtered = (flags: string[]) => {
      const whole = snap(['backup', base, '--json'], env);
      expect(under(last(whole.stdout).snapshot_id)).toEqual(expect.arrayContaining([join(base, 'big.bin'), join(base, 'Small.LOG')]));
      const r = snap(['backup', base, ...flags, '--json'], env);
      expect(r.code, r.stderr).toBe(0);
      expect(last(r.stdout).parent).toBe(last(whole.stdout).snapshot_id);
      return under(last(r.stdout).snapshot_id);
    };
    const small = filtered(['--exclude-larger-than', '100K']);
    expect(small).not.toContain(join(base, 'big.bin'));
    expect(small).toEqual(expect.arrayContaining([join(base, 'Small.LOG'), join(base, 'sub', 'deep.conf')]));
    const noLogs = filtered(['--iexclude', '*.log']);
    expect(noLogs).not.toContain(join(base, 'Small.LOG'));
    expect(noLogs).toEqual(expect.arrayContaining([join(base, 'big.bin'), join(base, 'sub', 'deep.conf')]));
    writeFileSync(join(tmp.path, 'iexcludes'), '# case does not matter\nX?.CONF\n');
    const byFile = snap(['backup', base, '--iexclude-file', join(tmp.path, 'iexcludes'), '--json'], env);
    expect(under(last(byFile.stdout).snapshot_id).filter((p: string) => p.endsWith('.conf'))).toEqual([join(base, 'sub', 'deep.conf')]);
    expect(snap(['backup', base, '--exclude-larger-than', 'lots'], env).stderr).toMatch(/--exclude-larger-than: "lots" is not a size/);
  });

  it('--tag, --host and --time are recorded and filter snapshots', () => {
    const all = JSON.parse(snap(['snapshots', '--json'], env).stdout);
    const s = all.find((x: { hostname: string }) => x.hostname === 'web1');
    expect(s.tags).toEqual(['a', 'b']);
    expect(s.time).toBe('2020-01-02T03:04:05.000Z');
    expect(JSON.parse(snap(['snapshots', '--json', '--host', 'nope'], env).stdout)).toEqual([]);
    expect(JSON.parse(snap(['snapshots', '--json', '--tag', 'b'], env).stdout)).toHaveLength(1);
  });

  it('snapshots ID... and --latest N (per host and paths) choose what is listed', { timeout: 60_000 }, () => {
    const lenv = initRepo(join(tmp.path, 'repo-latest'));
    const other = join(tmp.path, 'src-latest');
    mkdirSync(other, { recursive: true });
    writeFileSync(join(other, 'f'), 'f');
    const made: { id: string; host: string; path: string }[] = [];
    const day = (d: number) => `2024-01-${String(d).padStart(2, '0')} 12:00:00`;
    // Interleaved in time: web1 of src, web1 of other, web2 of src.
    [['web1', src], ['web1', other], ['web2', src], ['web1', src], ['web2', src], ['web1', src], ['web1', other]].forEach(([host, path], i) => {
      const b = snap(['backup', path!, '--host', host!, '--time', day(i + 1), '--json'], lenv);
      expect(b.code, b.stderr).toBe(0);
      made.push({ id: last(b.stdout).snapshot_id, host: host!, path: path! });
    });
    const ids = (args: string[]) => {
      const r = snap(['snapshots', '--json', ...args], lenv);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout).map((x: { id: string }) => x.id);
    };
    const at = (...i: number[]) => i.map((k) => made[k]!.id);
    expect(ids([])).toEqual(at(0, 1, 2, 3, 4, 5, 6));
    expect(ids(['--latest', '1'])).toEqual(at(4, 5, 6));
    expect(ids(['--latest', '2'])).toEqual(at(1, 2, 3, 4, 5, 6));
    expect(ids(['--latest', '1', '--host', 'web1'])).toEqual(at(5, 6));
    expect(ids([made[2]!.id.slice(0, 8), made[0]!.id])).toEqual(at(0, 2));
    expect(ids(['latest'])).toEqual(at(6));
    expect(ids(['latest', '--host', 'web2'])).toEqual(at(4));
    expect(snap(['snapshots', 'ffffffff'], lenv).code).toBe(1);
    expect(snap(['snapshots', '--latest', '0'], lenv).code).toBe(2);
  });

  it('--dry-run stores nothing; --parent and --force choose what is read again', { timeout: 60_000 }, () => {
    const before = readdirSync(join(repo, 'snapshots')).length;
    const dry = last(snap(['backup', src, '--dry-run', '--json'], env).stdout);
    expect(dry.snapshot_id).toBeNull();
    expect(dry.dry_run).toBe(true);
    expect(readdirSync(join(repo, 'snapshots')).length).toBe(before);
    const first = last(snap(['backup', src, '--json'], env).stdout);
    const again = last(snap(['backup', src, '--json'], env).stdout);
    expect(again.parent).toBe(first.snapshot_id);
    expect(again.files_unchanged).toBe(3);
    const forced = last(snap(['backup', src, '--json', '--force'], env).stdout);
    expect(forced.files_unchanged).toBe(0);
    expect(forced.parent).toBeNull();
    // A touched file is read again, the others are not.
    utimesSync(join(src, 'keep', 'a.txt'), new Date(), new Date(2030, 0, 1));
    const touched = last(snap(['backup', src, '--json', '--parent', first.snapshot_id.slice(0, 8)], env).stdout);
    expect(touched.parent).toBe(first.snapshot_id);
    expect(touched.files_changed).toBe(1);
    expect(touched.files_unchanged).toBe(2);
  });

  it('--ignore-inode and --ignore-ctime: a file with the same size and mtime is not read again despite a new inode or ctime', { timeout: 60_000 }, () => {
    const ienv = initRepo(join(tmp.path, 'repo-inode'));
    const dir = join(tmp.path, 'src-inode');
    mkdirSync(dir, { recursive: true });
    // Whole seconds: what utimes sets again below is then exactly what the first backup saw.
    const old = 1_700_000_000;
    for (const f of ['a', 'b']) {
      writeFileSync(join(dir, f), f.repeat(4));
      utimesSync(join(dir, f), old, old);
    }
    const run = (args: string[]) => {
      const r = snap(['backup', dir, '--json', ...args], ienv);
      expect(r.code, r.stderr).toBe(0);
      return last(r.stdout);
    };
    const cat = (id: string, name: string) => snap(['dump', `${id}:${join(dir, name)}`], ienv).stdout;
    const first = run([]).snapshot_id;
    // a: a new file renamed over it (new inode and ctime); b: rewritten in place (new ctime). Both
    // keep their size and mtime, as a network mount or a careless tool can make them look.
    writeFileSync(join(dir, 'a.new'), 'AAAA');
    utimesSync(join(dir, 'a.new'), old, old);
    renameSync(join(dir, 'a.new'), join(dir, 'a'));
    writeFileSync(join(dir, 'b'), 'BBBB');
    utimesSync(join(dir, 'b'), old, old);
    const seen = (args: string[]) => {
      const s = run(['--parent', first, ...args]);
      return [s.files_changed, s.files_unchanged, cat(s.snapshot_id, 'a'), cat(s.snapshot_id, 'b')];
    };
    expect(seen([])).toEqual([2, 0, 'AAAA', 'BBBB']);
    expect(seen(['--ignore-ctime'])).toEqual([1, 1, 'AAAA', 'bbbb']);
    expect(seen(['--ignore-inode'])).toEqual([0, 2, 'aaaa', 'bbbb']);
  });

  it('--skip-if-unchanged saves no snapshot when nothing changed since the parent, and one once something has', { timeout: 60_000 }, () => {
    const senv = initRepo(join(tmp.path, 'repo-skip'));
    const dir = join(tmp.path, 'src-skip');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'f'), 'one');
    const run = (args: string[]) => {
      const r = snap(['backup', dir, '--json', ...args], senv);
      expect(r.code, r.stderr).toBe(0);
      return last(r.stdout);
    };
    const count = () => JSON.parse(snap(['snapshots', '--json'], senv).stdout).length;
    const first = run(['--skip-if-unchanged']);
    expect([first.skipped, count()]).toEqual([false, 1]);
    const same = run(['--skip-if-unchanged']);
    expect([same.snapshot_id, same.skipped, same.parent, count()]).toEqual([null, true, first.snapshot_id, 1]);
    const quiet = snap(['backup', dir, '-q', '--skip-if-unchanged'], senv);
    expect([quiet.code, quiet.stdout]).toEqual([0, '']);
    // Without the flag an unchanged backup is still a snapshot, as restic's.
    expect(run([]).skipped).toBe(false);
    expect(count()).toBe(2);
    writeFileSync(join(dir, 'f'), 'two');
    const changed = run(['--skip-if-unchanged']);
    expect([changed.skipped, changed.files_changed, count()]).toEqual([false, 1, 3]);
  });

  it('--stdin stores standard input as one file', () => {
    const data = prng(9).bytes(3_000_000);
    const r = snap(['backup', '--stdin', '--stdin-filename', 'dump.sql', '--json'], env, data);
    expect(r.code).toBe(0);
    const id = last(r.stdout).snapshot_id;
    const target = join(tmp.path, 'stdin-out');
    expect(snap(['restore', id, '--target', target], env).code).toBe(0);
    expect(readFileSync(join(target, 'dump.sql')).equals(data)).toBe(true);
  });

  it('restore --iinclude, --iexclude and the pattern files select paths; case is ignored only by the i-forms', () => {
    const id = last(snap(['backup', src, '--json'], env).stdout).snapshot_id;
    const restored = (flags: string[]) => {
      const target = join(tmp.path, `sel-${flags.join('_').replace(/[^a-z0-9]/gi, '')}`);
      const r = snap(['restore', id, '--target', target, ...flags], env);
      expect(r.code, r.stderr).toBe(0);
      return (readdirSync(target, { recursive: true, withFileTypes: true }) as import('node:fs').Dirent[])
        .filter((d) => d.isFile())
        .map((d) => join(d.parentPath, d.name).slice(target.length + src.length + 1))
        .sort();
    };
    expect(restored(['--iinclude', '*.TXT'])).toEqual(['keep/a.txt']);
    expect(restored(['--include', '*.TXT'])).toEqual([]);
    writeFileSync(join(tmp.path, 'iex'), '# logs, any case\nKEEP/*.LOG\n');
    expect(restored(['--iexclude-file', join(tmp.path, 'iex')])).toEqual(['cache/big.tmp', 'keep/a.txt']);
    expect(restored(['--exclude-file', join(tmp.path, 'iex')])).toEqual(['cache/big.tmp', 'keep/a.txt', 'keep/b.log']);
    writeFileSync(join(tmp.path, 'inc'), 'b.log\n');
    expect(restored(['--include-file', join(tmp.path, 'inc'), '--iinclude', 'BIG.*'])).toEqual(['cache/big.tmp', 'keep/b.log']);
  });

  it('restore --overwrite never/if-changed/always and --dry-run', () => {
    const target = join(tmp.path, 'ow');
    const id = last(snap(['backup', src, '--json'], env).stdout).snapshot_id;
    const first = snap(['restore', `${id}:${src}/keep`, '--target', target], env);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    writeFileSync(join(target, 'a.txt'), 'local edit');
    const dry = last(snap(['restore', `${id}:${src}/keep`, '--target', target, '--dry-run', '--json'], env).stdout);
    expect(dry.dry_run).toBe(true);
    expect(readFileSync(join(target, 'a.txt'), 'utf8')).toBe('local edit');
    expect(snap(['restore', `${id}:${src}/keep`, '--target', target, '--overwrite', 'never'], env).code).toBe(0);
    expect(readFileSync(join(target, 'a.txt'), 'utf8')).toBe('local edit');
    // if-changed compares size and mtime: the edit changed both, so the file is restored.
    writeFileSync(join(target, 'b.log'), 'log line');
    const ic = last(snap(['restore', `${id}:${src}/keep`, '--target', target, '--overwrite', 'if-changed', '--json'], env).stdout);
    expect(ic.files_restored).toBe(2);
    expect(readFileSync(join(target, 'a.txt'), 'utf8')).toBe('alpha');
    writeFileSync(join(target, 'a.txt'), 'local edit');
    const r = last(snap(['restore', `${id}:${src}/keep`, '--target', target, '--overwrite', 'always', '--json'], env).stdout);
    expect(readFileSync(join(target, 'a.txt'), 'utf8')).toBe('alpha');
    expect(r.files_restored).toBe(1);
    expect(r.files_skipped).toBe(1);
    // A file whose content already matches still gets the snapshot's mode and loses xattrs the
    // snapshot does not have.
    chmodSync(join(target, 'b.log'), 0o600);
    let xattrs = true;
    try {
      lsetxattr(join(target, 'b.log'), 'user.extra', Buffer.from('x'));
    } catch {
      xattrs = false;
    }
    const again = last(snap(['restore', `${id}:${src}/keep`, '--target', target, '--json'], env).stdout);
    expect(again.files_skipped).toBe(2);
    expect(statSync(join(target, 'b.log')).mode & 0o777).toBe(statSync(join(src, 'keep', 'b.log')).mode & 0o777);
    if (xattrs) expect(llistxattr(join(target, 'b.log')).map(String)).not.toContain('user.extra');
  });

  it('restore in place: a file or a symlink where the snapshot has a directory is replaced, never written through', () => {
    const target = join(tmp.path, 'in-place');
    const outside = join(tmp.path, 'outside');
    mkdirSync(outside);
    const id = last(snap(['backup', src, '--json'], env).stdout).snapshot_id;
    mkdirSync(target);
    // keep/ is a symlink to a directory outside the target; cache/ is a file.
    symlinkSync(outside, join(target, 'keep'));
    writeFileSync(join(target, 'cache'), 'a file in the way');
    const never = snap(['restore', `${id}:${src}`, '--target', target, '--overwrite', 'never'], env);
    expect(never.code).toBe(1);
    // The first in the walk (names in order) stops it.
    expect(never.stderr).toMatch(/cannot restore directory \S*\/cache: a file is in its place, and --overwrite never keeps it/);
    expect(readdirSync(outside)).toEqual([]);
    const r = snap(['restore', `${id}:${src}`, '--target', target], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(readdirSync(outside)).toEqual([]);
    expect(lstatSync(join(target, 'keep')).isDirectory()).toBe(true);
    expect(readFileSync(join(target, 'keep', 'a.txt'), 'utf8')).toBe('alpha');
    expect(readFileSync(join(target, 'cache', 'big.tmp')).equals(readFileSync(join(src, 'cache', 'big.tmp')))).toBe(true);
  });

  it('restore in place: a directory where the snapshot has a file is replaced only when empty', () => {
    const target = join(tmp.path, 'in-place-2');
    const id = last(snap(['backup', src, '--json'], env).stdout).snapshot_id;
    mkdirSync(join(target, 'keep', 'a.txt', 'inner'), { recursive: true });
    writeFileSync(join(target, 'keep', 'a.txt', 'inner', 'mine'), 'not in the snapshot');
    const r = snap(['restore', `${id}:${src}`, '--target', target], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot write \S*\/keep\/a\.txt: a directory that is not empty is in its place/);
    expect(readFileSync(join(target, 'keep', 'a.txt', 'inner', 'mine'), 'utf8')).toBe('not in the snapshot');
    // Emptied, it gives way, and the same command finishes the restore.
    rmSync(join(target, 'keep', 'a.txt', 'inner'), { recursive: true });
    const again = snap(['restore', `${id}:${src}`, '--target', target], env);
    expect(again.code).toBe(0);
    expect(readFileSync(join(target, 'keep', 'a.txt'), 'utf8')).toBe('alpha');
  });

  it('restore in place: a symlink or hard link planted at a temporary name is not written through', () => {
    const target = join(tmp.path, 'in-place-3');
    const id = last(snap(['backup', src, '--json'], env).stdout).snapshot_id;
    expect(snap(['restore', `${id}:${src}`, '--target', target], env).code).toBe(0);
    // a.txt changed on disk: the restore writes it under its temporary name, then renames it.
    writeFileSync(join(target, 'keep', 'a.txt'), 'changed');
    const victim = join(tmp.path, 'victim');
    writeFileSync(victim, 'not to be written');
    const temp = restoreTemp(join(target, 'keep'), 'a.txt');
    symlinkSync(victim, temp);
    const viaLink = snap(['restore', `${id}:${src}`, '--target', target], env);
    expect(viaLink.code).toBe(1);
    expect(viaLink.stderr).toMatch(/cannot write \S*\/keep\/a\.txt: ELOOP/);
    rmSync(temp);
    linkSync(victim, temp);
    const viaHardLink = snap(['restore', `${id}:${src}`, '--target', target], env);
    expect(viaHardLink.code).toBe(1);
    expect(viaHardLink.stderr).toMatch(/where the restore keeps a temporary file, has other hard links: remove it/);
    expect(readFileSync(victim, 'utf8')).toBe('not to be written');
    rmSync(temp);
    expect(snap(['restore', `${id}:${src}`, '--target', target], env).code).toBe(0);
    expect(readFileSync(join(target, 'keep', 'a.txt'), 'utf8')).toBe('alpha');
  });

  it('--no-lock: the commands that only read work on a read-only repository; the others refuse it', () => {
    if (process.getuid?.() !== 0) throw new Error('this test mounts a read-only bind mount and needs root (CI runs as root)');
    const id = last(snap(['backup', src, '--json'], env).stdout).snapshot_id;
    const ro = join(tmp.path, 'ro-repo');
    mkdirSync(ro);
    expect(spawnSync('mount', ['--bind', repo, ro]).status).toBe(0);
    try {
      expect(spawnSync('mount', ['-o', 'remount,bind,ro', ro]).status).toBe(0);
      const roEnv = { ...env, SNAP_REPOSITORY: ro };
      // Without it, even a listing fails on the lock, and says what to do.
      const locked = snap(['snapshots'], roEnv);
      expect(locked.code).toBe(1);
      expect(locked.stderr).toMatch(/cannot lock the repository: .*read-only[\s\S]*hint: this command only reads: run it with --no-lock/);
      expect(snap(['snapshots', '--no-lock'], roEnv).code).toBe(0);
      expect(snap(['ls', id, '--no-lock'], roEnv).stdout).toContain(join(src, 'keep', 'a.txt'));
      expect(snap(['find', 'a.txt', '--no-lock'], roEnv).code).toBe(0);
      expect(snap(['dump', `${id}:${join(src, 'keep', 'a.txt')}`, '--no-lock'], roEnv).stdout).toBe('alpha');
      expect(snap(['check', '--read-data', '--no-lock'], roEnv).code).toBe(0);
      expect(snap(['forget', '--keep-last', '1', '--dry-run', '--no-lock'], roEnv).code).toBe(0);
      const target = join(tmp.path, 'from-ro');
      const restored = snap(['restore', `${id}:${src}`, '--target', target, '--no-lock'], roEnv);
      expect(restored.stderr).toBe('');
      expect(restored.code).toBe(0);
      expect(readFileSync(join(target, 'keep', 'a.txt'), 'utf8')).toBe('alpha');
      // Commands that write need the lock: refused before anything is done, on any repository.
      for (const args of [['backup', src], ['forget', '--keep-last', '1'], ['prune'], ['key', 'add'], ['unlock']]) {
        const r = snap([...args, '--no-lock'], env);
        expect(r.code, args.join(' ')).toBe(2);
        expect(r.stderr).toMatch(/--no-lock is only for commands that read the repository/);
      }
    } finally {
      spawnSync('umount', [ro]);
    }
  });

  it('an interrupted restore continues: blobs already in the temporary file are not fetched again', { timeout: 60_000 }, () => {
    const big = join(tmp.path, 'bigsrc');
    mkdirSync(big);
    const data = prng(5).bytes(24 * 1024 * 1024);
    writeFileSync(join(big, 'f'), data);
    const r2 = join(tmp.path, 'repo2');
    const env2 = initRepo(r2, ['--chunk-min', '64K', '--chunk-avg', '256K', '--chunk-max', '1M', '--pack-size', '1M']);
    expect(snap(['backup', big], env2).code).toBe(0);
    const target = join(tmp.path, 'resume');
    const full = last(snap(['restore', 'latest', '--target', target, '--json'], env2).stdout);
    expect(full.packs_read).toBeGreaterThan(10);
    // Make the finished file look like an interrupted one: move it back to its temporary name and
    // damage its second half. The re-run must fetch only the packs for the damaged half.
    const dir = join(target, big);
    const tempName = readdirSync(dir).find((n) => n.endsWith('.snap-restore'));
    expect(tempName).toBeUndefined();
    const bytes = readFileSync(join(dir, 'f'));
    bytes.fill(0, 12 * 1024 * 1024);
    const temp = restoreTemp(dir, 'f');
    writeFileSync(temp, bytes);
    const { unlinkSync } = require('node:fs') as typeof import('node:fs');
    unlinkSync(join(dir, 'f'));
    const again = last(snap(['restore', 'latest', '--target', target, '--json'], env2).stdout);
    // Exactly the blobs that overlap the damaged half are written again (chunks are at most
    // 1 MiB); how many packs hold them depends on the order the workers sealed them in.
    expect(again.bytes_written).toBeGreaterThanOrEqual(12 * 1024 * 1024);
    expect(again.bytes_written).toBeLessThan(13 * 1024 * 1024);
    expect(again.packs_read).toBeLessThan(full.packs_read);
    expect(again.packs_read).toBeGreaterThan(0);
    expect(readFileSync(join(dir, 'f')).equals(data)).toBe(true);
    expect(existsSync(temp)).toBe(false);
  });

  it('password from --password-file and --password-command; key add, list, passwd, remove', { timeout: 60_000 }, () => {
    const pwFile = join(tmp.path, 'pw');
    writeFileSync(pwFile, 'correct horse\n');
    const noEnvPw = { ...env };
    delete noEnvPw.SNAP_PASSWORD;
    expect(snap(['snapshots', '--password-file', pwFile], noEnvPw).code).toBe(0);
    expect(snap(['snapshots', '--password-command', 'echo correct horse'], noEnvPw).code).toBe(0);
    expect(snap(['snapshots', '--password-command', 'echo nope'], noEnvPw).code).toBe(12);
    // The key derived ahead from SNAP_PASSWORD and SNAP_REPOSITORY (key-prefetch.ts) never
    // overrides what the options say.
    expect(snap(['snapshots', '--password-file', pwFile], { ...env, SNAP_PASSWORD: 'wrong' }).code).toBe(0);
    expect(snap(['snapshots', '--password-command', 'echo nope'], env).code).toBe(12);
    expect(snap(['snapshots', '--repo', env.SNAP_REPOSITORY!], { ...env, SNAP_REPOSITORY: join(tmp.path, 'elsewhere') }).code).toBe(0);
    expect(snap(['snapshots', '-r', join(tmp.path, 'elsewhere')], env).code).toBe(10);
    // The environment's file and command, as restic's; they win over SNAP_PASSWORD.
    expect(snap(['snapshots'], { ...noEnvPw, SNAP_PASSWORD_FILE: pwFile }).code).toBe(0);
    expect(snap(['snapshots'], { ...env, SNAP_PASSWORD: 'wrong', SNAP_PASSWORD_FILE: pwFile }).code).toBe(0);
    expect(snap(['snapshots'], { ...env, SNAP_PASSWORD_COMMAND: 'echo nope' }).code).toBe(12);
    expect(snap(['snapshots'], { ...noEnvPw, SNAP_PASSWORD_COMMAND: 'echo correct horse' }).code).toBe(0);
    const missing = snap(['snapshots'], { ...noEnvPw, SNAP_PASSWORD_FILE: join(tmp.path, 'no-such-file') });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('SNAP_PASSWORD_FILE');
    // A new key's password never comes from the environment (that is the current password): with
    // no --new-password-file and no terminal, key add refuses and adds nothing.
    const noNew = snap(['key', 'add', '--kdf-n', '1024'], env);
    expect(noNew.code).toBe(2);
    expect(noNew.stderr).toContain('--new-password-file');
    expect(JSON.parse(snap(['key', 'list', '--json'], env).stdout)).toHaveLength(1);
    const newPw = join(tmp.path, 'newpw');
    writeFileSync(newPw, 'second password');
    expect(snap(['key', 'add', '--new-password-file', newPw, '--kdf-n', '1024'], env).code).toBe(0);
    const keys = JSON.parse(snap(['key', 'list', '--json'], env).stdout);
    expect(keys).toHaveLength(2);
    const second = { ...env, SNAP_PASSWORD: 'second password' };
    expect(snap(['snapshots'], second).code).toBe(0);
    // Removing the key in use is refused; removing the other one works.
    const current = keys.find((k: { current: boolean }) => k.current).id;
    const other = keys.find((k: { current: boolean }) => !k.current).id;
    expect(snap(['key', 'remove', current.slice(0, 8)], env).code).toBe(2);
    expect(snap(['key', 'remove', other.slice(0, 8)], env).code).toBe(0);
    expect(snap(['snapshots'], second).code).toBe(12);
    writeFileSync(newPw, 'third password');
    expect(snap(['key', 'passwd', '--new-password-file', newPw, '--kdf-n', '1024'], env).code).toBe(0);
    expect(snap(['snapshots'], env).code).toBe(12);
    expect(snap(['snapshots'], { ...env, SNAP_PASSWORD: 'third password' }).code).toBe(0);
  });

  it('-q: a command that did its job prints nothing; listings, dry runs and errors stay', { timeout: 60_000 }, () => {
    const qenv = { ...env, SNAP_REPOSITORY: join(tmp.path, 'quiet-repo') };
    const quiet = (args: string[]) => {
      const r = snap(['-q', ...args], qenv);
      expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 0, stderr: '' });
      return r.stdout;
    };
    expect(quiet(['init', '--kdf-n', '1024'])).toBe('');
    expect(quiet(['backup', src])).toBe('');
    expect(quiet(['backup', src])).toBe('');
    // The same command without -q says what it did: the checks above can fail.
    expect(snap(['backup', src], qenv).stdout).toMatch(/snapshot [0-9a-f]{8} saved/);
    expect(quiet(['backup', '--dry-run', src])).toMatch(/dry run: nothing was stored/);
    expect(quiet(['snapshots']).trim().split('\n').filter((l) => /^[0-9a-f]{8} /.test(l))).toHaveLength(3);
    expect(quiet(['ls', 'latest'])).toMatch(/a\.txt/);
    const target = join(tmp.path, 'quiet-restore');
    expect(quiet(['restore', 'latest', '--target', target, '--verify'])).toBe('');
    expect(readFileSync(join(target, src, 'keep', 'a.txt'), 'utf8')).toBe('alpha');
    expect(quiet(['forget', '--keep-last', '1', '--dry-run'])).toMatch(/remove/);
    expect(quiet(['forget', '--keep-last', '1'])).toBe('');
    expect(quiet(['prune'])).toBe('');
    expect(quiet(['check'])).toBe('');
    expect(quiet(['catalog', 'sync'])).toBe('');
    expect(quiet(['unlock'])).toBe('');
    // Errors are never quiet.
    const missing = snap(['-q', 'snapshots'], { ...qenv, SNAP_REPOSITORY: join(tmp.path, 'no-such-repo') });
    expect(missing.code).toBe(10);
    expect(missing.stderr).toMatch(/snap: /);
  });

  it('completion prints a bash script, and the script\'s queries list commands and flags', () => {
    const script = snap(['completion'], env);
    expect(script.code).toBe(0);
    expect(script.stdout).toContain('complete -o bashdefault -o default -F _snap_yargs_completions snap');
    const words = (args: string[]) => snap(['--get-yargs-completions', 'snap', ...args], env).stdout.trim().split('\n');
    expect(words([''])).toEqual(expect.arrayContaining(['backup', 'restore', 'copy', 'find']));
    expect(words(['backup', '--'])).toEqual(expect.arrayContaining(['--exclude', '--one-file-system', '--tag']));
    expect(words(['restore', '--'])).toEqual(expect.arrayContaining(['--target', '--overwrite']));
  });

  it('cat and debug chunk', () => {
    const env3 = { ...env, SNAP_PASSWORD: 'third password' };
    const config = JSON.parse(snap(['cat', 'config'], env3).stdout);
    expect(config.chunker.algorithm).toBe('fastcdc-2020');
    expect(config.version).toBe(1);
    const fixture = join(import.meta.dirname, '../../fixtures/SekienAkashita.jpg');
    const r = snap(['debug', 'chunk', fixture, '--min', '4096', '--avg', '16384', '--max', '65535', '--json'], env3);
    expect(r.code).toBe(0);
    expect(lines(r.stdout).map((c) => c.length)).toEqual([21325, 17140, 28084, 18217, 24700]);
    expect(lines(r.stdout)[0].hash).toBe('17968276318003433923');
  });
});
