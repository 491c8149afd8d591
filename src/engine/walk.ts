// Walking snapshot trees (metadata packs only).
import type { Repository } from '../repository/repository.js';
import type { IndexTotals } from '../repository/index.js';
import type { BlobType } from '../model/ids.js';
import type { TreeNode } from '../model/tree.js';
import { NoSuchItemError } from '../errors.js';
import { joinPath } from '../fs/metadata.js';
import { throwIfAborted } from '../backend/common.js';
import { mapLimit } from '../util/concurrency.js';

/** Trees read at once (a range request each on S3). */
const TREE_READS = 16;

export interface WalkEntry {
  /** Absolute path in the snapshot, as raw bytes ("/etc/hosts"). */
  path: Buffer;
  node: TreeNode;
  depth: number;
}

/**
 * Depth-first, parents before children, children in name order. One generator with a stack of
 * directories: a generator per directory, nested with yield*, passed every entry up through each
 * level, a promise per level (a quarter of a 63k-file restore's main-thread allocations).
 */
export async function* walkTree(repo: Repository, treeId: string, dir: Buffer = Buffer.from('/'), depth = 0): AsyncGenerator<WalkEntry> {
  const stack = [{ nodes: (await repo.loadTree(treeId)).nodes, next: 0, dir, depth }];
  while (stack.length > 0) {
    const d = stack[stack.length - 1]!;
    if (d.next === d.nodes.length) {
      stack.pop();
      continue;
    }
    const node = d.nodes[d.next++]!;
    const path = joinPath(d.dir, node.name);
    yield { path, node, depth: d.depth };
    if (node.type === 'dir' && node.subtree) stack.push({ nodes: (await repo.loadTree(node.subtree)).nodes, next: 0, dir: path, depth: d.depth + 1 });
  }
}

/** A synthetic directory node for a snapshot's root ("/"), whose tree is `rootTree`. */
function rootNode(rootTree: string): TreeNode {
  return { name: Buffer.from('/'), type: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeNs: 0n, ctimeNs: 0n, inode: 0n, device: 0n, subtree: rootTree };
}

/**
 * Finds the node at an absolute path in a snapshot's root tree. "/" gives a synthetic directory node
 * for the root. Throws NoSuchItemError when the path is not in the snapshot.
 */
export async function lookupPath(repo: Repository, rootTree: string, path: string): Promise<{ path: Buffer; node: TreeNode }> {
  const parts = path.split('/').filter((p) => p.length > 0 && p !== '.');
  let node = rootNode(rootTree);
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

/**
 * Calls `visit` once for each distinct blob that the trees `roots` reach, trees included, and adds
 * it to `seen`; what `seen` holds already is not visited again (pass one set to several calls to
 * share it). Trees are read TREE_READS at a time; `checkAbort` runs before each.
 */
export async function visitReached(repo: Repository, roots: readonly string[], visit: (id: string, type: BlobType) => void, seen = new Set<string>(), checkAbort: () => void = () => undefined): Promise<void> {
  const first = (id: string, type: BlobType): boolean => {
    if (seen.has(id)) return false;
    seen.add(id);
    visit(id, type);
    return true;
  };
  let level = roots.filter((id) => first(id, 'tree'));
  while (level.length > 0) {
    const next: string[] = [];
    await mapLimit(level, TREE_READS, async (id) => {
      checkAbort();
      for (const n of (await repo.loadTree(id)).nodes) {
        for (const b of n.content ?? []) first(b, 'data');
        if (n.type === 'dir' && n.subtree && first(n.subtree, 'tree')) next.push(n.subtree);
      }
    });
    level = next;
  }
}

/**
 * The distinct blobs that the trees `roots` reach, trees included, counted with their sizes as the
 * index has them: what a set of snapshots holds after deduplication (`snap stats SNAPSHOT...`).
 * Each tree is read once, however many snapshots share it.
 */
export async function reachedTotals(repo: Repository, roots: readonly string[], signal?: AbortSignal): Promise<Pick<IndexTotals, 'data' | 'tree'>> {
  const totals: Pick<IndexTotals, 'data' | 'tree'> = { data: { count: 0, rawBytes: 0, storedBytes: 0 }, tree: { count: 0, rawBytes: 0, storedBytes: 0 } };
  const count = (id: string, type: BlobType): void => {
    const t = totals[type];
    t.count++;
    const loc = repo.index.get(id);
    if (loc) {
      t.rawBytes += loc.rawLength;
      t.storedBytes += loc.length;
    }
  };
  await visitReached(repo, roots, count, new Set(), () => throwIfAborted(signal));
  return totals;
}

/** An entry of a snapshot that uses what was asked about (`findUses`). */
export interface ObjectUse {
  /** Absolute path in the snapshot, as raw bytes. */
  path: Buffer;
  node: TreeNode;
  /** What it uses of what was asked about, each once: blob IDs, or the IDs of their packs. */
  uses: string[];
}

/**
 * The entries of the tree `root` (a snapshot's) that use what `match` picks out, in walk order:
 * a file by its content blobs, a directory by its own tree. `match` maps a blob ID to what was
 * asked about (the blob itself, or its pack), else undefined. A tree that matches is not read (it
 * may be what is lost); neither are trees in `clean`, which gets every tree found to use nothing:
 * pass one set to the calls for several snapshots, and what they share is read once. Trees are
 * read TREE_READS at a time; `checkAbort` runs before each.
 */
export async function findUses(repo: Repository, root: string, match: (id: string) => string | undefined, clean: Set<string>, checkAbort: () => void = () => undefined): Promise<ObjectUse[]> {
  const rootUse = match(root);
  if (rootUse !== undefined) {
    return [{ path: Buffer.from('/'), node: rootNode(root), uses: [rootUse] }];
  }
  // Each tree to read with its path, the trees above it (marked as used when it is), and its
  // position in walk order (the node indices from the root).
  interface Visit { id: string; dir: Buffer; above: string[]; order: number[] }
  const found: (ObjectUse & { order: number[] })[] = [];
  const used = new Set<string>();
  const read = new Set<string>();
  let level: Visit[] = clean.has(root) ? [] : [{ id: root, dir: Buffer.from('/'), above: [], order: [] }];
  while (level.length > 0) {
    const next: Visit[] = [];
    await mapLimit(level, TREE_READS, async (v) => {
      checkAbort();
      const nodes = (await repo.loadTree(v.id)).nodes;
      read.add(v.id);
      const chain = [...v.above, v.id];
      for (const [i, node] of nodes.entries()) {
        const path = joinPath(v.dir, node.name);
        const ids = node.type === 'dir' ? (node.subtree ? [node.subtree] : []) : (node.content ?? []);
        const uses = new Set<string>();
        for (const id of ids) {
          const u = match(id);
          if (u !== undefined) uses.add(u);
        }
        if (uses.size > 0) {
          found.push({ path, node, uses: [...uses], order: [...v.order, i] });
          for (const t of chain) used.add(t);
        } else if (node.type === 'dir' && node.subtree && !clean.has(node.subtree)) {
          next.push({ id: node.subtree, dir: path, above: chain, order: [...v.order, i] });
        }
      }
    });
    level = next;
  }
  for (const id of read) if (!used.has(id)) clean.add(id);
  const before = (a: number[], b: number[]) => {
    for (let k = 0; k < Math.min(a.length, b.length); k++) if (a[k] !== b[k]) return a[k]! - b[k]!;
    return a.length - b.length;
  };
  return found.sort((a, b) => before(a.order, b.order)).map(({ path, node, uses }) => ({ path, node, uses }));
}
