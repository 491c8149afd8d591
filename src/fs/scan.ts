// Directory listings with each entry's lstat, for backup: the native scanDir runs the syscalls on a
// libuv thread and returns the entries sorted by raw name bytes, the order of tree nodes.
import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { constants } from 'node:os';
import { scanDir, type NativeDirScan } from '../native/binding.js';
import type { FileStat } from './metadata.js';

export interface DirEntry {
  name: Buffer;
  /** Undefined when the entry could not be stat'ed (then `error` says why). */
  stat?: FileStat;
  error?: NodeJS.ErrnoException;
}

const ERRNO_NAMES = new Map(Object.entries(constants.errno).map(([name, n]) => [n, name]));

/**
 * A directory's entries (without . and ..), sorted by name bytes, as the native scan returned
 * them: an entry becomes objects (BigInt times, a stat record) only when asked for, so a walk
 * that needs only the types and sizes of most entries allocates nothing for them.
 */
export class Listing {
  /**
   * SHA-256 of the names and every lstat field the scan returns (format-spec ch. 16): equal
   * digests mean an unchanged listing.
   */
  readonly digest: Buffer;
  private readonly starts: Uint32Array;

  constructor(private readonly scan: NativeDirScan) {
    const { count, names, nums, bigs } = scan;
    this.digest = createHash('sha256')
      .update(count === 0 ? names.subarray(0, 0) : names) // an empty listing's names buffer is one spare byte
      .update(new Uint8Array(nums.buffer, nums.byteOffset, nums.byteLength))
      .update(new Uint8Array(bigs.buffer, bigs.byteOffset, bigs.byteLength))
      .digest();
    this.starts = new Uint32Array(count + 1);
    for (let i = 0, at = 0; i < count; i++) this.starts[i + 1] = at = names.indexOf(0, at) + 1;
  }

  get count(): number {
    return this.scan.count;
  }

  /** True for a directory (false when entry i could not be lstat'ed). */
  isDir(i: number): boolean {
    return (this.scan.nums[i * 6]! & fsConstants.S_IFMT) === fsConstants.S_IFDIR;
  }

  /** True for a regular file. */
  isFile(i: number): boolean {
    return (this.scan.nums[i * 6]! & fsConstants.S_IFMT) === fsConstants.S_IFREG;
  }

  size(i: number): number {
    return this.scan.nums[i * 6 + 4]!;
  }

  /**
   * True when entry i has no extended attributes (or its file system has none), as the scan saw
   * them; false when it has some, or the scan did not look or could not tell.
   */
  hasNoXattrs(i: number): boolean {
    return this.scan.xattrs?.[i] === 0;
  }

  name(i: number): Buffer {
    return this.scan.names.subarray(this.starts[i]!, this.starts[i + 1]! - 1);
  }

  /** True when some entry could not be lstat'ed (it vanished, or permission was denied). */
  get hasErrors(): boolean {
    for (let i = 0; i < this.count; i++) if (this.scan.nums[i * 6 + 5] !== 0) return true;
    return false;
  }

  entry(i: number): DirEntry {
    const { nums, bigs } = this.scan;
    const name = this.name(i);
    const n = i * 6;
    const errno = nums[n + 5]!;
    if (errno !== 0) {
      const code = ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
      return { name, error: Object.assign(new Error(`cannot lstat (${code})`), { code, errno: -errno, syscall: 'lstat' }) };
    }
    const b = i * 5;
    return {
      name,
      stat: {
        mode: nums[n]!, uid: nums[n + 1]!, gid: nums[n + 2]!, nlink: nums[n + 3]!, size: nums[n + 4]!,
        ino: BigInt.asUintN(64, bigs[b]!), dev: BigInt.asUintN(64, bigs[b + 1]!), rdev: BigInt.asUintN(64, bigs[b + 2]!),
        mtimeNs: bigs[b + 3]!, ctimeNs: bigs[b + 4]!,
      },
    };
  }
}

/**
 * Lists a directory and lstats its entries on a libuv thread, and with `xattrs` sizes each entry's
 * xattr list there too; rejects if it cannot be listed.
 */
export async function scanDirectory(path: Buffer, xattrs = false): Promise<Listing> {
  return new Listing(await scanDir(path, xattrs));
}
