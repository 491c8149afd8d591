// Removes paths from existing snapshots (`snap rewrite`): a file backed up by mistake (a secret, a
// huge dump) leaves every snapshot that holds it. Each such snapshot gets new trees for the
// directories on the way to what was removed (the others keep their IDs) and is saved as a new
// snapshot; with `forget`, the old one is then removed, and `prune` frees the data only it used.
// Write order as a backup's (ch. 10): tree packs, their index, the snapshot, then the removal.
import { removeIfPresent } from '../backend/common.js';
import { InterruptedError, UsageError } from '../errors.js';
import { encodeTree } from '../format/tree.js';
import { PathMatcher } from '../fs/glob.js';
import { joinPath, pathText } from '../fs/metadata.js';
import type { Snapshot, SnapshotEntry } from '../model/snapshot.js';
import type { TreeNode } from '../model/tree.js';
import type { Repository } from '../repository/repository.js';
import { BlobWriter } from '../repository/writer.js';

export interface RewriteOptions {
  excludes?: string[];
  /** Like excludes, letters matching either case. */
  iexcludes?: string[];
  /** Remove each rewritten snapshot's original once the new one is saved. */
  forget?: boolean;
  dryRun?: boolean;
  signal?: AbortSignal;
  /** Each entry left out, with the first snapshot it is left out of (once: see the memo). */
  onExcluded?: (snapshotId: string, path: string, node: TreeNode) => void;
}

export interface Rewritten {
  from: string;
  /** The new snapshot; undefined in a dry run. */
  to?: string;
  /** Entries left out (a directory counts once, with everything below it). */
  excluded: number;
  forgotten: boolean;
}

export async function rewrite(repo: Repository, entries: readonly SnapshotEntry[], opts: RewriteOptions): Promise<Rewritten[]> {
  const matcher = new PathMatcher(opts.excludes ?? [], opts.iexcludes);
  if (matcher.empty) throw new UsageError('nothing to do: give --exclude, --iexclude or a pattern file');
  const writer = new BlobWriter(repo, { workers: false, dryRun: opts.dryRun === true });
  // A tree's new ID depends on where it is (patterns match paths): each tree is rewritten once
  // per path, for all the snapshots that share it (the unchanged directories of one host).
  const memo = new Map<string, { id: string; excluded: number }>();
  const visit = async (snapshotId: string, treeId: string, path: Buffer): Promise<{ id: string; excluded: number }> => {
    if (opts.signal?.aborted) throw new InterruptedError('rewrite interrupted; no snapshot was changed');
    const key = `${treeId}\0${path.toString('latin1')}`;
    const known = memo.get(key);
    if (known) return known;
    const tree = await repo.loadTree(treeId);
    const nodes: TreeNode[] = [];
    let excluded = 0;
    for (const node of tree.nodes) {
      const child = joinPath(path, node.name);
      const text = pathText(child);
      if (matcher.matches(text)) {
        excluded++;
        opts.onExcluded?.(snapshotId, text, node);
        continue;
      }
      if (node.type === 'dir' && node.subtree !== undefined) {
        const sub = await visit(snapshotId, node.subtree, child);
        excluded += sub.excluded;
        if (sub.id !== node.subtree) {
          nodes.push({ ...node, subtree: sub.id });
          continue;
        }
      }
      nodes.push(node);
    }
    const out = { id: excluded > 0 ? (await writer.save('tree', encodeTree({ nodes }))).id : treeId, excluded };
    memo.set(key, out);
    return out;
  };
  const changed: { entry: SnapshotEntry; tree: string; excluded: number }[] = [];
  try {
    for (const entry of entries) {
      const { id: tree, excluded } = await visit(entry.id, entry.snapshot.tree, Buffer.from('/'));
      if (excluded > 0) changed.push({ entry, tree, excluded });
    }
    // All new trees in a few packs and one index, before any snapshot refers to them.
    await writer.flush();
  } finally {
    await writer.close();
  }
  if (opts.dryRun) return changed.map((c) => ({ from: c.entry.id, excluded: c.excluded, forgotten: false }));
  const done: Rewritten[] = [];
  for (const { entry: { id, snapshot }, tree, excluded } of changed) {
    const doc: Snapshot = { ...snapshot, tree, original: snapshot.original ?? id };
    const to = await repo.saveMetadata('snapshot', doc);
    if (opts.forget) await removeIfPresent(repo.backend, { type: 'snapshot', name: id });
    done.push({ from: id, to, excluded, forgotten: opts.forget === true });
  }
  return done;
}
