// Walking snapshot trees (metadata packs only).
import type { Repository } from '../repository/repository.js';
import type { TreeNode } from '../model/tree.js';
import { NoSuchItemError } from '../errors.js';
import { joinPath } from '../fs/metadata.js';

export interface WalkEntry {
  /** Absolute path in the snapshot, as raw bytes ("/etc/hosts"). */
  path: Buffer;
  node: TreeNode;
  depth: number;
}

/** Depth-first, parents before children, children in name order. */
export async function* walkTree(repo: Repository, treeId: string, dir: Buffer = Buffer.from('/'), depth = 0): AsyncGenerator<WalkEntry> {
  const tree = await repo.loadTree(treeId);
  for (const node of tree.nodes) {
    const path = joinPath(dir, node.name);
    yield { path, node, depth };
    if (node.type === 'dir' && node.subtree) yield* walkTree(repo, node.subtree, path, depth + 1);
  }
}

/**
 * Finds the node at an absolute path in a snapshot's root tree. "/" gives a synthetic directory node
 * for the root. Throws NoSuchItemError when the path is not in the snapshot.
 */
export async function lookupPath(repo: Repository, rootTree: string, path: string): Promise<{ path: Buffer; node: TreeNode }> {
  const parts = path.split('/').filter((p) => p.length > 0 && p !== '.');
  let node: TreeNode = {
    name: Buffer.from('/'), type: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeNs: 0n, ctimeNs: 0n, inode: 0n, device: 0n, subtree: rootTree,
  };
  let at: Buffer = Buffer.from('/');
  for (const part of parts) {
    if (node.type !== 'dir' || !node.subtree) throw new NoSuchItemError(`${path}: ${at.toString('utf8')} is not a directory in this snapshot`);
    const name = Buffer.from(part, 'utf8');
    const tree = await repo.loadTree(node.subtree);
    const next = tree.nodes.find((n) => n.name.equals(name));
    if (!next) throw new NoSuchItemError(`${path}: not found in this snapshot`);
    node = next;
    at = joinPath(at, name);
  }
  return { path: at, node };
}
