// The native POSIX helpers: nanosecond times, xattrs, FIFOs and device nodes, error shape, and
// raw (non-UTF-8) Buffer paths.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  llistxattr,
  lgetxattr,
  lremovexattr,
  lsetxattr,
  major,
  makedev,
  minor,
  mkfifo,
  mknod,
  utimensat,
  setMmapThreshold,
  dropCache,
  readFiles,
  READ_OPEN_FAILED,
  READ_TOO_BIG,
  READ_NOT_REGULAR,
  type NativeFsError,
} from '../../src/native/binding.js';
import { scanDirectory } from '../../src/fs/scan.js';
import { NOT_REGULAR, openForBackup } from '../../src/fs/metadata.js';
import { residencyUnobservable, residentBytes } from '../helpers/page-cache.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'snap-native-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The error thrown by fn (fails the test when nothing is thrown). */
function thrown(fn: () => unknown): NativeFsError {
  try {
    fn();
  } catch (e) {
    return e as NativeFsError;
  }
  throw new Error('expected an error');
}

const NS = 1_000_000_000n;

describe('utimensat', () => {
  it('sets atime and mtime to the nanosecond', () => {
    const f = path.join(dir, 'times');
    fs.writeFileSync(f, 'x');
    utimensat(f, 1_600_000_000, 123_456_789, 1_234_567_890, 987_654_321, true);
    let st = fs.lstatSync(f, { bigint: true });
    expect(st.atimeNs).toBe(1_600_000_000n * NS + 123_456_789n);
    expect(st.mtimeNs).toBe(1_234_567_890n * NS + 987_654_321n);
    // bigint seconds, odd nanoseconds, and 0 / 999999999 edges
    utimensat(f, 1_700_000_001n, 999_999_999, 1_700_000_002n, 1, true);
    st = fs.lstatSync(f, { bigint: true });
    expect(st.atimeNs).toBe(1_700_000_001n * NS + 999_999_999n);
    expect(st.mtimeNs).toBe(1_700_000_002n * NS + 1n);
  });

  it('sets a symlink\'s own times with followSymlinks=false, the target\'s with true', () => {
    const target = path.join(dir, 'target');
    const link = path.join(dir, 'link');
    fs.writeFileSync(target, 'x');
    fs.symlinkSync(target, link);
    utimensat(target, 1_500_000_000, 0, 1_500_000_000, 0, true);
    utimensat(link, 1_400_000_000, 11, 1_400_000_000, 22, false);
    expect(fs.lstatSync(link, { bigint: true }).mtimeNs).toBe(1_400_000_000n * NS + 22n);
    expect(fs.statSync(link, { bigint: true }).mtimeNs).toBe(1_500_000_000n * NS);
    utimensat(link, 1_300_000_000, 33, 1_300_000_000, 44, true);
    expect(fs.statSync(target, { bigint: true }).mtimeNs).toBe(1_300_000_000n * NS + 44n);
    expect(fs.lstatSync(link, { bigint: true }).mtimeNs).toBe(1_400_000_000n * NS + 22n);
  });

  it('rejects bad arguments before calling the system', () => {
    const f = path.join(dir, 'times');
    expect(() => utimensat(f, 1, 1_000_000_000, 1, 0, true)).toThrow(RangeError);
    expect(() => utimensat(f, 1, -1, 1, 0, true)).toThrow(RangeError);
    expect(() => utimensat(f, 1.5, 0, 1, 0, true)).toThrow(RangeError);
    expect(() => utimensat(f, 1, 0, 1, 0, 1 as unknown as boolean)).toThrow(TypeError);
    expect(() => utimensat(42 as unknown as string, 1, 0, 1, 0, true)).toThrow(TypeError);
    expect(() => utimensat(f + '\0x', 1, 0, 1, 0, true)).toThrow(/NUL/);
  });
});

