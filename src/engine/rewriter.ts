// Saves existing snapshots anew with some of their nodes changed or left out:
// - `snap rewrite` leaves out paths: a file backed up by mistake (a secret, a huge dump) leaves
//   every snapshot that holds it;
// - `snap repair snapshots` leaves out what the storage lost: file contents whose blobs are gone
//   from the index, directories whose trees cannot be read.
// Each changed snapshot gets new trees for the directories on the way to what changed (the others
// keep their IDs) and is saved as a new snapshot naming its `original`; with `forget`, the old one
// is then removed, and `prune` frees the data only it used. Write order as a backup's (ch. 10):
// tree packs, their index, the snapshots, then the removals.
import { removeIfPresent } from '../backend/common.js';
import { IntegrityError, InterruptedError, NotFoundError, UsageError } from '../errors.js';
import { encodeTree } from '../format/tree.js';
import { PathMatcher } from '../fs/glob.js';
import { joinPath, pathText } from '../fs/metadata.js';
import type { Snapshot, SnapshotEntry } from '../model/snapshot.js';
import type { Tree, TreeNode } from '../model/tree.js';
import type { Repository } from '../repository/repository.js';
import { BlobWriter } from '../repository/writer.js';

interface SnapshotRewriteOptions {
  /** Remove each rewritten snapshot's original once the new one is saved. */
  forget?: boolean;
  dryRun?: boolean;
  signal?: AbortSignal;
}

