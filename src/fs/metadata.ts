// File metadata between the file system and tree nodes: reading it for backup, applying it on
// restore. Paths are Buffers so that non-UTF-8 names survive.
import { chmodSync, closeSync, constants, fchmodSync, fchownSync, fstatSync, lchownSync, openSync, type BigIntStats } from 'node:fs';
import type { NodeType, TreeNode, Xattr } from '../model/tree.js';
import { lgetxattr, llistxattr, lremovexattr, lsetxattr, utimensat } from '../native/binding.js';
import { groupName, userName } from './users.js';

/** The lstat fields a tree node is made of. */
export interface FileStat {
  /** Type and permission bits (st_mode). */
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  size: number;
  ino: bigint;
  dev: bigint;
  rdev: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

export function fileStat(st: BigIntStats): FileStat {
  return {
    mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid), nlink: Number(st.nlink), size: Number(st.size),
    ino: st.ino, dev: st.dev, rdev: st.rdev, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs,
  };
}

const TYPES = new Map<number, NodeType>([
  [constants.S_IFREG, 'file'], [constants.S_IFDIR, 'dir'], [constants.S_IFLNK, 'symlink'], [constants.S_IFIFO, 'fifo'],
  [constants.S_IFSOCK, 'socket'], [constants.S_IFCHR, 'chardev'], [constants.S_IFBLK, 'blockdev'],
]);

export function nodeType(st: FileStat): NodeType | undefined {
  return TYPES.get(st.mode & constants.S_IFMT);
}

/** The node for a stat result, without content, subtree, target or xattrs. */
export function nodeFromStat(name: Buffer, st: FileStat, type: NodeType): TreeNode {
  const { uid, gid } = st;
  const n: TreeNode = {
    name,
    type,
    mode: st.mode & 0o7777,
    uid,
    gid,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    inode: st.ino,
    device: st.dev,
  };
  const user = userName(uid);
  const group = groupName(gid);
  if (user !== undefined) n.user = user;
  if (group !== undefined) n.group = group;
  if (type === 'file') {
    n.size = st.size;
    n.nlink = st.nlink;
  }
  if (type === 'chardev' || type === 'blockdev') n.rdev = st.rdev;
  return n;
}

const XATTR_UNSUPPORTED = new Set(['ENOTSUP', 'EOPNOTSUPP', 'ENODATA', 'ENOSYS']);

/** Extended attributes with UTF-8 names; unsupported file systems give none. */
export function readXattrs(path: Buffer): Xattr[] {
  let names: Buffer[];
  try {
    names = llistxattr(path);
  } catch (e) {
    if (XATTR_UNSUPPORTED.has((e as { code?: string }).code ?? '')) return [];
    throw e;
  }
  const out: Xattr[] = [];
  for (const raw of names) {
    const name = raw.toString('utf8');
    if (!Buffer.from(name, 'utf8').equals(raw)) continue;
    try {
      out.push({ name, value: lgetxattr(path, raw) });
    } catch (e) {
      if (!XATTR_UNSUPPORTED.has((e as { code?: string }).code ?? '')) throw e;
    }
  }
  return out;
}

/**
 * A restore over an existing file or directory makes it match the snapshot, so extended
 * attributes the snapshot does not have are removed (user namespace and the like; a file system
 * without xattrs has none to remove).
 */
function removeExtraXattrs(path: Buffer, node: TreeNode, opts: ApplyOptions): void {
  let names: Buffer[];
  try {
    names = llistxattr(path);
  } catch {
    return;
  }
  const keep = new Set((node.xattrs ?? []).map((x) => x.name));
  for (const raw of names) {
    const name = raw.toString('utf8');
    if (keep.has(name)) continue;
    try {
      lremovexattr(path, raw);
    } catch (e) {
      opts.warn(`${path.toString('utf8')}: cannot remove extended attribute ${name}: ${(e as Error).message}`);
    }
  }
}

export interface ApplyOptions {
  /** Restore numeric ownership (only root can). */
  owner: boolean;
  /** Called for metadata that could not be applied (e.g. xattrs on a file system without them). */
  warn: (message: string) => void;
}

