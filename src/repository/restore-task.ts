// The restore task of the crypto workers (crypto-worker.ts): open (decrypt, decompress, verify) the
// needed blobs of a pack region, write each into the files that need it, and finish the files whose
// last blob this task writes: metadata, then the rename from the temporary name. Creating, writing
// and finishing tens of thousands of small files is most of a restore's work; done here it is
// spread over the workers instead of queueing behind the main thread.
//
// The task is encoded in a few flat arrays (one structured clone of a handful of objects, not
// several per blob and file): cloning per-blob objects cost the main thread more than the writes.
import { closeSync, constants, fstatSync, ftruncateSync, openSync, renameSync, rmdirSync, rmSync, writeSync } from 'node:fs';
import { applyFileMetadata, pathText } from '../fs/metadata.js';
import type { TreeNode } from '../model/tree.js';
import { openStoredBlob } from './blob.js';

/** Numbers per blob in RestoreTask.blobs. */
export const BLOB_FIELDS = 6;
// offset in region, sealed length, raw length, compressed (0/1), first write, number of writes
/** Numbers per write in RestoreTask.writes: file index (into files), position in the file. */
export const WRITE_FIELDS = 2;
/** Numbers per file in RestoreTask.files. */
export const FILE_FIELDS = 13;
// path start, path end (in paths), dest start, dest end (-1: written under its own name), size,
// flags, mode, uid, gid, mtime seconds, mtime nanoseconds, index of its xattrs (-1: none),
// permission bits to create it with

/** The task writes the file's last blob: set metadata and move it into place. */
export const F_FINISH = 1;
/** A new file written under its own name: created (truncated) at the first write. */
export const F_NEW = 2;
/** Set the length after writing (a sparse file's trailing hole, or a zero-blob file). */
export const F_TRUNCATE = 4;

export interface TaskXattr {
  name: string;
  value: Uint8Array;
}

export interface RestoreTask {
  kind: 'restore';
  seq: number;
  /** The sealed bytes of the blobs (transferred when it owns its memory). */
  region: Uint8Array;
  /** Blob IDs, 64 hex digits each, concatenated. */
  ids: string;
  blobs: Float64Array;
  writes: Float64Array;
  files: Float64Array;
  /** The files' paths (and final names of temporary files), concatenated. */
  paths: Uint8Array;
  /** Extended attributes of files that have some, by the index in files[11]. */
  xattrs: TaskXattr[][];
  /** Leave all-zero 4 KiB blocks as holes. */
  sparse: boolean;
  /** Restore ownership (root). */
  owner: boolean;
  /** Int32Array over a SharedArrayBuffer: nonzero asks the task to stop (after cleaning up). */
  abort: Int32Array;
}

export interface RestoreResult {
  kind: 'restore';
  seq: number;
  /**
   * The first failure: an unusable blob (blob), or a file that could not be created, written
   * (blob and file) or moved into place (file), with the errno code.
   */
  error?: { blob?: number; file?: number; reason: string; code?: string };
  /** Stopped because abort was set. */
  aborted?: boolean;
  /** Metadata that could not be applied. */
  warnings: string[];
}

const SPARSE_BLOCK = 4096;
const ZERO_BLOCK = Buffer.alloc(SPARSE_BLOCK);
/** Descriptors one task keeps open at most (files whose blobs are far apart in the pack). */
const MAX_OPEN = 256;

/** The [start, end) runs of `b` that are not all-zero 4 KiB blocks: what a sparse restore writes. */
function dataRuns(b: Buffer): [number, number][] {
  const runs: [number, number][] = [];
  for (let i = 0; i < b.length; i += SPARSE_BLOCK) {
    const end = Math.min(i + SPARSE_BLOCK, b.length);
    if (b.compare(ZERO_BLOCK, 0, end - i, i, end) === 0) continue;
    const last = runs[runs.length - 1];
    if (last && last[1] === i) last[1] = end;
    else runs.push([i, end]);
  }
  return runs;
}

/** write(2) may write less than asked (a full disk does that before failing): loop until done. */
function writeAll(fd: number, data: Buffer, from: number, to: number, position: number): void {
  while (from < to) {
    const n = writeSync(fd, data, from, to - from, position);
    if (n === 0) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    from += n;
    position += n;
  }
}

