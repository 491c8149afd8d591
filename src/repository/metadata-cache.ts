// Local copies of a remote repository's index and snapshot objects. Without them every command
// downloads every one of those objects (a backup lists all snapshots to choose its parent): with
// thousands of snapshots on S3, thousands of GETs per cron run. restic keeps the same cache.
//
// The copies are the stored bytes, still encrypted, one file per object under
// <dir>/<type>/<name>. An object's name is the SHA-256 of its bytes and objects are never changed,
// so a copy whose hash matches its name is valid, and one that does not is dropped and fetched
// again. Entries whose objects are gone from the repository are removed when the type is listed.
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex } from '../crypto/hash.js';
import { isId } from '../model/ids.js';
import { mkdirsSync } from '../fs/mkdirs.js';

export type CachedType = 'index' | 'snapshot';

export class MetadataCache {
  constructor(readonly dir: string) {}

  /** The cached bytes of an object, or undefined when absent or not matching its name. */
  async get(type: CachedType, name: string): Promise<Buffer | undefined> {
    if (!isId(name)) return undefined;
    const path = this.path(type, name);
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch {
      return undefined;
    }
    if (sha256Hex(bytes) === name) return bytes;
    await unlink(path).catch(() => undefined);
    return undefined;
  }

  /** Stores a copy (best effort: a cache that cannot be written only costs downloads). */
  async put(type: CachedType, name: string, bytes: Uint8Array): Promise<void> {
    if (!isId(name)) return;
    const dir = join(this.dir, type);
    const tmp = join(dir, `.tmp-${randomBytes(6).toString('hex')}`);
    try {
      mkdirsSync(dir, 0o700);
      await writeFile(tmp, bytes, { mode: 0o600 });
      await rename(tmp, this.path(type, name));
    } catch {
      await unlink(tmp).catch(() => undefined);
    }
  }

  /** Removes the copies of objects not in `present` (forgotten snapshots, superseded indexes). */
  async retain(type: CachedType, present: ReadonlySet<string>): Promise<void> {
    let names: string[];
    try {
      names = await readdir(join(this.dir, type));
    } catch {
      return;
    }
    for (const n of names) {
      if (isId(n) && !present.has(n)) await unlink(this.path(type, n)).catch(() => undefined);
    }
  }

  /** Only object names (64 hex digits) become file names: a listing cannot point outside the cache. */
  private path(type: CachedType, name: string): string {
    if (!isId(name)) throw new Error(`not an object name: ${JSON.stringify(name)}`);
    return join(this.dir, type, name);
  }
}
