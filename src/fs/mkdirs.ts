// `mkdir -p`. Node's own (mkdir with `recursive: true`) spins forever at 100% CPU where mkdir of
// a child answers ENOENT although its parent exists, as procfs does (`--target /proc/x`): it
// takes the ENOENT for a missing parent, finds the parent there (EEXIST) and tries the child
// again. The sync form never returns and the async one never settles, so not even Ctrl-C ends
// it. Here a child that still cannot be made once its parent is there is an error.
// Synchronous only: the directories of a restore are made in order anyway, and the other callers
// make a repository's or a cache's few directories.
import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

type Path = string | Buffer;

const code = (e: unknown) => (e as { code?: string }).code;

/** The parent directory; a Buffer path (raw bytes) stays a Buffer: latin1 maps bytes 1:1. */
function parentPath(p: Path): Path {
  return typeof p === 'string' ? dirname(p) : Buffer.from(dirname(p.toString('latin1')), 'latin1');
}

const samePath = (a: Path, b: Path) => (typeof a === 'string' ? a === b : a.equals(b as Buffer));

/** Whether `p` is a directory (following symlinks); false for anything that cannot be stat'ed. */
function isDirectory(p: Path): boolean {
  try {
    return statSync(p, { throwIfNoEntry: false })?.isDirectory() === true;
  } catch {
    return false;
  }
}

/**
 * Creates `path` and any missing parents with `mode`. Returns the first directory it created, or
 * undefined when `path` was a directory already (as mkdirSync with `recursive: true` does).
 */
export function mkdirsSync(path: Path, mode = 0o777): Path | undefined {
  // A stat first: an existing directory (a restore run again) would cost mkdir's thrown EEXIST,
  // 9 us a call against 3.
  if (isDirectory(path)) return undefined;
  try {
    mkdirSync(path, { mode });
    return path;
  } catch (e) {
    const parent = parentPath(path);
    if (code(e) === 'EEXIST' && isDirectory(path)) return undefined;
    if (code(e) !== 'ENOENT' || samePath(parent, path)) throw e;
    const first = mkdirsSync(parent, mode);
    try {
      mkdirSync(path, { mode });
    } catch (again) {
      // Made by someone else meanwhile; any other error, ENOENT included, is final.
      if (code(again) === 'EEXIST' && isDirectory(path)) return first;
      throw again;
    }
    return first ?? path;
  }
}