export interface RewriteOptions extends SnapshotRewriteOptions {
  excludes?: string[];
  /** Like excludes, letters matching either case. */
  iexcludes?: string[];
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

/**
 * What a rewrite does to one node of a tree (at `path`): the node to store in its place (the same
 * object when it stays as it is), or null to leave it out. A directory that is kept is then
 * rewritten below.
 */
type EditNode = (snapshotId: string, path: Buffer, node: TreeNode) => TreeNode | null;

/** A subtree that cannot be read: given this, it is stored as an empty directory instead of failing. */
type OnUnreadable = (snapshotId: string, path: Buffer, error: IntegrityError | NotFoundError) => void;

/** A tree as rewritten: its ID, and what changed and what it holds (regular files and their bytes). */
interface EditedTree {
  id: string;
  /** Nodes changed or left out (a directory left out counts once). */
  changes: number;
  files: number;
  bytes: number;
}

interface Edited {
  entry: SnapshotEntry;
  /** The new root tree; undefined when the root itself cannot be read. */
  tree?: EditedTree;
}

/** A tree lost or damaged in storage (a transient backend error is not: it stops the command). */
const unreadable = (e: unknown): e is IntegrityError | NotFoundError => e instanceof IntegrityError || e instanceof NotFoundError;

/**
 * Rewrites the trees of `entries` with `edit` (unreadable subtrees stored empty when `onUnreadable`
 * is given); returns the snapshots that changed or could not be read. The new trees are stored and
 * indexed (counted only, in a dry run).
 */
async function editTrees(repo: Repository, entries: readonly SnapshotEntry[], edit: EditNode, onUnreadable: OnUnreadable | undefined, opts: SnapshotRewriteOptions): Promise<Edited[]> {
  const writer = new BlobWriter(repo, { workers: false, dryRun: opts.dryRun === true });
  let emptyTree: Promise<string> | undefined;
  // A tree's new ID may depend on where it is (patterns match paths): each tree is rewritten once
  // per path, for all the snapshots that share it (the unchanged directories of one host).
  const memo = new Map<string, EditedTree>();
  const visit = async (snapshotId: string, treeId: string, path: Buffer, tree: Tree): Promise<EditedTree> => {
    if (opts.signal?.aborted) throw new InterruptedError('interrupted; no snapshot was changed');
    const key = `${treeId}\0${path.toString('latin1')}`;
    const known = memo.get(key);
    if (known) return known;
    const nodes: TreeNode[] = [];
    let changes = 0;
    let files = 0;
    let bytes = 0;
    for (const node of tree.nodes) {
      const child = joinPath(path, node.name);
      let out = edit(snapshotId, child, node);
      if (out !== node) changes++;
      if (out === null) continue;
      if (out.type === 'file') {
        files++;
        bytes += out.size ?? 0;
      } else if (out.type === 'dir' && out.subtree !== undefined) {
        const sub = await loadOrReplace(snapshotId, out.subtree, child);
        changes += sub.changes;
        files += sub.files;
        bytes += sub.bytes;
        if (sub.id !== out.subtree) out = { ...out, subtree: sub.id };
      }
      nodes.push(out);
    }
    const out = { id: changes > 0 ? (await writer.save('tree', encodeTree({ nodes }))).id : treeId, changes, files, bytes };
    memo.set(key, out);
    return out;
  };
  const loadOrReplace = async (snapshotId: string, treeId: string, path: Buffer): Promise<EditedTree> => {
    let tree: Tree;
    try {
      tree = await repo.loadTree(treeId);
    } catch (e) {
      if (!onUnreadable || !unreadable(e)) throw e;
      onUnreadable(snapshotId, path, e);
      emptyTree ??= writer.save('tree', encodeTree({ nodes: [] })).then((r) => r.id);
      return { id: await emptyTree, changes: 1, files: 0, bytes: 0 };
    }
    return visit(snapshotId, treeId, path, tree);
  };
  const edited: Edited[] = [];
  try {
    for (const entry of entries) {
      let root: Tree;
      try {
        root = await repo.loadTree(entry.snapshot.tree);
      } catch (e) {
        if (!onUnreadable || !unreadable(e)) throw e;
        edited.push({ entry });
        continue;
      }
      const tree = await visit(entry.id, entry.snapshot.tree, Buffer.from('/'), root);
      if (tree.changes > 0) edited.push({ entry, tree });
    }
    // All new trees in a few packs and one index, before any snapshot refers to them.
    await writer.flush();
  } finally {
    await writer.close();
  }
  return edited;
}

/**
 * Saves an edited snapshot anew with its new root tree and, with `forget`, removes the original.
 * Its summary keeps the statistics of the backup, but counts the files the snapshot now holds (as
 * restic's rewrite does): `snap snapshots` shows their size.
 */
async function saveEdited(repo: Repository, { id, snapshot }: SnapshotEntry, tree: EditedTree, forget: boolean): Promise<string> {
  const doc: Snapshot = { ...snapshot, tree: tree.id, original: snapshot.original ?? id };
  if (snapshot.summary) doc.summary = { ...snapshot.summary, total_files_processed: tree.files, total_bytes_processed: tree.bytes };
  const to = await repo.saveMetadata('snapshot', doc);
  if (forget) await removeIfPresent(repo.backend, { type: 'snapshot', name: id });
  return to;
}

export async function rewrite(repo: Repository, entries: readonly SnapshotEntry[], opts: RewriteOptions): Promise<Rewritten[]> {
  const matcher = new PathMatcher(opts.excludes ?? [], opts.iexcludes);
  if (matcher.empty) throw new UsageError('nothing to do: give --exclude, --iexclude or a pattern file');
  const changed = await editTrees(
    repo,
    entries,
    (snapshotId, path, node) => {
      const text = pathText(path);
      if (!matcher.matches(text)) return node;
      opts.onExcluded?.(snapshotId, text, node);
      return null;
    },
    undefined,
    opts,
  );
  if (opts.dryRun) return changed.map((c) => ({ from: c.entry.id, excluded: c.tree!.changes, forgotten: false }));
  const done: Rewritten[] = [];
  for (const c of changed) {
    const to = await saveEdited(repo, c.entry, c.tree!, opts.forget === true);
    done.push({ from: c.entry.id, to, excluded: c.tree!.changes, forgotten: opts.forget === true });
  }
  return done;
}

export interface RepairSnapshotsOptions extends SnapshotRewriteOptions {
  /** A file whose content lost blobs (`kept` of `blobs` remain), in the first snapshot it is found in. */
  onFile?: (snapshotId: string, path: string, kept: number, blobs: number) => void;
  /** A directory whose tree cannot be read, stored empty. */
  onDirectory?: (snapshotId: string, path: string, reason: string) => void;
}

export interface Repaired {
  from: string;
  /** The repaired snapshot; undefined in a dry run, and when its root tree cannot be read. */
  to?: string;
  /** Files and directories repaired. */
  repaired: number;
  /** True when the snapshot's root tree cannot be read: there is nothing to repair it from. */
  unreadable: boolean;
  forgotten: boolean;
}

/**
 * `snap repair snapshots`, for a repository that lost data (a pack gone, blobs damaged): each
 * snapshot that uses what is lost is saved anew without it, so that the rest restores and `check`
 * passes. A file keeps the blobs that remain and its size becomes theirs; a directory whose tree
 * cannot be read becomes an empty directory. It relies on the index to tell what is lost: run
 * `snap repair index` first. Data is lost by this; a backup of files that still exist is the
 * better cure (it stores again the blobs the index no longer has).
 */
export async function repairSnapshots(repo: Repository, entries: readonly SnapshotEntry[], opts: RepairSnapshotsOptions = {}): Promise<Repaired[]> {
  // Blobs of a pack that is gone but still indexed would look present, and stay in the snapshots.
  const stored = new Set((await repo.listPacks()).map((f) => f.name));
  const gone = repo.index.packIds().filter((id) => !stored.has(id)).length;
  if (gone > 0) throw new UsageError(`the index names ${gone} packs that are not stored`, { hint: 'run `snap repair index` first: it drops them from the index, and this command then sees what they held as lost' });
  const changed = await editTrees(
    repo,
    entries,
    (snapshotId, path, node) => {
      if (node.type !== 'file') return node;
      const blobs = node.content ?? [];
      let size = 0;
      const kept = blobs.filter((id) => {
        const loc = repo.index.get(id);
        if (loc?.type !== 'data') return false;
        size += loc.rawLength;
        return true;
      });
      if (kept.length === blobs.length && size === node.size) return node;
      opts.onFile?.(snapshotId, pathText(path), kept.length, blobs.length);
      return { ...node, content: kept, size };
    },
    (snapshotId, path, error) => opts.onDirectory?.(snapshotId, pathText(path), error.message),
    opts,
  );
  const forget = opts.forget === true && !opts.dryRun;
  const done: Repaired[] = [];
  for (const c of changed) {
    if (c.tree === undefined) {
      // Nothing of it can be restored: with --forget it goes, else it stays for the user to decide.
      if (forget) await removeIfPresent(repo.backend, { type: 'snapshot', name: c.entry.id });
      done.push({ from: c.entry.id, repaired: 0, unreadable: true, forgotten: forget });
    } else if (opts.dryRun) done.push({ from: c.entry.id, repaired: c.tree.changes, unreadable: false, forgotten: false });
    else done.push({ from: c.entry.id, to: await saveEdited(repo, c.entry, c.tree, forget), repaired: c.tree.changes, unreadable: false, forgotten: forget });
  }
  return done;
}
