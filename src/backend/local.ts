// Local directory backend. Objects live at objectPath(h) under the root directory.
//
// save() and staged files (packs written as they fill): write to `.tmp-*` in the type's directory,
// fsync, rename over the final name, fsync the directory; so a crash leaves either no object or
// the whole object under its name, never a part.
// Leftover `.tmp-*` files are invisible to list(); prune removes those an hour old (removeStale).

import { randomBytes } from 'node:crypto';
import { constants as fsConstants, type Dirent } from 'node:fs';
import { mkdir, open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

import {
  objectPath,
  TYPE_DIRS,
  type Backend,
  type FileStaging,
  type StagedFile,
  type FileInfo,
  type FileType,
  type Handle,
  type LoadOptions,
  type SaveOptions,
} from './backend.js';
import { checkHandle, listConfig, resolveRange, throwIfAborted } from './common.js';
import { BackendError, NotFoundError, SnapError } from '../errors.js';
import { dropCache, isNativeAvailable } from '../native/binding.js';
import { mkdirsSync } from '../fs/mkdirs.js';

const TMP_PREFIX = '.tmp-';
/** Errors that may go away on their own; everything else is permanent. */
const TRANSIENT_CODES = new Set(['EAGAIN', 'EBUSY', 'EINTR', 'EIO', 'EMFILE', 'ENFILE', 'ETIMEDOUT', 'ESTALE']);

export class LocalBackend implements Backend, FileStaging {
  readonly location: string;
  private readonly root: string;

  constructor(rootDir: string) {
    this.root = resolve(rootDir);
    this.location = `local:${this.root}`;
  }

  async create(): Promise<void> {
    try {
      mkdirsSync(this.root, 0o700);
      for (const dir of Object.values(TYPE_DIRS)) mkdirsSync(join(this.root, dir), 0o700);
    } catch (err) {
      // Not "not found": a parent that cannot hold it (under /proc), or a dangling symlink.
      if (errCode(err) === 'ENOENT') throw new BackendError(`cannot create repository directory ${this.root}: ${(err as Error).message}`, { transient: false, cause: err });
      throw this.fail(err, this.root, 'create repository directory');
    }
  }

  async save(h: Handle, data: Uint8Array, opts?: SaveOptions): Promise<void> {
    checkHandle(h);
    throwIfAborted(opts?.signal);
    const staged = await this.stage(h.type);
    try {
      await staged.append([data]);
      throwIfAborted(opts?.signal);
      await staged.commit(h.name);
    } catch (err) {
      await staged.discard();
      throw err;
    }
  }

  /**
   * A temporary file in the directory of the type (data/ and meta/ themselves for packs, whose
   * 2-hex-digit subdirectory is known only from the name), renamed into place by commit().
   */
  async stage(type: FileType): Promise<StagedFile> {
    const dir = type === 'config' ? this.root : join(this.root, TYPE_DIRS[type]);
    const tmp = join(dir, `${TMP_PREFIX}${randomBytes(8).toString('hex')}`);
    try {
      return new LocalStagedFile(this, type, tmp, await open(tmp, 'wx', 0o600));
    } catch (err) {
      if (errCode(err) === 'ENOENT') {
        throw new BackendError(`cannot save ${type} objects: directory ${dir} does not exist (${this.location} is not a created repository?)`, {
          transient: false,
          cause: err,
        });
      }
      throw this.fail(err, tmp, 'save');
    }
  }

  async removeStale(before: Date): Promise<{ files: number; bytes: number }> {
    const removed = { files: 0, bytes: 0 };
    // Temporary files are in the root (config), each type's directory, and (written by earlier
    // versions) the 2-hex-digit subdirectories of data/ and meta/.
    const dirs = ['', ...Object.values(TYPE_DIRS)];
    for (const top of ['data', 'meta']) {
      for (const e of await this.readDir(top)) if (e.isDirectory() && !e.name.startsWith('.')) dirs.push(join(top, e.name));
    }
    for (const dir of dirs) {
      for (const e of await this.readDir(dir)) {
        if (!e.isFile() || !e.name.startsWith(TMP_PREFIX)) continue;
        const path = join(this.root, dir, e.name);
        try {
          const st = await stat(path);
          if (st.mtime >= before) continue;
          await unlink(path);
          removed.files++;
          removed.bytes += st.size;
        } catch (err) {
          if (errCode(err) !== 'ENOENT') throw this.fail(err, join(dir, e.name), 'remove');
        }
      }
    }
    return removed;
  }

  /** Renames a complete, synced temporary file to the object `h` and makes the rename durable. */
  async place(tmp: string, h: Handle): Promise<void> {
    checkHandle(h);
    const rel = objectPath(h);
    const path = join(this.root, rel);
    const dir = dirname(path);
    try {
      try {
        await rename(tmp, path);
      } catch (err) {
        // data/ and meta/ have 2-hex-digit subdirectories, created on demand.
        if (errCode(err) !== 'ENOENT' || (h.type !== 'data' && h.type !== 'meta')) throw err;
        await mkdirOnce(dir);
        await fsyncDir(dirname(dir));
        await rename(tmp, path);
      }
      await fsyncDir(dir);
    } catch (err) {
      throw this.fail(err, rel, 'save');
    }
  }

  async load(h: Handle, opts?: LoadOptions): Promise<Buffer> {
    checkHandle(h);
    throwIfAborted(opts?.signal);
    const rel = objectPath(h);
    let fh: FileHandle | undefined;
    try {
      fh = await open(join(this.root, rel), fsConstants.O_RDONLY);
      const { size } = await fh.stat();
      const { start, end } = resolveRange(h, size, opts);
      const into = opts?.buffer?.(end - start);
      const buf = into ? Buffer.from(into.buffer, into.byteOffset, end - start) : Buffer.allocUnsafe(end - start);
      let done = 0;
      while (done < buf.length) {
        const { bytesRead } = await fh.read(buf, done, buf.length - done, start + done);
        if (bytesRead === 0) {
          throw new BackendError(`${rel}: file shrank while reading (${start + done} of ${end} bytes)`, {
            transient: true,
          });
        }
        done += bytesRead;
      }
      return buf;
    } catch (err) {
      throw this.fail(err, rel, 'load');
    } finally {
      await fh?.close().catch(() => {});
    }
  }

  async stat(h: Handle): Promise<FileInfo> {
    checkHandle(h);
    const rel = objectPath(h);
    try {
      const st = await stat(join(this.root, rel));
      return { name: h.name, size: st.size, modified: st.mtime };
    } catch (err) {
      throw this.fail(err, rel, 'stat');
    }
  }

  async *list(type: FileType, opts?: { signal?: AbortSignal }): AsyncIterable<FileInfo> {
    if (type === 'config') {
      yield* listConfig(this);
      return;
    }
    const top = TYPE_DIRS[type];
    const dirs: string[] = [];
    if (type === 'data' || type === 'meta') {
      for (const e of await this.readDir(top)) {
        if (e.isDirectory() && !e.name.startsWith('.')) dirs.push(join(top, e.name));
      }
    } else {
      dirs.push(top);
    }
    for (const dir of dirs) {
      for (const e of await this.readDir(dir)) {
        throwIfAborted(opts?.signal);
        if (!e.isFile() || e.name.startsWith(TMP_PREFIX) || e.name.startsWith('.')) continue;
        const rel = join(dir, e.name);
        try {
          const st = await stat(join(this.root, rel));
          yield { name: e.name, size: st.size, modified: st.mtime };
        } catch (err) {
          if (errCode(err) === 'ENOENT') continue; // removed while listing
          throw this.fail(err, rel, 'list');
        }
      }
    }
  }

  async remove(h: Handle): Promise<void> {
    checkHandle(h);
    const rel = objectPath(h);
    try {
      await unlink(join(this.root, rel));
    } catch (err) {
      throw this.fail(err, rel, 'remove');
    }
  }

  async close(): Promise<void> {}

  /** Entries of a directory under the root; a missing directory has none. */
  private async readDir(rel: string): Promise<Dirent[]> {
    try {
      return await readdir(join(this.root, rel), { withFileTypes: true });
    } catch (err) {
      if (errCode(err) === 'ENOENT') return [];
      throw this.fail(err, rel, 'list');
    }
  }

  /** The SnapError for a failed file operation (staged files use it too). */
  fail(err: unknown, rel: string, op: string): SnapError {
    if (err instanceof SnapError) return err;
    const code = errCode(err);
    const where = rel.startsWith('/') ? rel : `${rel} in ${this.location}`;
    switch (code) {
      // ENOTDIR: a file stands where a directory of the path should be (--repo names a file).
      case 'ENOENT':
      case 'ENOTDIR':
        return new NotFoundError(`${where} not found`, { cause: err });
      case 'EACCES':
      case 'EPERM':
        return new BackendError(`${op} ${where}: permission denied`, {
          transient: false,
          cause: err,
          hint: 'check the ownership and permissions of the repository directory',
        });
      case 'EROFS':
        return new BackendError(`${op} ${where}: the file system is read-only`, { transient: false, cause: err });
      case 'ENOSPC':
      case 'EDQUOT':
        return new BackendError(`${op} ${where}: no space left on the device`, {
          transient: false,
          cause: err,
          hint: 'free some space, or prune old snapshots',
        });
      default: {
        const msg = err instanceof Error ? err.message : String(err);
        return new BackendError(`${op} ${where}: ${msg}`, { transient: code !== undefined && TRANSIENT_CODES.has(code), cause: err });
      }
    }
  }
}

function errCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

async function mkdirOnce(dir: string): Promise<void> {
  try {
    await mkdir(dir, { mode: 0o700 });
  } catch (err) {
    if (errCode(err) !== 'EEXIST') throw err;
  }
}

/** A temporary file of LocalBackend.stage(): written in order, then synced and renamed. */
class LocalStagedFile implements StagedFile {
  private size = 0;
  private fh: FileHandle | undefined;

  constructor(private readonly backend: LocalBackend, private readonly type: FileType, private readonly tmp: string, fh: FileHandle) {
    this.fh = fh;
  }

  async append(parts: readonly Uint8Array[]): Promise<void> {
    const fh = this.open();
    try {
      // One writev for many small blobs; a short write continues where it stopped.
      let rest = parts.filter((p) => p.length > 0);
      while (rest.length > 0) {
        const { bytesWritten } = await fh.writev(rest as Uint8Array[], this.size);
        this.size += bytesWritten;
        rest = skipBytes(rest, bytesWritten);
      }
    } catch (err) {
      throw this.backend.fail(err, this.tmp, 'save');
    }
  }

  async commit(name: string): Promise<void> {
    const fh = this.open();
    try {
      await fh.sync();
      // Data packs are read again only by a restore or a check: their pages go back to the
      // kernel (native/src/posix.c), not to crowd out the server's own cache.
      if (this.type === 'data' && isNativeAvailable()) dropCache(fh.fd);
      await fh.close();
    } catch (err) {
      throw this.backend.fail(err, this.tmp, 'save');
    } finally {
      this.fh = undefined;
    }
    await this.backend.place(this.tmp, { type: this.type, name });
  }

  async discard(): Promise<void> {
    await this.fh?.close().catch(() => {});
    this.fh = undefined;
    await unlink(this.tmp).catch(() => {});
  }

  private open(): FileHandle {
    if (!this.fh) throw new BackendError(`${this.tmp}: staged file already committed or discarded`, { transient: false });
    return this.fh;
  }
}

/** The buffers after the first `n` bytes. */
function skipBytes(parts: Uint8Array[], n: number): Uint8Array[] {
  let i = 0;
  while (i < parts.length && n >= parts[i]!.length) n -= parts[i++]!.length;
  const rest = parts.slice(i);
  if (n > 0) rest[0] = rest[0]!.subarray(n);
  return rest;
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