// Files are opened never through a symlink (O_NOFOLLOW) and never waiting for a FIFO's reader
// (O_NONBLOCK: no effect on regular files). Temporary names are predictable, and whoever can write
// to a directory that a restore run as root writes into could plant either under one: to have the
// snapshot's bytes written into /etc/shadow, or the restore stalled.
const { O_CREAT, O_NOFOLLOW, O_NONBLOCK, O_TRUNC, O_WRONLY } = constants;

/** A temporary file to write into is a regular file with no other name (not a planted hard link). */
function checkTemp(fd: number, path: Buffer): void {
  const st = fstatSync(fd);
  if (st.isFile() && st.nlink <= 1) return;
  closeSync(fd);
  const what = st.isFile() ? 'has other hard links' : 'is not a regular file';
  throw Object.assign(new Error(`${path.toString()}, where the restore keeps a temporary file, ${what}: remove it`), { code: 'EEXIST' });
}

/**
 * Moves a finished temporary file to its name, over anything there. A directory in the way is
 * replaced only when it is empty, as restic does: what is in it is not in the snapshot.
 */
export function moveIntoPlace(temp: Buffer, dest: Buffer): void {
  try {
    renameSync(temp, dest);
  } catch (e) {
    if ((e as { code?: string }).code !== 'EISDIR') throw e;
    removeEmptyDir(dest);
    renameSync(temp, dest);
  }
}

/** Removes a directory that is in a file's place, if it is empty; else an error that says so. */
export function removeEmptyDir(dest: Buffer): void {
  try {
    rmdirSync(dest);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
    throw Object.assign(new Error('a directory that is not empty is in its place'), { code });
  }
}

class TaskError extends Error {
  constructor(readonly info: NonNullable<RestoreResult['error']>) {
    super(info.reason);
  }
}

function failure(e: unknown, where: { blob?: number; file?: number }): TaskError {
  const err = e as { code?: string; message: string };
  return new TaskError({ ...where, reason: err.message, ...(err.code ? { code: err.code } : {}) });
}

