// Local directory backend. Objects live at objectPath(h) under the root directory.
//
// save(): write to `.tmp-*` in the target directory, fsync, rename over the final name, fsync the
// directory; so a crash leaves either no object or the whole object under its name, never a part.
// Leftover `.tmp-*` files are invisible to list() (and can be removed by prune/cleanup later).

import { randomBytes } from 'node:crypto';
import { constants as fsConstants, type Dirent } from 'node:fs';
import { mkdir, open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

import {
  objectPath,
  TYPE_DIRS,
  type Backend,
  type FileInfo,
  type FileType,
  type Handle,
  type LoadOptions,
  type SaveOptions,
} from './backend.js';
import { checkHandle, listConfig, resolveRange, throwIfAborted } from './common.js';
import { BackendError, NotFoundError, SnapError } from '../errors.js';

const TMP_PREFIX = '.tmp-';
/** Errors that may go away on their own; everything else is permanent. */
const TRANSIENT_CODES = new Set(['EAGAIN', 'EBUSY', 'EINTR', 'EIO', 'EMFILE', 'ENFILE', 'ETIMEDOUT', 'ESTALE']);

export class LocalBackend implements Backend {
  readonly location: string;
  private readonly root: string;

  constructor(rootDir: string) {
    this.root = resolve(rootDir);
    this.location = `local:${this.root}`;
  }

  async create(): Promise<void> {
    try {
      await mkdir(this.root, { recursive: true, mode: 0o700 });
      for (const dir of Object.values(TYPE_DIRS)) {
        await mkdir(join(this.root, dir), { recursive: true, mode: 0o700 });
      }
    } catch (err) {
      throw this.fail(err, this.root, 'create repository directory');
    }
  }

  async save(h: Handle, data: Uint8Array, opts?: SaveOptions): Promise<void> {
    checkHandle(h);
    throwIfAborted(opts?.signal);
    const rel = objectPath(h);
    const path = join(this.root, rel);
    const dir = dirname(path);
    const tmp = join(dir, `${TMP_PREFIX}${basename(path) || 'config'}-${randomBytes(6).toString('hex')}`);
    let fh: FileHandle | undefined;
    let createdDir = false;
    try {
      try {
        fh = await open(tmp, 'wx', 0o600);
      } catch (err) {
        // data/ and meta/ have 2-hex-digit subdirectories, created on demand. The type directory
        // itself must exist (create() makes it): a missing one means a wrong or unmounted path.
        if (errCode(err) !== 'ENOENT' || (h.type !== 'data' && h.type !== 'meta')) throw err;
        await mkdirOnce(dir);
        createdDir = true;
        fh = await open(tmp, 'wx', 0o600);
      }
      await writeAll(fh, data);
      await fh.sync();
      await fh.close();
      fh = undefined;
      throwIfAborted(opts?.signal);
      await rename(tmp, path);
      await fsyncDir(dir);
      if (createdDir) await fsyncDir(dirname(dir));
    } catch (err) {
      if (fh) await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      if (err instanceof SnapError) throw err;
      if (errCode(err) === 'ENOENT') {
        throw new BackendError(
          `cannot save ${rel}: directory ${dirname(path)} does not exist (${this.location} is not a created repository?)`,
          { transient: false, cause: err },
        );
      }
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

  private fail(err: unknown, rel: string, op: string): SnapError {
    if (err instanceof SnapError) return err;
    const code = errCode(err);
    const where = rel.startsWith('/') ? rel : `${rel} in ${this.location}`;
    switch (code) {
      case 'ENOENT':
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

async function writeAll(fh: FileHandle, data: Uint8Array): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, done);
    done += bytesWritten;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
