// Copies snapshots into another repository (`snap copy`, as restic's): an off-site copy of a local
// repository in S3, or a move to a new bucket. The two repositories have different keys, so a blob
// has a different ID in each (IDs are keyed, ch. 5): every blob is opened with the source's keys and
// stored under the destination's, deduplicated against what the destination holds as a backup
// would be, and every tree is written anew with the new IDs. Chunks are not cut again: a copied
// file keeps the source's chunk boundaries.
//
// Write order as a backup's (ch. 10): a snapshot's packs, then their index, then the snapshot; an
// interrupted copy leaves the snapshots copied so far, and the next run skips them.
import { InterruptedError } from '../errors.js';
import { encodeTree } from '../format/tree.js';
import type { Snapshot, SnapshotEntry } from '../model/snapshot.js';
import type { TreeNode } from '../model/tree.js';
import type { Repository } from '../repository/repository.js';
import { BlobWriter } from '../repository/writer.js';
import { mapLimit } from '../util/concurrency.js';

export interface CopyOptions {
  /** Only report what would be copied. */
  dryRun?: boolean;
  signal?: AbortSignal;
  /** After each snapshot, copied or skipped. */
  onSnapshot?: (c: Copied) => void;
  onProgress?: (p: CopyProgress) => void;
}

export interface CopyProgress {
  snapshots: number;
  /** Data blobs read from the source so far, and their bytes. */
  blobs: number;
  bytes: number;
}

export interface Copied {
  from: string;
  /** The snapshot in the destination: the new one, or the copy found there. Undefined in a dry run. */
  to?: string;
  /** Already in the destination. */
  skipped: boolean;
  /** Bytes the copy added to the destination, before packing. */
  added: number;
}

/** Blobs of one file read from the source at once. */
const BLOB_READS = 8;

/**
 * True when `copy` is a copy of `s` (stored under `id`): the same time, host, user, paths, tags and
 * excludes, and descended from the same first snapshot (`original`). Trees cannot be compared
 * (their IDs differ between the repositories), so a snapshot rewritten in the source after its
 * original was copied is taken for copied.
 */
function isCopyOf(copy: Snapshot, s: Snapshot, id: string): boolean {
  const same = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
  return (
    copy.original === (s.original ?? id) && copy.time === s.time && copy.hostname === s.hostname && copy.username === s.username &&
    same(copy.paths, s.paths) && same([...copy.tags].sort(), [...s.tags].sort()) && same(copy.excludes, s.excludes)
  );
}

export async function copySnapshots(src: Repository, dst: Repository, entries: readonly SnapshotEntry[], opts: CopyOptions = {}): Promise<Copied[]> {
  const existing = await dst.listSnapshots();
  const progress: CopyProgress = { snapshots: 0, blobs: 0, bytes: 0 };
  const writer = new BlobWriter(dst, { dryRun: opts.dryRun === true });
  // Source ID to destination ID, for every blob and tree of this run: snapshots of one host share
  // most of them.
  const blobs = new Map<string, Promise<string>>();
  const trees = new Map<string, Promise<string>>();
  const checkAbort = () => {
    if (opts.signal?.aborted) throw new InterruptedError('copy interrupted; the snapshots copied so far are kept, and the next copy skips them');
  };

  const copyBlob = (id: string): Promise<string> => {
    let p = blobs.get(id);
    if (!p) {
      p = (async () => {
        checkAbort();
        const data = await src.loadBlob(id, 'data');
        progress.blobs++;
        progress.bytes += data.length;
        opts.onProgress?.({ ...progress });
        return (await writer.saveData(data)).id;
      })();
      blobs.set(id, p);
    }
    return p;
  };

  const copyTree = (id: string): Promise<string> => {
    let p = trees.get(id);
    if (!p) {
      p = (async () => {
        checkAbort();
        const nodes: TreeNode[] = [];
        for (const node of (await src.loadTree(id)).nodes) {
          if (node.type === 'dir' && node.subtree !== undefined) nodes.push({ ...node, subtree: await copyTree(node.subtree) });
          else if (node.content && node.content.length > 0) {
            const content: string[] = new Array<string>(node.content.length);
            await mapLimit(node.content.keys(), BLOB_READS, async (i) => {
              content[i] = await copyBlob(node.content![i]!);
            });
            nodes.push({ ...node, content });
          } else nodes.push(node);
        }
        return (await writer.save('tree', encodeTree({ nodes }))).id;
      })();
      trees.set(id, p);
    }
    return p;
  };

  const done: Copied[] = [];
  try {
    for (const { id, snapshot } of entries) {
      const found = existing.find((e) => isCopyOf(e.snapshot, snapshot, id));
      let c: Copied;
      if (found) c = { from: id, to: found.id, skipped: true, added: 0 };
      else if (opts.dryRun) c = { from: id, skipped: false, added: 0 };
      else {
        const before = writer.stats.dataAdded;
        const tree = await copyTree(snapshot.tree);
        await writer.flush();
        // The source's parent is not in the destination (or not under that ID).
        const { parent: _parent, ...rest } = snapshot;
        const doc: Snapshot = { ...rest, tree, original: snapshot.original ?? id };
        const to = await dst.saveMetadata('snapshot', doc);
        existing.push({ id: to, snapshot: doc });
        c = { from: id, to, skipped: false, added: writer.stats.dataAdded - before };
      }
      progress.snapshots++;
      opts.onSnapshot?.(c);
      done.push(c);
    }
  } finally {
    await writer.close();
  }
  return done;
}