/** Seconds and nanoseconds of a time in ns since the epoch (as utimensat and stat take them). */
export function splitNs(ns: bigint): [bigint, number] {
  return [ns / 1_000_000_000n, Number(ns % 1_000_000_000n)];
}

/** Applies ownership, mode, xattrs and times (in that order: chown clears setuid bits, times last). */
export function applyMetadata(path: Buffer, node: TreeNode, opts: ApplyOptions): void {
  if (opts.owner) lchownSync(path, node.uid, node.gid);
  if (node.type !== 'symlink') chmodSync(path, node.mode);
  removeExtraXattrs(path, node, opts);
  applyXattrsAndTimes(path, node, opts);
}

/**
 * applyMetadata for a regular file open as `fd` (at `path`) that the restore created (under its own
 * name, or as a temporary file renamed into place), for restores of many small files: ownership and
 * mode are changed only where they differ (each change is a journalled inode update; fstat is not),
 * so a file created with its final owner and permission bits needs neither. Its xattrs are not
 * listed first: a new inode has none to remove but what the file system gave it (an inherited
 * default ACL, a security label), which stay, as with tar or cp (a listxattr per file of a 63k-file
 * restore, in the workers).
 */
export function applyFileMetadata(fd: number, path: Buffer, node: TreeNode, opts: ApplyOptions): void {
  const st = fstatSync(fd);
  let chowned = false;
  if (opts.owner && (st.uid !== node.uid || st.gid !== node.gid)) {
    fchownSync(fd, node.uid, node.gid);
    chowned = true;
  }
  // chown may have cleared setuid/setgid bits: the mode is set again after it.
  if (chowned || (st.mode & 0o7777) !== node.mode) fchmodSync(fd, node.mode);
  applyXattrsAndTimes(path, node, opts);
}

function applyXattrsAndTimes(path: Buffer, node: TreeNode, opts: ApplyOptions): void {
  for (const x of node.xattrs ?? []) {
    try {
      lsetxattr(path, x.name, x.value);
    } catch (e) {
      opts.warn(`${path.toString('utf8')}: cannot restore extended attribute ${x.name}: ${(e as Error).message}`);
    }
  }
  const [ms, mns] = splitNs(node.mtimeNs);
  // atime is not stored (format-spec ch. 7.1); mtime stands in for it.
  utimensat(path, ms, mns, ms, mns, false);
}

// O_NONBLOCK: a file replaced by a FIFO since it was listed must not block open() until a writer
// comes; O_NOFOLLOW: one replaced by a symlink is not followed (ELOOP). Regular files read the same.
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const READ_FLAGS = OPEN_FLAGS | (constants.O_NOATIME ?? 0);

/** Why a file listed as regular was not read: it was replaced since (native/src/readfiles.c says the same). */
export const NOT_REGULAR = 'is no longer a regular file (replaced since it was listed): not read';

/**
 * Opens a file listed as regular for a backup read, with O_NOATIME where the process may use it
 * (file owner or root) so backups do not touch access times. Throws when it is no longer a
 * regular file.
 */
export function openForBackup(path: Buffer): number {
  let fd: number;
  try {
    fd = openRegular(path, READ_FLAGS);
  } catch (e) {
    // O_NOATIME is refused (EPERM) for files the process does not own.
    if ((e as { code?: string }).code !== 'EPERM' || READ_FLAGS === OPEN_FLAGS) throw e;
    fd = openRegular(path, OPEN_FLAGS);
  }
  if (!fstatSync(fd).isFile()) {
    closeSync(fd);
    throw new Error(NOT_REGULAR);
  }
  return fd;
}

function openRegular(path: Buffer, flags: number): number {
  try {
    return openSync(path, flags);
  } catch (e) {
    if ((e as { code?: string }).code === 'ELOOP') throw new Error(NOT_REGULAR);
    throw e;
  }
}

export function joinPath(dir: Buffer, name: Buffer): Buffer {
  if (dir.length === 1 && dir[0] === 0x2f) return Buffer.concat([dir, name]);
  return Buffer.concat([dir, Buffer.from('/'), name]);
}

export function pathText(p: Buffer): string {
  return p.toString('utf8');
}