describe('extended attributes', () => {
  it('set, list, get and remove on a file; l* calls do not follow symlinks', () => {
    const f = path.join(dir, 'xattrs');
    fs.writeFileSync(f, 'x');
    const value = Buffer.from([0, 1, 2, 0xff, 0xfe, 0, 0x41]);
    try {
      lsetxattr(f, 'user.snap.test', value);
    } catch (e) {
      // The temporary file system does not support user xattrs: that must be reported as ENOTSUP.
      expect((e as NativeFsError).code).toBe('ENOTSUP');
      expect((e as NativeFsError).syscall).toBe('lsetxattr');
      return;
    }
    const rawName = Buffer.concat([Buffer.from('user.'), Buffer.from([0xff, 0x80, 0x01])]);
    lsetxattr(f, rawName, Buffer.alloc(0));
    const names = llistxattr(f);
    expect(names.every((n) => Buffer.isBuffer(n))).toBe(true);
    expect(names.map((n) => n.toString('hex')).sort()).toEqual(
      [Buffer.from('user.snap.test'), rawName].map((n) => n.toString('hex')).sort(),
    );
    expect(lgetxattr(f, 'user.snap.test').equals(value)).toBe(true);
    expect(lgetxattr(f, Buffer.from('user.snap.test')).equals(value)).toBe(true);
    expect(lgetxattr(f, rawName).length).toBe(0);

    // A large value (larger than any initial guess) round-trips.
    const big = Buffer.alloc(3000, 0xab);
    lsetxattr(f, 'user.snap.big', big);
    expect(lgetxattr(f, 'user.snap.big').equals(big)).toBe(true);

    const missing = thrown(() => lgetxattr(f, 'user.snap.absent'));
    expect(missing.code).toBe('ENODATA');
    expect(missing.syscall).toBe('lgetxattr');
    expect(missing.path).toBe(f);

    // XATTR_CREATE fails on an existing attribute.
    expect(thrown(() => lsetxattr(f, 'user.snap.test', value, 1)).code).toBe('EEXIST');

    lremovexattr(f, 'user.snap.test');
    expect(thrown(() => lgetxattr(f, 'user.snap.test')).code).toBe('ENODATA');
    expect(llistxattr(f).map(String)).not.toContain('user.snap.test');

    // The symlink's own (empty) list, not the target's.
    const link = path.join(dir, 'xattr-link');
    fs.symlinkSync(f, link);
    expect(llistxattr(link).map(String)).not.toContain('user.snap.big');
    expect(thrown(() => lgetxattr(link, 'user.snap.big')).code).toBe('ENODATA');
  });

  it('lists nothing for a file without xattrs and reports ENOENT for a missing file', () => {
    const f = path.join(dir, 'no-xattrs');
    fs.writeFileSync(f, 'x');
    expect(llistxattr(f).filter((n) => n.toString().startsWith('user.'))).toEqual([]);
    const e = thrown(() => llistxattr(path.join(dir, 'missing')));
    expect(e.code).toBe('ENOENT');
    expect(e.syscall).toBe('llistxattr');
  });
});

