// What changed between two snapshots (`snap diff`), from their trees alone (meta packs): equal
// subtree IDs are equal directories, so only the directories that differ are read.
import type { Repository } from '../repository/repository.js';
import { compareNames, type TreeNode } from '../model/tree.js';
import { sameBytes, sameList, sameXattrs } from '../format/tree.js';
import { joinPath } from '../fs/metadata.js';
import { throwIfAborted } from '../backend/common.js';

/**
 * As restic prints them: + added, - removed, T type changed, M contents changed (a file's data, a
 * symlink's target, a device's numbers), U metadata changed (mode, owner, times, xattrs); M and U
 * may come together. ? is restic's sign of bitrot: a file's data changed while its size, mtime and
 * every other attribute stayed the same, which no ordinary write does.
 */
export type Modifier = '+' | '-' | 'T' | 'M' | 'U' | 'MU' | '?';

export interface Change {
  path: Buffer;
  modifier: Modifier;
  /** The entry in the first snapshot (absent for +). */
  before?: TreeNode;
  /** The entry in the second snapshot (absent for -). */
  after?: TreeNode;
}

/** Entries of either snapshot that hold the same thing the same way are not reported. */
function modifier(a: TreeNode, b: TreeNode): Modifier | undefined {
  if (a.type !== b.type) return 'T';
  const contents = !sameList(a.content, b.content) || !sameBytes(a.target, b.target) || a.rdev !== b.rdev;
  // ctime, inode and device change whenever a file is copied or restored: not a change of the file.
  const metadata = a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid || a.user !== b.user || a.group !== b.group || a.mtimeNs !== b.mtimeNs || !sameXattrs(a.xattrs ?? [], b.xattrs ?? []);
  if (contents && !metadata && a.type === 'file' && a.size === b.size) return '?';
  return contents ? (metadata ? 'MU' : 'M') : metadata ? 'U' : undefined;
}

/**
 * The changes from tree `before` to tree `after` (directories at `path`), depth-first in name
 * order, parents before what is under them. An added or removed directory is reported with
 * everything under it.
 */
export async function* diffTrees(repo: Repository, before: string, after: string, path: Buffer, signal?: AbortSignal): AsyncGenerator<Change> {
  if (before === after) return;
  throwIfAborted(signal);
  const [a, b] = await Promise.all([repo.loadTree(before), repo.loadTree(after)]);
  let i = 0;
  let j = 0;
  while (i < a.nodes.length || j < b.nodes.length) {
    const x = a.nodes[i];
    const y = b.nodes[j];
    const order = x === undefined ? 1 : y === undefined ? -1 : compareNames(x, y);
    if (order < 0) {
      yield* whole(repo, x!, joinPath(path, x!.name), '-', signal);
      i++;
    } else if (order > 0) {
      yield* whole(repo, y!, joinPath(path, y!.name), '+', signal);
      j++;
    } else {
      const p = joinPath(path, x!.name);
      const m = modifier(x!, y!);
      if (m === 'T') {
        // What a replaced directory held is gone, and what a new one holds has come.
        yield { path: p, modifier: 'T', before: x!, after: y! };
        yield* below(repo, x!, p, '-', signal);
        yield* below(repo, y!, p, '+', signal);
      } else {
        if (m) yield { path: p, modifier: m, before: x!, after: y! };
        if (x!.type === 'dir' && x!.subtree && y!.subtree) yield* diffTrees(repo, x!.subtree, y!.subtree, p, signal);
      }
      i++;
      j++;
    }
  }
}

/** An entry added or removed, and everything under it. */
async function* whole(repo: Repository, node: TreeNode, path: Buffer, modifier: '+' | '-', signal?: AbortSignal): AsyncGenerator<Change> {
  yield modifier === '+' ? { path, modifier, after: node } : { path, modifier, before: node };
  yield* below(repo, node, path, modifier, signal);
}

/** Everything under a directory added or removed (nothing for other entries). */
async function* below(repo: Repository, node: TreeNode, path: Buffer, modifier: '+' | '-', signal?: AbortSignal): AsyncGenerator<Change> {
  if (node.type !== 'dir' || !node.subtree) return;
  throwIfAborted(signal);
  for (const n of (await repo.loadTree(node.subtree)).nodes) yield* whole(repo, n, joinPath(path, n.name), modifier, signal);
}
