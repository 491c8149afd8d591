// Directory listings with each entry's lstat, for backup: the native scanDir runs the syscalls on a
// libuv thread and returns the entries sorted by raw name bytes, the order of tree nodes.
import { createHash } from 'node:crypto';
import { constants } from 'node:os';
import { scanDir } from '../native/binding.js';
import type { FileStat } from './metadata.js';

export interface DirEntry {
  name: Buffer;
  /** Undefined when the entry could not be stat'ed (then `error` says why). */
  stat?: FileStat;
  error?: NodeJS.ErrnoException;
}

const ERRNO_NAMES = new Map(Object.entries(constants.errno).map(([name, n]) => [n, name]));

export interface Listing {
  entries: DirEntry[];
  /**
   * SHA-256 of the names and every lstat field the scan returns (format-spec ch. 16): equal
   * digests mean an unchanged listing.
   */
  digest: Buffer;
}

/** The entries of a directory (without . and ..), sorted by name bytes; rejects if it cannot be listed. */
export async function scanDirectory(path: Buffer): Promise<Listing> {
  const { count, names, nums, bigs } = await scanDir(path);
  const digest = createHash('sha256')
    .update(count === 0 ? names.subarray(0, 0) : names) // an empty listing's names buffer is one spare byte
    .update(new Uint8Array(nums.buffer, nums.byteOffset, nums.byteLength))
    .update(new Uint8Array(bigs.buffer, bigs.byteOffset, bigs.byteLength))
    .digest();
  const out: DirEntry[] = new Array(count);
  let start = 0;
  for (let i = 0; i < count; i++) {
    const end = names.indexOf(0, start);
    const name = names.subarray(start, end);
    start = end + 1;
    const n = i * 6;
    const errno = nums[n + 5]!;
    if (errno !== 0) {
      const code = ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
      out[i] = { name, error: Object.assign(new Error(`cannot lstat (${code})`), { code, errno: -errno, syscall: 'lstat' }) };
      continue;
    }
    const b = i * 5;
    out[i] = {
      name,
      stat: {
        mode: nums[n]!, uid: nums[n + 1]!, gid: nums[n + 2]!, nlink: nums[n + 3]!, size: nums[n + 4]!,
        ino: BigInt.asUintN(64, bigs[b]!), dev: BigInt.asUintN(64, bigs[b + 1]!), rdev: BigInt.asUintN(64, bigs[b + 2]!),
        mtimeNs: bigs[b + 3]!, ctimeNs: bigs[b + 4]!,
      },
    };
  }
  return { entries: out, digest };
}
