// The directory cache (format-spec ch. 16): per directory, a key over its listing and its
// subdirectories' tree IDs -> the tree ID stored for it. An unchanged re-backup then keeps each
// directory's tree ID without decoding the parent snapshot's tree or comparing entry by entry.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../fs/atomic.js';
import { nameTableDigests } from '../fs/users.js';
import type { BackupOptions } from './archiver.js';

const MAGIC = Buffer.from('snapdirc');
// Version 3 records the repair marks of the index it was written under (version 2 named every index
// object, so a prune made it useless; version 1 neither): older versions are ignored.
const VERSION = 3;
const HEADER = 84;
const ENTRY = 64;
const KEY_DOMAIN = Buffer.from('snap dir cache v1\n');

/** The cache file of the backups that share a host and paths (they pick each other as parent). */
export function dirCacheFile(cacheDir: string, hostname: string, paths: readonly string[]): string {
  const h = createHash('sha256');
  for (const p of [hostname, ...[...paths].sort()]) h.update(p).update('\0');
  return join(cacheDir, 'dirs', h.digest('hex'));
}

/** What besides the listings decides a backup's trees: a cache made under other options is ignored. */
export function dirCacheOptions(opts: Pick<BackupOptions, 'excludes' | 'iexcludes' | 'excludeLargerThan' | 'oneFileSystem' | 'excludeIfPresent'>): Buffer {
  const sorted = (v: readonly string[] | undefined) => [...(v ?? [])].sort();
  // Options at their defaults add no key: caches written before an option existed stay valid.
  const doc = {
    excludes: sorted(opts.excludes),
    // Absolute patterns matched nothing before snap 0.1.0's fix of 2026-12-07: a cache made then
    // under the same patterns may hold entries they now leave out.
    ...(opts.excludes?.length || opts.iexcludes?.length ? { pattern_rules: 2 } : {}),
    one_file_system: opts.oneFileSystem === true,
    ...(opts.excludeIfPresent?.length ? { exclude_if_present: sorted(opts.excludeIfPresent) } : {}),
    ...(opts.iexcludes?.length ? { iexcludes: sorted(opts.iexcludes) } : {}),
    ...(opts.excludeLargerThan !== undefined ? { exclude_larger_than: opts.excludeLargerThan } : {}),
    ...nameTableDigests(),
  };
  return createHash('sha256').update(JSON.stringify(doc)).digest();
}

/** A directory's key: its path, its listing digest and its subdirectories' tree IDs in order. */
export function dirKey(path: Buffer, listingDigest: Buffer, subtreeIds: readonly string[]): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32LE(path.length);
  const h = createHash('sha256').update(KEY_DOMAIN).update(len).update(path).update(listingDigest);
  for (const id of subtreeIds) h.update(Buffer.from(id, 'hex'));
  return h.digest();
}

/** A loaded cache file: sorted fixed-size entries, searched in place. */
export class DirCache {
  private constructor(private readonly entries: Buffer, private readonly count: number) {}

  /**
   * The cache in `file` when it describes `snapshotId` under `options`, and was written under the
   * index's present `repairMarks`; undefined when it is missing, damaged or describes something
   * else (the backup then compares with the parent's trees). Other marks mean a repair may have
   * dropped blobs the parent snapshot uses (ch. 6): a backup must then see each file's blobs, to
   * store the lost ones again.
   */
  static async load(file: string, snapshotId: string, options: Buffer, repairMarks: ReadonlySet<string>): Promise<DirCache | undefined> {
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch {
      return undefined;
    }
    if (bytes.length < HEADER || !bytes.subarray(0, 8).equals(MAGIC) || bytes.readUInt32LE(8) !== VERSION) return undefined;
    if (!bytes.subarray(12, 44).equals(Buffer.from(snapshotId, 'hex')) || !bytes.subarray(44, 76).equals(options)) return undefined;
    const count = bytes.readUInt32LE(76);
    const marks = bytes.readUInt32LE(80);
    const entries = HEADER + marks * 32;
    if (bytes.length !== entries + count * ENTRY || marks !== repairMarks.size) return undefined;
    for (let at = HEADER; at < entries; at += 32) if (!repairMarks.has(bytes.toString('hex', at, at + 32))) return undefined;
    return new DirCache(bytes.subarray(entries), count);
  }

  /** The tree ID stored under `key`, if any. */
  get(key: Buffer): string | undefined {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const at = mid * ENTRY;
      const c = this.entries.compare(key, 0, 32, at, at + 32); // this entry's key against `key`
      if (c === 0) return this.entries.toString('hex', at + 32, at + ENTRY);
      if (c < 0) lo = mid + 1;
      else hi = mid;
    }
    return undefined;
  }
}

/** The entries a backup records (64 bytes each, in one buffer), written for its snapshot once that is stored. */
export class DirCacheRecorder {
  private buffer = Buffer.alloc(64 * ENTRY);
  private count = 0;

  record(key: Buffer, treeId: string): void {
    if ((this.count + 1) * ENTRY > this.buffer.length) {
      const grown = Buffer.alloc(this.buffer.length * 2);
      this.buffer.copy(grown);
      this.buffer = grown;
    }
    const at = this.count++ * ENTRY;
    key.copy(this.buffer, at);
    this.buffer.write(treeId, at + 32, 'hex');
  }

  /** Writes the file for `snapshotId`, made under `options` with the index's `repairMarks`. */
  async write(file: string, snapshotId: string, options: Buffer, repairMarks: ReadonlySet<string>): Promise<void> {
    const b = this.buffer;
    const order = Array.from({ length: this.count }, (_, i) => i * ENTRY);
    order.sort((x, y) => b.compare(b, y, y + 32, x, x + 32));
    const marks = [...repairMarks].sort();
    const entries = HEADER + marks.length * 32;
    const out = Buffer.alloc(entries + order.length * ENTRY);
    MAGIC.copy(out, 0);
    out.writeUInt32LE(VERSION, 8);
    out.write(snapshotId, 12, 'hex');
    options.copy(out, 44);
    out.writeUInt32LE(order.length, 76);
    out.writeUInt32LE(marks.length, 80);
    let at = HEADER;
    for (const mark of marks) at += out.write(mark, at, 'hex');
    order.forEach((from, i) => b.copy(out, entries + i * ENTRY, from, from + ENTRY));
    await writeFileAtomic(file, out);
  }
}