export function runRestoreTask(t: RestoreTask, key: Uint8Array, idKey: Uint8Array): RestoreResult {
  const f = t.files;
  const nFiles = f.length / FILE_FIELDS;
  const paths = Buffer.from(t.paths.buffer, t.paths.byteOffset, t.paths.byteLength);
  const region = t.region;
  const warnings: string[] = [];
  /** Writes of each file still to do in this task. */
  const left = new Int32Array(nFiles);
  for (let w = 0; w < t.writes.length; w += WRITE_FIELDS) left[t.writes[w]!]!++;
  /** Open descriptors by file, oldest first. */
  const open = new Map<number, number>();
  /** Files opened (created, sized) once already in this task. */
  const opened = new Uint8Array(nFiles);

  const path = (i: number) => paths.subarray(f[i * FILE_FIELDS]!, f[i * FILE_FIELDS + 1]!);
  const isTemp = (i: number) => f[i * FILE_FIELDS + 2]! >= 0;
  const dest = (i: number) => (isTemp(i) ? paths.subarray(f[i * FILE_FIELDS + 2]!, f[i * FILE_FIELDS + 3]!) : path(i));

  const fdFor = (i: number): number => {
    const have = open.get(i);
    if (have !== undefined) return have;
    if (open.size >= MAX_OPEN) {
      const [oldest, ofd] = open.entries().next().value as [number, number];
      open.delete(oldest);
      closeSync(ofd);
    }
    const base = i * FILE_FIELDS;
    const flags = f[base + 5]!;
    const first = opened[i] === 0;
    let fd: number;
    try {
      // Temporary files are created without truncating (a leftover keeps its good blobs) and get
      // their full length up front; a new file under its own name is created empty. (Not O_EXCL:
      // on a case-insensitive target, 'A' and 'a' of one directory are one file, the last wins.)
      const fresh = first && flags & F_NEW ? O_TRUNC : 0;
      fd = openSync(path(i), O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | fresh, f[base + 12]!);
      if (isTemp(i)) checkTemp(fd, path(i));
    } catch (e) {
      throw failure(e, { file: i });
    }
    open.set(i, fd);
    if (first) {
      opened[i] = 1;
      if (isTemp(i)) {
        try {
          ftruncateSync(fd, f[base + 4]!);
        } catch (e) {
          throw failure(e, { file: i });
        }
      }
    }
    return fd;
  };

  const finish = (i: number): void => {
    const base = i * FILE_FIELDS;
    const fd = fdFor(i);
    open.delete(i);
    const d = dest(i);
    try {
      if (f[base + 5]! & F_TRUNCATE) ftruncateSync(fd, f[base + 4]!);
      // Renamed while open: the metadata is then set through the descriptor and the final name,
      // which warnings name.
      if (isTemp(i)) moveIntoPlace(path(i), d);
    } catch (e) {
      closeSync(fd);
      if (!isTemp(i)) rmSync(path(i), { force: true });
      throw failure(e, { file: i });
    }
    const x = f[base + 11]!;
    const node = {
      type: 'file',
      mode: f[base + 6]!,
      uid: f[base + 7]!,
      gid: f[base + 8]!,
      mtimeNs: BigInt(f[base + 9]!) * 1_000_000_000n + BigInt(f[base + 10]!),
      ...(x >= 0 ? { xattrs: t.xattrs[x]!.map((a) => ({ name: a.name, value: Buffer.from(a.value.buffer, a.value.byteOffset, a.value.byteLength) })) } : {}),
    } as TreeNode;
    try {
      applyFileMetadata(fd, d, node, { owner: t.owner, warn: (m) => warnings.push(m) });
    } catch (e) {
      warnings.push(`${pathText(d)}: cannot restore metadata: ${(e as Error).message}`);
    } finally {
      closeSync(fd);
    }
  };

  /** After a failure or abort: close everything; files under their own name are unfinished, so removed. */
  const cleanup = (): void => {
    for (const [i, fd] of open) {
      try {
        closeSync(fd);
      } catch {
        // Closing cannot fail in a way that matters here.
      }
      if (!isTemp(i)) rmSync(path(i), { force: true });
    }
    open.clear();
  };

  try {
    if (Atomics.load(t.abort, 0) !== 0) {
      cleanup();
      return { kind: 'restore', seq: t.seq, aborted: true, warnings };
    }
    // Files with nothing to write here (empty, or complete from an interrupted run) finish first.
    for (let i = 0; i < nFiles; i++) if (left[i] === 0 && f[i * FILE_FIELDS + 5]! & F_FINISH) finish(i);
    const nBlobs = t.blobs.length / BLOB_FIELDS;
    for (let b = 0; b < nBlobs; b++) {
      if (Atomics.load(t.abort, 0) !== 0) {
        cleanup();
        return { kind: 'restore', seq: t.seq, aborted: true, warnings };
      }
      const o = b * BLOB_FIELDS;
      const off = t.blobs[o]!;
      const blob = { id: t.ids.slice(b * 64, b * 64 + 64), compressed: t.blobs[o + 3] === 1, rawLength: t.blobs[o + 2]! };
      const data = openStoredBlob(key, idKey, blob, region.subarray(off, off + t.blobs[o + 1]!), true);
      if (typeof data === 'string') throw new TaskError({ blob: b, reason: data });
      const runs: [number, number][] = t.sparse ? dataRuns(data) : [[0, data.length]];
      const first = t.blobs[o + 4]!;
      const count = t.blobs[o + 5]!;
      for (let k = 0; k < count; k++) {
        const w = (first + k) * WRITE_FIELDS;
        const file = t.writes[w]!;
        const position = t.writes[w + 1]!;
        const fd = fdFor(file);
        try {
          for (const [from, to] of runs) writeAll(fd, data, from, to, position + from);
        } catch (e) {
          throw failure(e, { blob: b, file });
        }
        if (--left[file]! === 0) {
          if (f[file * FILE_FIELDS + 5]! & F_FINISH) finish(file);
          else {
            open.delete(file);
            closeSync(fd);
          }
        }
      }
    }
  } catch (e) {
    cleanup();
    if (e instanceof TaskError) return { kind: 'restore', seq: t.seq, error: e.info, warnings };
    return { kind: 'restore', seq: t.seq, error: { reason: (e as Error).message }, warnings };
  }
  return { kind: 'restore', seq: t.seq, warnings };
}