describe('special files', () => {
  it('mkfifo creates a FIFO with the given permissions', () => {
    const f = path.join(dir, 'fifo');
    mkfifo(f, 0o600);
    const st = fs.lstatSync(f);
    expect(st.isFIFO()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    expect(thrown(() => mkfifo(f, 0o600)).code).toBe('EEXIST');
  });

  it('makedev, major and minor round-trip and agree with stat', () => {
    const dev = makedev(8, 17);
    expect(typeof dev).toBe('bigint');
    expect(major(dev)).toBe(8);
    expect(minor(dev)).toBe(17);
    expect(major(Number(dev))).toBe(8);
    const large = makedev(4095, 1_048_575);
    expect([major(large), minor(large)]).toEqual([4095, 1_048_575]);
    if (fs.existsSync('/dev/null')) {
      const rdev = fs.statSync('/dev/null', { bigint: true }).rdev;
      expect([major(rdev), minor(rdev)]).toEqual([1, 3]);
      expect(makedev(1, 3)).toBe(rdev);
    }
  });

  it('mknod creates a character device as root and fails with EPERM otherwise', () => {
    const f = path.join(dir, 'null-dev');
    const dev = makedev(1, 3);
    const isRoot = process.getuid?.() === 0;
    let err: NativeFsError | undefined;
    try {
      mknod(f, fs.constants.S_IFCHR | 0o600, dev);
    } catch (e) {
      err = e as NativeFsError;
    }
    if (!isRoot || err) {
      // Unprivileged (or in a container that forbids device nodes): the refusal is reported.
      expect(err?.code).toBe('EPERM');
      expect(err?.syscall).toBe('mknod');
      return;
    }
    const st = fs.lstatSync(f, { bigint: true });
    expect(st.isCharacterDevice()).toBe(true);
    expect(st.rdev).toBe(dev);
  });

  it('mknod makes a FIFO for S_IFIFO without privileges', () => {
    const f = path.join(dir, 'fifo-by-mknod');
    mknod(f, fs.constants.S_IFIFO | 0o644, 0n);
    expect(fs.lstatSync(f).isFIFO()).toBe(true);
  });
});

describe('errors and paths', () => {
  it('errors look like Node fs errors', () => {
    const p = path.join(dir, 'missing', 'x');
    const e = thrown(() => utimensat(p, 0, 0, 0, 0, true));
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe('ENOENT');
    expect(e.errno).toBe(-2);
    expect(e.syscall).toBe('utimensat');
    expect(e.path).toBe(p);
    expect(e.message).toBe(`ENOENT: no such file or directory, utimensat '${p}'`);
    const notDir = thrown(() => mkfifo(path.join(dir, 'times', 'sub'), 0o600));
    expect(notDir.code).toBe('ENOTDIR');
  });

  it('accepts non-UTF-8 Buffer paths', () => {
    const raw = Buffer.concat([Buffer.from(dir + '/'), Buffer.from([0x66, 0xff, 0xfe, 0x80])]);
    fs.writeFileSync(raw, 'x');
    utimensat(raw, 1_000_000_000, 5, 1_000_000_000, 6, false);
    expect(fs.lstatSync(raw, { bigint: true }).mtimeNs).toBe(1_000_000_000n * NS + 6n);

    const rawFifo = Buffer.concat([Buffer.from(dir + '/'), Buffer.from([0xc3, 0x28])]);
    mkfifo(rawFifo, 0o600);
    expect(fs.lstatSync(rawFifo).isFIFO()).toBe(true);
    const names = fs.readdirSync(dir, { encoding: 'buffer' }).map((n) => n.toString('hex'));
    expect(names).toContain('66fffe80');
    expect(names).toContain('c328');

    // Uint8Array (not Buffer) works too, and the error path is readable.
    const missing = new Uint8Array(Buffer.concat([Buffer.from(dir + '/nope-'), Buffer.from([0xff])]));
    const e = thrown(() => utimensat(missing, 0, 0, 0, 0, true));
    expect(e.code).toBe('ENOENT');
    expect(e.path).toBe(`${dir}/nope-\ufffd`);
  });
});

describe('setMmapThreshold', () => {
  it('sets glibc\'s threshold (true on glibc) and rejects values outside 4 KiB..32 MiB', () => {
    const glibc = (process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime !== undefined;
    // The CLI sets 256 KiB at start-up; setting it again is harmless.
    expect(setMmapThreshold(256 * 1024)).toBe(glibc);
    expect(() => setMmapThreshold(1024)).toThrow(RangeError);
    expect(() => setMmapThreshold(64 << 20)).toThrow(RangeError);
  });
});

describe('dropCache', () => {
  it('drops the cached pages of a synced file, and rejects a bad descriptor argument', (ctx) => {
    const why = residencyUnobservable(dir);
    if (why) ctx.skip(why);
    const file = path.join(dir, 'written-once');
    fs.writeFileSync(file, Buffer.alloc(4 << 20, 7));
    const fd = fs.openSync(file, 'r');
    try {
      fs.fsyncSync(fd);
      expect(residentBytes(file)).toBe(4 << 20);
      expect(dropCache(fd)).toBe(true);
      expect(residentBytes(file)).toBe(0);
      expect(fs.readFileSync(file).equals(Buffer.alloc(4 << 20, 7))).toBe(true);
    } finally {
      fs.closeSync(fd);
    }
    expect(() => dropCache(-1)).toThrow(RangeError);
  });
});

describe('readFiles', () => {
  it('reads a batch of files whole with their HMAC-SHA256, and reports each failure in its place (a directory is not a regular file)', () => {
    const d = path.join(dir, 'batch');
    fs.mkdirSync(d);
    const contents = [randomBytes(1000), Buffer.alloc(0), randomBytes(4096), randomBytes(5000), randomBytes(7)];
    const names = ['a', 'empty', 'exact', 'too-big', Buffer.from([0x6e, 0xff, 0xfe]).toString('latin1')];
    names.forEach((n, i) => fs.writeFileSync(Buffer.from(path.join(d, n), 'latin1'), contents[i]!));
    const paths = [...names.slice(0, 4), 'missing', d, names[4]!].map((n) => (n === d ? d : path.join(d, n)));
    const key = randomBytes(32);
    const n = paths.length;
    const status = new Int32Array(2 * n);
    const ids = Buffer.alloc(32 * n);
    const out = Buffer.alloc(64 * 1024);
    expect(readFiles(paths.join('\0'), 0, 4096, out, 10, status, key, ids)).toBe(n);
    expect([...status]).toEqual([1000, 0, 0, 0, 4096, 0, READ_TOO_BIG, 0, READ_OPEN_FAILED, os.constants.errno.ENOENT, READ_NOT_REGULAR, 0, 7, 0]);
    let at = 10;
    for (const i of [0, 1, 2, 6]) {
      const want = contents[i === 6 ? 4 : i]!;
      expect(out.subarray(at, at + want.length).equals(want)).toBe(true);
      expect(ids.subarray(32 * i, 32 * i + 32).equals(createHmac('sha256', key).update(want).digest())).toBe(true);
      at += want.length;
    }
    // No room for the next file: the call stops before it, and goes on from there when asked.
    const small = Buffer.alloc(1500);
    expect(readFiles(paths.join('\0'), 0, 4096, small, 0, status, key, ids)).toBe(2);
    expect(readFiles(paths.join('\0'), 2, 4096, out, 0, status, key, ids)).toBe(n);
    expect(status[4]).toBe(4096);
    expect(readFiles('', 0, 4096, out, 0, status, key, ids)).toBe(0);
    expect(() => readFiles(paths.join('\0'), 0, 4096, out, 0, new Int32Array(2), key, ids)).toThrow(RangeError);
    expect(() => readFiles(paths.join('\0'), 0, 4096, out, 0, status, key.subarray(0, 16), ids)).toThrow(RangeError);
  });
});

describe('files replaced since they were listed', () => {
  // A FIFO without a writer would block open() for good; a symlink would be followed elsewhere.
  it('are reported, not waited on or followed, by readFiles and openForBackup', () => {
    const d = path.join(dir, 'replaced');
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, 'target'), 'elsewhere');
    mkfifo(path.join(d, 'fifo'), 0o600);
    fs.symlinkSync('target', path.join(d, 'link'));
    fs.writeFileSync(path.join(d, 'plain'), 'plain');
    const paths = ['fifo', 'link', 'plain'].map((n) => path.join(d, n));
    const status = new Int32Array(6);
    expect(readFiles(paths.join('\0'), 0, 4096, Buffer.alloc(8192), 0, status, randomBytes(32), Buffer.alloc(96))).toBe(3);
    expect([...status]).toEqual([READ_NOT_REGULAR, 0, READ_NOT_REGULAR, 0, 5, 0]);
    for (const p of paths.slice(0, 2)) expect(() => openForBackup(Buffer.from(p))).toThrow(NOT_REGULAR);
    fs.closeSync(openForBackup(Buffer.from(paths[2]!)));
  });
});

