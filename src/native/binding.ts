// Typed access to snap's native addon (native/, built by `node-gyp rebuild --directory native`).
// The addon is loaded on first use, so modules that only import types (or use the JS chunker)
// work without it; calling any function here without the addon throws a clear Error.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A file system path: a string (UTF-8) or raw bytes (any bytes but NUL, e.g. non-UTF-8 names). */
export type NativePath = string | Uint8Array;

/** The addon's FastCDC-2020 cutter (see native/src/cutter.c). */
export interface NativeCutter {
  /** Next chunk of buf[offset, offset + length): [chunk length, gear hash at the cut (u64)]. */
  cut(buf: Uint8Array, offset: number, length: number): [number, bigint];
}
export interface NativeCutterConstructor {
  new (min: number, avg: number, max: number, level: number, seed: bigint): NativeCutter;
}

/** SHA-256 whose updates run on a libuv thread (native/src/sha256.c). */
export interface NativeSha256 {
  /** Hashes the parts in order; their memory must not change until it resolves. One at a time. */
  update(parts: readonly Uint8Array[]): Promise<void>;
  /** The digest, once, with no update running. */
  digest(): Buffer;
}

interface NativeAddon {
  Cutter: NativeCutterConstructor;
  Sha256: new () => NativeSha256;
  /** XChaCha20-Poly1305 (native/src/aead.c); src/crypto/aead.ts is the API. */
  seal(key: Uint8Array, nonce: Uint8Array, input: Uint8Array, output: Uint8Array, tag: Uint8Array): void;
  /** False when not authentic; `output` then holds unverified bytes that must not be used. */
  open(key: Uint8Array, nonce: Uint8Array, input: Uint8Array, output: Uint8Array, tag: Uint8Array): boolean;
  utimensat(
    path: NativePath,
    atimeSec: number | bigint,
    atimeNsec: number,
    mtimeSec: number | bigint,
    mtimeNsec: number,
    followSymlinks: boolean,
  ): void;
  llistxattr(path: NativePath): Buffer[];
  lgetxattr(path: NativePath, name: NativePath): Buffer;
  lsetxattr(path: NativePath, name: NativePath, value: Uint8Array, flags?: number): void;
  lremovexattr(path: NativePath, name: NativePath): void;
  mkfifo(path: NativePath, mode: number): void;
  mknod(path: NativePath, mode: number, dev: bigint | number): void;
  makedev(major: number, minor: number): bigint;
  major(dev: bigint | number): number;
  minor(dev: bigint | number): number;
  setMmapThreshold(bytes: number): boolean;
  dropCache(fd: number): boolean;
  scanDir(path: NativePath, xattrs?: boolean): Promise<NativeDirScan>;
  readFiles(paths: string, start: number, maxBytes: number, out: Uint8Array, outStart: number, status: Int32Array, idKey: Uint8Array, ids: Uint8Array): number;
}

/** One directory's entries and their lstat, sorted by name bytes (layout in native/src/scandir.c). */
export interface NativeDirScan {
  count: number;
  /** Each name followed by a NUL byte. */
  names: Buffer;
  /** Per entry: mode, uid, gid, nlink, size, errno (0 or the lstat error). */
  nums: Float64Array;
  /** Per entry: ino, dev, rdev (as signed 64-bit), mtime ns, ctime ns. */
  bigs: BigInt64Array;
  /**
   * Only when asked for, per entry: the size of its xattr name list; 0 also where the file system
   * has no xattrs, -1 when it could not be listed.
   */
  xattrs?: Int32Array;
}

/** The Error thrown by the POSIX helpers, shaped like Node's fs errors. */
export interface NativeFsError extends Error {
  /** errno name: 'ENOENT', 'ENOTSUP', 'EPERM', 'ENODATA', ... */
  code: string;
  /** Negative errno, as in Node's fs errors. */
  errno: number;
  syscall: string;
  /** The path, decoded as UTF-8 for display (invalid bytes become U+FFFD). */
  path?: string;
}

export const NATIVE_NOT_BUILT_MESSAGE =
  "snap's native addon is not built: run `npm ci` (or `npm run build`)";

const ADDON_RELATIVE = ['native/build/Release/snap_native.node', 'native/build/Debug/snap_native.node'];

/**
 * The package root: the nearest ancestor of this module holding package.json and native/. Works
 * from src/native/ (vitest, tsx) and from dist/src/native/ (compiled).
 */
function packageRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  let firstWithPackageJson: string | undefined;
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) {
      firstWithPackageJson ??= dir;
      if (existsSync(join(dir, 'native', 'binding.gyp'))) return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) return firstWithPackageJson;
    dir = parent;
  }
}

let addon: NativeAddon | undefined;
let loadError: Error | undefined;

