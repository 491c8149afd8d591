// In-memory form of tree blobs (format-spec ch. 7). Names and link targets are raw bytes because
// Linux file names are bytes, not text.

export const NODE_TYPES = ['file', 'dir', 'symlink', 'fifo', 'socket', 'chardev', 'blockdev'] as const;
export type NodeType = (typeof NODE_TYPES)[number];

export interface Xattr {
  name: string;
  value: Buffer;
}

export interface TreeNode {
  name: Buffer;
  type: NodeType;
  /** Permission bits incl. setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  user?: string;
  group?: string;
  mtimeNs: bigint;
  ctimeNs: bigint;
  inode: bigint;
  device: bigint;
  /** Files only. */
  size?: number;
  nlink?: number;
  content?: string[];
  /** Directories only. */
  subtree?: string;
  /** Symlinks only. */
  target?: Buffer;
  /** Character and block devices only. */
  rdev?: bigint;
  xattrs?: Xattr[];
}

export interface Tree {
  nodes: TreeNode[];
}

export function compareNames(a: TreeNode, b: TreeNode): number {
  return Buffer.compare(a.name, b.name);
}

// A leading U+FEFF is part of a name, not a byte-order mark to drop.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Name or link-target bytes as text when they are valid UTF-8, else null. */
export function utf8Text(b: Uint8Array): string | null {
  try {
    return utf8.decode(b);
  } catch {
    return null;
  }
}