describe('scanDirectory (native scanDir)', () => {
  it('lists every entry sorted by name bytes, with the fields lstat gives, for all entry types', async () => {
    const d = path.join(dir, 'scan');
    fs.mkdirSync(d);
    const raw = Buffer.from(d);
    const names = [Buffer.from('b-file'), Buffer.from('A-dir'), Buffer.from('link'), Buffer.from('fifo'), Buffer.from('caf\xe9', 'latin1'), Buffer.from('é')];
    fs.writeFileSync(Buffer.concat([raw, Buffer.from('/b-file')]), 'x'.repeat(1234));
    fs.mkdirSync(Buffer.concat([raw, Buffer.from('/A-dir')]));
    fs.symlinkSync('b-file', Buffer.concat([raw, Buffer.from('/link')]));
    mkfifo(Buffer.concat([raw, Buffer.from('/fifo')]), 0o640);
    fs.writeFileSync(Buffer.concat([raw, Buffer.from('/'), names[4]!]), '');
    fs.writeFileSync(Buffer.concat([raw, Buffer.from('/'), names[5]!]), '');
    utimensat(path.join(d, 'b-file'), -5, 7, -100, 123456789, true); // before 1970: negative ns
    const listing = await scanDirectory(raw);
    const { digest } = listing;
    const entries = Array.from({ length: listing.count }, (_, i) => listing.entry(i));
    expect(entries.map((e) => e.name.toString('hex'))).toEqual([...names].sort(Buffer.compare).map((n) => n.toString('hex')));
    for (const e of entries) {
      const st = fs.lstatSync(Buffer.concat([raw, Buffer.from('/'), e.name]), { bigint: true });
      expect(e.error).toBeUndefined();
      expect(e.stat).toEqual({
        mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid), nlink: Number(st.nlink), size: Number(st.size),
        ino: st.ino, dev: st.dev, rdev: st.rdev, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs,
      });
    }
    expect(entries.find((e) => e.name.toString() === 'b-file')!.stat!.mtimeNs).toBe(-100n * NS + 123456789n);
    // The listing digest as format-spec ch. 16 defines it, computed here from lstat.
    const sorted = [...names].sort(Buffer.compare);
    const nums = Buffer.alloc(sorted.length * 48);
    const bigs = Buffer.alloc(sorted.length * 40);
    sorted.forEach((n, i) => {
      const st = fs.lstatSync(Buffer.concat([raw, Buffer.from('/'), n]), { bigint: true });
      [st.mode, st.uid, st.gid, st.nlink, st.size, 0n].forEach((v, k) => nums.writeDoubleLE(Number(v), i * 48 + k * 8));
      [st.ino, st.dev, st.rdev, st.mtimeNs, st.ctimeNs].forEach((v, k) => bigs.writeBigInt64LE(BigInt.asIntN(64, v), i * 40 + k * 8));
    });
    const names0 = Buffer.concat(sorted.flatMap((n) => [n, Buffer.from([0])]));
    expect(digest.toString('hex')).toBe(createHash('sha256').update(names0).update(nums).update(bigs).digest('hex'));
    const empty = await scanDirectory(Buffer.from(path.join(d, 'A-dir')));
    expect(empty.count).toBe(0);
    expect(empty.digest.toString('hex')).toBe(createHash('sha256').digest('hex'));
  });

  it('sizes each entry\'s xattr list when asked to', async () => {
    const d = path.join(dir, 'scan-xattrs');
    fs.mkdirSync(d);
    for (const f of ['other', 'plain', 'tagged']) fs.writeFileSync(path.join(d, f), f);
    fs.mkdirSync(path.join(d, 'sub'));
    let withXattrs = true;
    try {
      lsetxattr(path.join(d, 'tagged'), 'user.k', Buffer.from('v'));
      lsetxattr(path.join(d, 'sub'), 'user.dir', Buffer.from('v'));
    } catch {
      withXattrs = false; // a file system without user xattrs: every list is empty
    }
    const listing = await scanDirectory(Buffer.from(d), true);
    const noXattrs = Object.fromEntries(Array.from({ length: listing.count }, (_, i) => [listing.name(i).toString(), listing.hasNoXattrs(i)]));
    expect(noXattrs).toEqual({ other: true, plain: true, sub: !withXattrs, tagged: !withXattrs });
    // Not asked: no entry is known to have none.
    const plain = await scanDirectory(Buffer.from(d));
    expect(Array.from({ length: plain.count }, (_, i) => plain.hasNoXattrs(i))).toEqual([false, false, false, false]);
  });

  it('rejects with a Node-style error for a directory that cannot be listed', async () => {
    const missing = path.join(dir, 'no-such-dir');
    const e = (await scanDirectory(Buffer.from(missing)).catch((x: unknown) => x)) as NativeFsError;
    expect(e.code).toBe('ENOENT');
    expect(e.message).toBe(`ENOENT: no such file or directory, scandir '${missing}'`);
    const notDir = path.join(dir, 'plain');
    fs.writeFileSync(notDir, '');
    expect(((await scanDirectory(Buffer.from(notDir)).catch((x: unknown) => x)) as NativeFsError).code).toBe('ENOTDIR');
  });
});
