// Bad input gets one clear line and a documented exit code, never a stack trace, and loses nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initRepo, snap, SNAP, snapAsync, snapEnv, tempDir } from '../helpers/cli.js';
import { randomData } from '../helpers/tree.js';

function oneLineError(stderr: string): void {
  expect(stderr).not.toMatch(/\n\s+at /); // no stack trace
  expect(stderr.trim().split('\n')[0]).toMatch(/^snap: /);
}

describe('errors', () => {
  const tmp = tempDir();
  const repo = join(tmp.path, 'repo');
  const src = join(tmp.path, 'src');
  let env: Record<string, string>;

  beforeAll(() => {
    mkdirSync(src);
    writeFileSync(join(src, 'a'), 'alpha');
    writeFileSync(join(src, 'big'), randomData(6 * 1024 * 1024));
    env = initRepo(repo);
    expect(snap(['backup', src], env).code).toBe(0);
  });
  afterAll(() => tmp.cleanup());

  it('wrong password: exit 12', () => {
    const r = snap(['snapshots'], { ...env, SNAP_PASSWORD: 'wrong' });
    expect(r.code).toBe(12);
    oneLineError(r.stderr);
    expect(r.stderr).toMatch(/wrong password/);
  });

  it('missing repository: exit 10', () => {
    const r = snap(['snapshots'], snapEnv(join(tmp.path, 'nothing-here')));
    expect(r.code).toBe(10);
    oneLineError(r.stderr);
    expect(r.stderr).toMatch(/no repository/);
    // A file given as the repository is no repository either (not an I/O error).
    const f = snap(['snapshots'], snapEnv(join(src, 'a')));
    expect(f.code).toBe(10);
    expect(f.stderr).toMatch(/no repository/);
  });

  it('no password source and no terminal: exit 2 with a hint', () => {
    const e = { ...env };
    delete e.SNAP_PASSWORD;
    const r = snap(['snapshots'], e);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/SNAP_PASSWORD/);
  });

  it('init over an existing repository is refused and changes nothing', () => {
    const before = readdirSync(join(repo, 'keys'));
    const r = snap(['init', '--kdf-n', '1024'], env);
    expect(r.code).toBe(1);
    oneLineError(r.stderr);
    expect(r.stderr).toMatch(/already exists/);
    expect(readdirSync(join(repo, 'keys'))).toEqual(before);
    expect(snap(['snapshots'], env).code).toBe(0);
  });

  it('a backup path that does not exist: skipped with a warning (exit 3), an error only when none exists', () => {
    const r = snap(['backup', join(tmp.path, 'missing')], env);
    expect(r.code).toBe(1);
    oneLineError(r.stderr);
    expect(r.stderr).toMatch(/does not exist/);
    // With another path that exists, that one is still backed up: a disappeared mount must not
    // stop the backup of everything else.
    const missing = join(tmp.path, 'gone');
    const partial = snap(['backup', missing, src, '--json'], env);
    expect(partial.code).toBe(3);
    expect(partial.stderr).toContain(`backup path ${missing}: does not exist; skipped`);
    const summary = JSON.parse(partial.stdout.trim().split('\n').pop()!);
    expect(summary).toMatchObject({ incomplete: true, errors: 1 });
    expect(snap(['ls', summary.snapshot_id, src + '/a'], env).code).toBe(0);
    // The snapshot records the path as asked: once it is back, the next backup finds its parent.
    mkdirSync(missing);
    writeFileSync(join(missing, 'f'), 'back');
    const again = JSON.parse(snap(['backup', missing, src, '--json'], env).stdout.trim().split('\n').pop()!);
    expect(again).toMatchObject({ parent: summary.snapshot_id, incomplete: false, files_new: 1, files_unchanged: 2 });
  });

  it('bad flags and unknown commands: exit 2', () => {
    expect(snap(['backup', '--no-such-flag', src], env).code).toBe(2);
    expect(snap(['frobnicate'], env).code).toBe(2);
    const r = snap(['restore', 'latest', '--target', join(tmp.path, 'x'), '--overwrite', 'sometimes'], env);
    expect(r.code).toBe(2);
    oneLineError(r.stderr);
  });

  it('unknown snapshot ID', () => {
    const r = snap(['ls', 'deadbeef'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no snapshot with ID deadbeef/);
  });

  it('a restore target that cannot be written', () => {
    writeFileSync(join(tmp.path, 'a-file'), '');
    const r = snap(['restore', 'latest', '--target', join(tmp.path, 'a-file', 'sub')], env);
    expect(r.code).toBe(1);
    oneLineError(r.stderr);
    expect(r.stderr).toMatch(/cannot write .*a-file\/sub: a part of the path is not a directory/);
    const f = snap(['restore', 'latest', '--target', join(tmp.path, 'a-file')], env);
    expect(f.code).toBe(1);
    expect(f.stderr).toMatch(/cannot write .*a-file: it exists and is not a directory/);
  });

  it.runIf(existsSync('/proc/self'))('a restore target, repository or cache under /proc: an error, not a hang', () => {
    // mkdir answers ENOENT there though /proc exists: Node's recursive mkdir spins on it forever.
    const restore = snap(['restore', 'latest', '--target', '/proc/snap-test/out'], env, '', 30_000);
    expect(restore.code).toBe(1);
    oneLineError(restore.stderr);
    expect(restore.stderr).toMatch(/cannot write \/proc\/snap-test\/out: ENOENT/);
    const init = snap(['init', '--kdf-n', '1024'], snapEnv('/proc/snap-test/repo'), '', 30_000);
    expect(init.code).toBe(1);
    expect(init.stderr).toMatch(/cannot create repository directory \/proc\/snap-test\/repo/);
    const find = snap(['find', 'a', '--cache-dir', '/proc/snap-test/cache'], env, '', 30_000);
    expect(find.code).toBe(1);
    oneLineError(find.stderr);
    expect(find.stderr).toMatch(/cannot create the catalog directory \/proc\/snap-test\/cache/);
    // A backup does without its caches: the snapshot is saved, with warnings.
    const backup = snap(['backup', src, '--cache-dir', '/proc/snap-test/cache'], env, '', 30_000);
    expect(backup.code).toBe(0);
    expect(backup.stderr).toMatch(/the catalog was not updated/);
  });

  it('a reader that goes away (snap ls | head) ends the output quietly', () => {
    // Well past a pipe's 64 KiB buffer, so snap is still writing when head has gone.
    const many = join(tmp.path, 'many');
    mkdirSync(many);
    for (let i = 0; i < 2000; i++) writeFileSync(join(many, `a-file-with-a-rather-long-name-${String(i).padStart(5, '0')}`), '');
    const env2 = initRepo(join(tmp.path, 'repo-pipe'));
    expect(snap(['backup', many], env2).code).toBe(0);
    const ls = spawnSync('bash', ['-c', `set -o pipefail; ${JSON.stringify(SNAP)} ls latest | head -1`], { env: env2 });
    expect(ls.stderr.toString()).toBe('');
    expect(ls.status).toBe(0);
    expect(ls.stdout.toString()).toBe(`/${tmp.path.split('/')[1]}\n`);
  });

  it('a full disk during restore leaves no partial file under the real name', () => {
    if (process.getuid?.() !== 0) throw new Error('this test mounts a small tmpfs and needs root (CI runs as root)');
    const mnt = join(tmp.path, 'small');
    mkdirSync(mnt);
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]);
    expect(m.status).toBe(0);
    try {
      const r = snap(['restore', `latest:${src}`, '--target', mnt], env);
      expect(r.code).toBe(1);
      oneLineError(r.stderr);
      expect(r.stderr).toMatch(/no space left/);
      expect(existsSync(join(mnt, 'big'))).toBe(false);
      // Once there is room, the same command completes the restore, byte-identical.
      expect(spawnSync('mount', ['-o', 'remount,size=16m', mnt]).status).toBe(0);
      const again = snap(['restore', `latest:${src}`, '--target', mnt], env);
      expect(again.code).toBe(0);
      expect(readFileSync(join(mnt, 'big')).equals(readFileSync(join(src, 'big')))).toBe(true);
      expect(readdirSync(mnt).sort()).toEqual(['a', 'big']);
    } finally {
      spawnSync('umount', [mnt]);
    }
  });

  it('an unreadable file is a warning: the snapshot is written and the exit code is 3', () => {
    const dir = join(tmp.path, 'partly-unreadable');
    mkdirSync(dir);
    // Small files are read in batches: the unreadable one sits between two that are stored.
    writeFileSync(join(dir, 'a-first'), 'readable, before it');
    writeFileSync(join(dir, 'locked'), 'not for you');
    writeFileSync(join(dir, 'ok'), 'readable, after it');
    chmodSync(join(dir, 'locked'), 0o000);
    const repo2 = join(tmp.path, 'repo-unreadable');
    const env2 = initRepo(repo2);
    // Root reads everything, so run the backup as an unprivileged user when we are root.
    const asUser = process.getuid?.() === 0;
    if (asUser) spawnSync('chmod', ['-R', 'a+rwX', repo2, tmp.path]);
    chmodSync(join(dir, 'locked'), 0o000);
    const cacheDir = join(tmp.path, 'unreadable-cache');
    const run = () => spawnSync(SNAP, ['backup', dir, '--json', '--cache-dir', cacheDir], { env: env2, ...(asUser ? { uid: 65534, gid: 65534 } : {}) });
    const r = run();
    const stderr = r.stderr.toString();
    expect(r.status).toBe(3);
    expect(stderr).toMatch(/locked/);
    expect(stderr).not.toMatch(/directory cache/);
    const summary = JSON.parse(r.stdout.toString().trim().split('\n').pop()!);
    expect(summary.errors).toBe(1);
    expect(summary.snapshot_id).toMatch(/^[0-9a-f]{64}$/);
    // The directory cache (format-spec ch. 16) leaves out a directory with an unreadable entry:
    // the next backup tries the file again and warns again, rather than keeping the old tree.
    const again = run();
    expect(again.status).toBe(3);
    expect(again.stderr.toString()).toMatch(/locked/);
    const ls = snap(['ls', 'latest', '--json'], env2);
    const paths = ls.stdout.trim().split('\n').map((l) => JSON.parse(l).path);
    expect(paths).toContain(join(dir, 'ok'));
    expect(paths).not.toContain(join(dir, 'locked'));
    // Named on the command line, beside a directory: the file is left out of that tree too.
    mkdirSync(join(dir, 'zsub'));
    writeFileSync(join(dir, 'zsub', 'f'), 'in the directory');
    if (asUser) spawnSync('chmod', ['-R', 'a+rwX', join(dir, 'zsub')]);
    const named = spawnSync(SNAP, ['backup', join(dir, 'locked'), join(dir, 'zsub'), '--json', '--cache-dir', cacheDir], { env: env2, ...(asUser ? { uid: 65534, gid: 65534 } : {}) });
    expect(named.status).toBe(3);
    const namedPaths = snap(['ls', 'latest', '--json'], env2).stdout.trim().split('\n').map((l) => JSON.parse(l).path);
    expect(namedPaths).toContain(join(dir, 'zsub', 'f'));
    expect(namedPaths).not.toContain(join(dir, 'locked'));
    const target = join(tmp.path, 'unreadable-restored');
    const first = JSON.parse(r.stdout.toString().trim().split('\n').pop()!).snapshot_id as string;
    expect(snap(['restore', `${first}:${dir}`, '--target', target], env2).code).toBe(0);
    expect(readdirSync(target).sort()).toEqual(['a-first', 'ok']);
    expect(readFileSync(join(target, 'a-first'), 'utf8')).toBe('readable, before it');
    expect(readFileSync(join(target, 'ok'), 'utf8')).toBe('readable, after it');
  });

  it('a small file that grows past the minimum chunk while the backup runs is stored whole, not left out', async () => {
    // 'a' is listed small, so it waits in a batch of small files while the walk chunks 'b'; it
    // grows meanwhile (a log being written), once the first pack of 'b' is stored.
    const dir = join(tmp.path, 'growing');
    mkdirSync(dir);
    writeFileSync(join(dir, 'a'), 'the first line of a log\n');
    writeFileSync(join(dir, 'b'), randomData(96 << 20));
    const repo2 = join(tmp.path, 'repo-growing');
    const env2 = initRepo(repo2);
    const packStored = () => readdirSync(join(repo2, 'data'), { recursive: true, encoding: 'utf8' }).some((f) => /^[0-9a-f]{64}$/.test(f.split('/').pop()!));
    const child = snapAsync(['backup', dir, '--json'], env2);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    let grown = false;
    const poll = setInterval(() => {
      if (!grown && packStored()) {
        grown = true;
        appendFileSync(join(dir, 'a'), randomData(1 << 20));
      }
    }, 2);
    const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)));
    clearInterval(poll);
    expect(grown).toBe(true);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const summary = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(summary).toMatchObject({ files_new: 2, errors: 0 });
    const target = join(tmp.path, 'growing-restored');
    expect(snap(['restore', 'latest', '--target', target], env2).code).toBe(0);
    expect(readFileSync(join(target, dir, 'a')).equals(readFileSync(join(dir, 'a')))).toBe(true);
  }, 60_000);
});