/** The loaded addon; throws a clear Error when it has not been built. */
export function loadNative(): NativeAddon {
  if (addon) return addon;
  if (loadError) throw loadError;
  const root = packageRoot();
  const file = root && ADDON_RELATIVE.map((rel) => join(root, rel)).find((p) => existsSync(p));
  if (!file) {
    loadError = new Error(NATIVE_NOT_BUILT_MESSAGE);
    throw loadError;
  }
  try {
    addon = createRequire(import.meta.url)(file) as NativeAddon;
  } catch (cause) {
    loadError = new Error(`${NATIVE_NOT_BUILT_MESSAGE} (loading ${file} failed: ${String(cause)})`, {
      cause,
    });
    throw loadError;
  }
  return addon;
}

/** True when the addon can be loaded. */
export function isNativeAvailable(): boolean {
  try {
    loadNative();
    return true;
  } catch {
    return false;
  }
}

/** The native FastCDC-2020 cutter class; src/chunker wraps it. */
export function nativeCutterClass(): NativeCutterConstructor {
  return loadNative().Cutter;
}

/** A SHA-256 hasher that works beside the main thread. */
export function newSha256(): NativeSha256 {
  return new (loadNative().Sha256)();
}

/**
 * Sets access and modification times with nanosecond precision (utimensat(2)). With
 * followSymlinks false a symlink's own times are set. Seconds may be negative (before 1970).
 */
export function utimensat(
  path: NativePath,
  atimeSec: number | bigint,
  atimeNsec: number,
  mtimeSec: number | bigint,
  mtimeNsec: number,
  followSymlinks: boolean,
): void {
  loadNative().utimensat(path, atimeSec, atimeNsec, mtimeSec, mtimeNsec, followSymlinks);
}

/** Extended attribute names of path itself (never follows a final symlink), as raw bytes. */
export function llistxattr(path: NativePath): Buffer[] {
  return loadNative().llistxattr(path);
}

/** The value of one extended attribute (ENODATA when absent). */
export function lgetxattr(path: NativePath, name: NativePath): Buffer {
  return loadNative().lgetxattr(path, name);
}

/** XATTR_CREATE / XATTR_REPLACE flags for lsetxattr (Linux values). */
export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;

/** Sets one extended attribute (ENOTSUP when the file system does not support it). */
export function lsetxattr(path: NativePath, name: NativePath, value: Uint8Array, flags = 0): void {
  loadNative().lsetxattr(path, name, value, flags);
}

/** Removes one extended attribute (ENODATA when absent). */
export function lremovexattr(path: NativePath, name: NativePath): void {
  loadNative().lremovexattr(path, name);
}

/** Creates a FIFO (mode: permission bits, subject to the umask). */
export function mkfifo(path: NativePath, mode: number): void {
  loadNative().mkfifo(path, mode);
}

/** Creates a device node or other special file; mode includes the type (fs.constants.S_IFCHR...). */
export function mknod(path: NativePath, mode: number, dev: bigint | number): void {
  loadNative().mknod(path, mode, dev);
}

/** Device number from major and minor numbers (the platform's encoding). */
export function makedev(major: number, minor: number): bigint {
  return loadNative().makedev(major, minor);
}

export function major(dev: bigint | number): number {
  return loadNative().major(dev);
}

export function minor(dev: bigint | number): number {
  return loadNative().minor(dev);
}

/**
 * Makes every allocation of at least `bytes` its own mapping, returned to the system when freed
 * (glibc; see native/src/posix.c for the measurement). False where the C library has no such knob.
 */
export function setMmapThreshold(bytes: number): boolean {
  return loadNative().setMmapThreshold(bytes);
}

/**
 * Asks the kernel to drop the cached pages of an open file (posix_fadvise DONTNEED), so a file
 * written once and not read soon does not crowd the page cache (see native/src/posix.c). Only
 * clean pages go: call it after fsync. False where it did nothing.
 */
export function dropCache(fd: number): boolean {
  return loadNative().dropCache(fd);
}

/** Lists a directory and lstats each entry (and sizes its xattr list) on a libuv thread (see NativeDirScan). */
export function scanDir(path: NativePath, xattrs = false): Promise<NativeDirScan> {
  return loadNative().scanDir(path, xattrs);
}

/** readFiles status: the file could not be opened (errno beside it); -2: reading it failed. */
export const READ_OPEN_FAILED = -1;
/** readFiles status: the file has more than maxBytes bytes. */
export const READ_TOO_BIG = -3;
/** readFiles status: no longer a regular file (replaced by a FIFO, symlink, ... since listed). */
export const READ_NOT_REGULAR = -4;

/**
 * Reads a batch of small files whole and computes each one's blob ID (HMAC-SHA256 under idKey),
 * from `start` on (native/src/readfiles.c). `paths` holds the paths as latin1 (raw bytes) joined
 * by NUL. Each file's bytes follow the previous one's in `out` from `outStart`; per file,
 * `status[2i]` is its length or READ_*, `status[2i + 1]` the errno, and `ids` gets its 32-byte ID.
 * Returns the index after the last file handled, short of the end when `out` has no room.
 */
export function readFiles(paths: string, start: number, maxBytes: number, out: Uint8Array, outStart: number, status: Int32Array, idKey: Uint8Array, ids: Uint8Array): number {
  return loadNative().readFiles(paths, start, maxBytes, out, outStart, status, idKey, ids);
}
