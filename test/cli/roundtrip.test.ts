// Backup then restore through the CLI, compared with an independent walk of the source tree.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, chownSync, closeSync, constants, ftruncateSync, linkSync, lstatSync, mkdirSync, openSync, symlinkSync, writeFileSync, writeSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { lsetxattr, lgetxattr, makedev, mknod } from '../../src/native/binding.js';
import { describeTree, mkfifoCmd, prng, randomData } from '../helpers/tree.js';
import { initRepo, snap, tempDir } from '../helpers/cli.js';

const KiB = 1024;
const MiB = 1024 * 1024;

describe('backup and restore round trip', () => {
  const tmp = tempDir();
  const src = join(tmp.path, 'src');
  const repo = join(tmp.path, 'repo');
  let env: Record<string, string>;
  let xattrSupported = true;

  beforeAll(() => {
    const r = prng(42);
    mkdirSync(src);
    writeFileSync(join(src, 'empty'), '');
    writeFileSync(join(src, 'one-byte'), 'x');
    // Sizes around the default chunker bounds (min 512 KiB, max 8 MiB).
    for (const size of [512 * KiB - 1, 512 * KiB, 512 * KiB + 1, 8 * MiB, 8 * MiB + 1]) writeFileSync(join(src, `size-${size}`), r.bytes(size));
    writeFileSync(join(src, 'big-101MiB'), randomData(101 * MiB));
    // A sparse file: 40 MiB with data only at 10 MiB.
    const fd = openSync(join(src, 'sparse'), 'w');
    writeSync(fd, Buffer.from('data in the middle of a hole'), 0, 28, 10 * MiB);
    closeSync(fd);
    execTruncate(join(src, 'sparse'), 40 * MiB);
    // Names that are not UTF-8, and long paths.
    const dir = Buffer.from(src);
    writeFileSync(Buffer.concat([dir, Buffer.from('/bad-\xff\xfe-name', 'latin1')]), 'latin1 name');
    let deep = join(src, 'deep');
    for (let i = 0; i < 12; i++) deep = join(deep, `level-${i}-${'d'.repeat(80)}`);
    mkdirSync(deep, { recursive: true });
    writeFileSync(join(deep, 'n'.repeat(255)), 'long path');
    // Links, special files, empty directories, odd permissions, ownership, xattrs, ns times.
    symlinkSync('one-byte', join(src, 'link-rel'));
    symlinkSync('/nonexistent/target', join(src, 'link-dangling'));
    writeFileSync(join(src, 'hard-a'), 'shared inode');
    linkSync(join(src, 'hard-a'), join(src, 'hard-b'));
    mkfifoCmd(join(src, 'fifo'));
    mkdirSync(join(src, 'empty-dir'));
    mkdirSync(join(src, 'sticky'), { mode: 0o777 });
    chmodSync(join(src, 'sticky'), 0o1777);
    writeFileSync(join(src, 'setuid'), '#!/bin/sh\n');
    chmodSync(join(src, 'setuid'), 0o4755);
    writeFileSync(join(src, 'no-perms'), 'secret');
    chmodSync(join(src, 'no-perms'), 0o000);
    writeFileSync(join(src, 'owned'), 'owned by someone else');
    if (process.getuid?.() === 0) {
      chownSync(join(src, 'owned'), 1234, 5678);
      mknod(join(src, 'null-device'), constants.S_IFCHR | 0o640, makedev(1, 3));
    }
    try {
      lsetxattr(join(src, 'owned'), 'user.snap-test', Buffer.from([0, 1, 2, 255]));
    } catch {
      xattrSupported = false;
    }
    utimesSync(join(src, 'one-byte'), 1_000_000_000.123456, 1_000_000_000.123456);
    env = initRepo(repo);
  }, 60_000);

  afterAll(() => tmp.cleanup());

  it('restores every file byte-identical with its metadata', () => {
    const b = snap(['backup', src], env);
    expect(b.stderr).toBe('');
    expect(b.code).toBe(0);
    const target = join(tmp.path, 'restore');
    const r = snap(['restore', 'latest', '--target', target, '--verify'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const before = describeTree(src);
    const after = describeTree(join(target, src));
    expect([...after.keys()]).toEqual([...before.keys()]);
    for (const [path, e] of before) expect({ path, ...after.get(path) }).toEqual({ path, ...e });
    // Spot checks that the comparison saw what matters.
    expect(before.get('/hard-b')!.linkGroup).toBe('/hard-a');
    expect(before.get('/fifo')!.type).toBe('fifo');
    expect(before.get('/setuid')!.mode).toBe(0o4755);
    expect(before.get('/big-101MiB')!.size).toBe(101 * MiB);
    if (process.getuid?.() === 0) expect(after.get('/owned')!.uid).toBe(1234);
    if (xattrSupported) expect([...lgetxattr(join(target, src, 'owned'), 'user.snap-test')]).toEqual([0, 1, 2, 255]);
  }, 120_000);

  it('restores a sparse file with holes when asked', () => {
    const target = join(tmp.path, 'restore-sparse');
    const r = snap(['restore', `latest:${src}`, '--target', target, '--include', '/**/sparse', '--sparse'], env);
    expect(r.code).toBe(0);
    const st = statSync(join(target, 'sparse'));
    expect(st.size).toBe(40 * MiB);
    // Allocated blocks far below the apparent size: the zeros stayed holes.
    expect(st.blocks * 512).toBeLessThan(4 * MiB);
    expect(describeTree(target).get('/sparse')!.sha256).toBe(describeTree(src).get('/sparse')!.sha256);
    // Only what was included was restored.
    expect(lstatSync(join(target, 'one-byte'), { throwIfNoEntry: false })).toBeUndefined();
  }, 60_000);

  it('restores one subdirectory with SNAPSHOT:PATH', () => {
    const target = join(tmp.path, 'restore-sub');
    const r = snap(['restore', `latest:${src}/deep`, '--target', target], env);
    expect(r.code).toBe(0);
    expect(describeTree(target)).toEqual(describeTree(join(src, 'deep')));
  }, 60_000);

  it('ls -l shows a device as major, minor', () => {
    if (process.getuid?.() !== 0) throw new Error('this test creates a device node and needs root (CI runs as root)');
    const r = snap(['ls', '-l', 'latest', src], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^crw-r-----.* 1, 3 .*\/null-device$/m);
  });

  it('lists the snapshot with ls and --json', () => {
    const r = snap(['ls', 'latest', src, '--json'], env);
    expect(r.code).toBe(0);
    const nodes = r.stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((n) => n.message_type === 'node');
    const names = nodes.map((n) => n.path);
    expect(names).toContain(`${src}/hard-a`);
    expect(names).toContain(`${src}/link-rel`);
    expect(nodes.find((n) => n.path === `${src}/one-byte`).size).toBe(1);
  });
});

function execTruncate(path: string, size: number): void {
  const fd = openSync(path, 'r+');
  try {
    ftruncateSync(fd, size);
  } finally {
    closeSync(fd);
  }
}
