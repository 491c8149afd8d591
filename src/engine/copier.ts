// Copies snapshots into another repository (`snap copy`, as restic's): an off-site copy of a local
// repository in S3, or a move to a new bucket. Blobs are opened with the source's keys and sealed
// under the destination's. Chunks are not cut again: a copied file keeps the source's chunk
// boundaries.
// - With different blob ID keys, a blob has a different ID in each (IDs are keyed, ch. 3): every
//   blob of a snapshot is read, stored deduplicated against what the destination holds as a
//   backup would be, and every tree is written anew with the new IDs.
// - A destination made with `init --copy-chunker-params` shares the source's ID key (ch. 4): IDs
//   are the same, so only blobs the destination lacks are read, and trees are copied as they are.
//
// Write order as a backup's (ch. 10): a snapshot's packs, then their index, then the snapshot; an
// interrupted copy leaves the snapshots copied so far, and the next run skips them.
//
// Out of archive storage (GLACIER, DEEP_ARCHIVE), every data pack the copy needs is known before
// the first is read, so that the thaws of all of them are requested at once (as a restore does);
// a snapshot is copied once all its packs are readable, and waits (or is left for a later run)
// while some still thaw.
import { InterruptedError } from '../errors.js';
import { encodeTree, sameList } from '../format/tree.js';
import type { Snapshot, SnapshotEntry } from '../model/snapshot.js';
import type { Tree, TreeNode } from '../model/tree.js';
import type { BlobLocation } from '../repository/index.js';
import type { PackNeed } from './restorer.js';
import type { Repository } from '../repository/repository.js';
import { BlobWriter } from '../repository/writer.js';
import { mapLimit, Semaphore } from '../util/concurrency.js';

export interface CopyOptions {
  /** Only report what would be copied. */
  dryRun?: boolean;
  signal?: AbortSignal;
  /** After each snapshot, copied or skipped. */
  onSnapshot?: (c: Copied) => void;
  onProgress?: (p: CopyProgress) => void;
  /**
   * Archive storage: the packs that can be read now, of those given (every data pack the copy
   * needs); the hook requests thaws of the others. Without it, packs are read as they come.
   */
  readablePacks?: (packs: PackNeed[]) => Promise<Set<string>>;
  /** Waits until some of the pending packs are readable; empty when it stops waiting. */
  awaitPacks?: (pending: PackNeed[]) => Promise<Set<string>>;
}

export interface CopyResult {
  snapshots: Copied[];
  /** Data packs read from the source. */
  packsRead: string[];
  /** Data packs still thawing, which the snapshots not copied yet need. */
  packsPending: PackNeed[];
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
  /** Not copied (yet): this many of the data packs it needs are still thawing. */
  pending?: number;
  /** Bytes the copy added to the destination, before packing. */
  added: number;
}

/** Trees read from the source at once (a range request each on S3). */
const TREE_READS = 16;
/** Subdirectory trees read ahead of the one being copied, per directory. */
const TREES_AHEAD = 8;
/** Packs read from the source at once. */
const PACK_READS = 4;
/** Blobs of one pack closer than this are read in one request, with what lies between. */
const READ_GAP = 1 << 20;
/** The most one request reads. */
const READ_MAX = 8 << 20;

/**
 * True when `copy` is a copy of `s` (stored under `id`): the same time, host, user, paths, tags and
 * excludes, and descended from the same first snapshot (`original`). Trees cannot be compared
 * (their IDs differ between the repositories), so a snapshot rewritten in the source after its
 * original was copied is taken for copied.
 */
function isCopyOf(copy: Snapshot, s: Snapshot, id: string): boolean {
  return (
    copy.original === (s.original ?? id) && copy.time === s.time && copy.hostname === s.hostname && copy.username === s.username &&
    sameList(copy.paths, s.paths) && sameList([...copy.tags].sort(), [...s.tags].sort()) && sameList(copy.excludes, s.excludes)
  );
}

/** Adds the data pack holding `blob` (as the source's index describes it) to `packs`. */
function addPack(src: Repository, packs: Map<string, PackNeed>, blob: string): void {
  const pack = src.locate(blob, 'data').pack;
  if (!packs.has(pack)) packs.set(pack, src.index.pack(pack)!);
}

/**
 * The data packs that copying `entries` reads: those of the snapshots not yet in the destination
 * (what `copy --plan` prices). Reads trees, no data pack.
 */
export async function packsToCopy(src: Repository, dst: Repository, entries: readonly SnapshotEntry[], signal?: AbortSignal): Promise<PackNeed[]> {
  return (await copyOrPlan(src, dst, entries, signal ? { signal } : {}, true)).packsPending;
}

export function copySnapshots(src: Repository, dst: Repository, entries: readonly SnapshotEntry[], opts: CopyOptions = {}): Promise<CopyResult> {
  return copyOrPlan(src, dst, entries, opts, false);
}

/** Copies `entries`; or, with `planOnly`, returns the data packs that needs as pending and copies nothing. */
async function copyOrPlan(src: Repository, dst: Repository, entries: readonly SnapshotEntry[], opts: CopyOptions, planOnly: boolean): Promise<CopyResult> {
  const existing = await dst.listSnapshots();
  const toCopy = entries.filter(({ id, snapshot }) => !existing.some((e) => isCopyOf(e.snapshot, snapshot, id)));
  const progress: CopyProgress = { snapshots: 0, blobs: 0, bytes: 0 };
  // Source ID to destination ID, for every blob and tree of this run: snapshots of one host share
  // most of them.
  const blobs = new Map<string, Promise<string>>();
  // With the same blob ID key (init --copy-chunker-params), a blob or tree has the same ID in both
  // repositories: what the destination holds is neither read nor written, and trees are stored
  // byte for byte under their IDs.
  const sameIds = src.keys.id.equals(dst.keys.id);
  const held = (blob: string) => blobs.has(blob) || (sameIds && dst.index.has(blob));
  const trees = new Map<string, Promise<string>>();
  const treeReads = new Semaphore(TREE_READS);
  const loadTree = (id: string) => treeReads.run(() => src.loadTree(id));
  const checkAbort = () => {
    if (opts.signal?.aborted) throw new InterruptedError('copy interrupted; the snapshots copied so far are kept, and the next copy skips them');
  };

  /** Source data blobs of the trees under `id` that this run has not copied yet, to `onBlob`. */
  const uncopied = async (id: string, onBlob: (blob: string) => void, seen: Set<string>): Promise<void> => {
    if (trees.has(id) || seen.has(id)) return;
    seen.add(id);
    checkAbort();
    const below: Promise<void>[] = [];
    for (const node of (await loadTree(id)).nodes) {
      for (const blob of node.content ?? []) if (!held(blob)) onBlob(blob);
      if (node.type === 'dir' && node.subtree !== undefined) below.push(uncopied(node.subtree, onBlob, seen));
    }
    await Promise.all(below);
  };

  // Every data pack the copy needs, before any is read: archive storage thaws them all at once.
  let readable: Set<string> | undefined;
  if (planOnly || (opts.readablePacks && !opts.dryRun)) {
    const packs = new Map<string, PackNeed>();
    const seen = new Set<string>();
    for (const { snapshot } of toCopy) await uncopied(snapshot.tree, (b) => addPack(src, packs, b), seen);
    if (planOnly) return { snapshots: [], packsRead: [], packsPending: [...packs.values()] };
    readable = await opts.readablePacks!([...packs.values()]);
  }
  const writer = new BlobWriter(dst, { dryRun: opts.dryRun === true });
  const packsRead = new Set<string>();
  const pending = new Map<string, PackNeed>();

  /** The packs of `needed` still thawing, once it has waited for them as far as it may. */
  const stillThawing = async (needed: Set<string>): Promise<PackNeed[]> => {
    if (!readable) return [];
    const packs = new Map<string, PackNeed>();
    for (const b of needed) addPack(src, packs, b);
    let waiting = [...packs.values()].filter((p) => !readable!.has(p.id));
    while (waiting.length > 0 && opts.awaitPacks) {
      const ready = await opts.awaitPacks(waiting);
      if (ready.size === 0) break;
      for (const id of ready) readable.add(id);
      waiting = waiting.filter((p) => !readable!.has(p.id));
    }
    return waiting;
  };

  /**
   * Copies data blobs pack by pack: one read for each run of nearby blobs of a pack, as a restore
   * reads (a blob at a time was a request per blob: on S3, a round trip per small file).
   */
  const copyBlobs = async (ids: Set<string>): Promise<void> => {
    const byPack = new Map<string, { id: string; loc: BlobLocation }[]>();
    for (const id of ids) {
      const loc = src.locate(id, 'data');
      let list = byPack.get(loc.pack);
      if (!list) byPack.set(loc.pack, (list = []));
      list.push({ id, loc });
    }
    for (const pack of byPack.keys()) packsRead.add(pack);
    await mapLimit(byPack.values(), PACK_READS, async (list) => {
      list.sort((a, b) => a.loc.offset - b.loc.offset);
      for (let i = 0; i < list.length; ) {
        const first = list[i]!.loc;
        let j = i + 1;
        while (j < list.length && list[j]!.loc.offset - (list[j - 1]!.loc.offset + list[j - 1]!.loc.length) <= READ_GAP && list[j]!.loc.offset + list[j]!.loc.length - first.offset <= READ_MAX) j++;
        const last = list[j - 1]!.loc;
        checkAbort();
        const run = await src.backend.load({ type: first.packType, name: first.pack }, { offset: first.offset, length: last.offset + last.length - first.offset });
        for (const { id, loc } of list.slice(i, j)) {
          const data = src.openBlob(id, loc, run.subarray(loc.offset - first.offset, loc.offset - first.offset + loc.length));
          progress.blobs++;
          progress.bytes += data.length;
          // The writer's backpressure bounds what is read ahead of the packing.
          blobs.set(id, (await writer.saveData(data)).id);
        }
        opts.onProgress?.({ ...progress });
        i = j;
      }
    });
  };

  /**
   * A tree written anew in the destination, its blobs copied already (copyBlobs). Subdirectories
   * one after another (memory bounded by the depth, not the size, of the tree), their trees read a
   * few ahead (on S3, a round trip each).
   */
  const copyTree = (id: string, loading?: Promise<Tree>): Promise<string> => {
    let p = trees.get(id);
    if (!p) {
      p = (async () => {
        const nodes: TreeNode[] = [...(await (loading ?? loadTree(id))).nodes];
        const subdirs = nodes.flatMap((n, i) => (n.type === 'dir' && n.subtree !== undefined && !trees.has(n.subtree) ? [i] : []));
        const ahead = new Map<number, Promise<Tree>>();
        /** Starts reading the tree of subdirs[k]. */
        const readAhead = (k: number) => {
          const i = subdirs[k];
          if (i === undefined) return;
          const t = loadTree(nodes[i]!.subtree!);
          t.catch(() => undefined); // awaited in turn below
          ahead.set(i, t);
        };
        for (let k = 0; k < TREES_AHEAD; k++) readAhead(k);
        let next = 0;
        for (const [i, node] of nodes.entries()) {
          if (node.type === 'dir' && node.subtree !== undefined) {
            if (subdirs[next] === i) readAhead(++next + TREES_AHEAD - 1);
            nodes[i] = { ...node, subtree: await copyTree(node.subtree, ahead.get(i)) };
            ahead.delete(i);
          } else if (!sameIds && node.content && node.content.length > 0) nodes[i] = { ...node, content: await Promise.all(node.content.map((b) => blobs.get(b)!)) };
        }
        if (!sameIds) return (await writer.save('tree', encodeTree({ nodes }))).id;
        // Its subtrees are there now; the tree itself as its bytes are, so under the same ID.
        if (!writer.known(id)) await writer.save('tree', await src.loadBlob(id, 'tree'));
        return id;
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
        const needed = new Set<string>();
        await uncopied(snapshot.tree, (b) => needed.add(b), new Set());
        const thawing = await stillThawing(needed);
        if (thawing.length > 0) {
          // Left for a later run: its packs stay requested.
          for (const p of thawing) pending.set(p.id, p);
          c = { from: id, skipped: false, added: 0, pending: thawing.length };
        } else {
          const before = writer.stats.dataAdded;
          await copyBlobs(needed);
          const tree = await copyTree(snapshot.tree);
          await writer.flush();
          // The source's parent is not in the destination (or not under that ID).
          const { parent: _parent, ...rest } = snapshot;
          const doc: Snapshot = { ...rest, tree, original: snapshot.original ?? id };
          const to = await dst.saveMetadata('snapshot', doc);
          existing.push({ id: to, snapshot: doc });
          c = { from: id, to, skipped: false, added: writer.stats.dataAdded - before };
        }
      }
      progress.snapshots++;
      opts.onSnapshot?.(c);
      done.push(c);
    }
  } catch (e) {
    // On Ctrl-C, index what was stored so far, as an interrupted backup does: the next copy
    // finds those blobs and does not store them again.
    if (e instanceof InterruptedError && !opts.dryRun) await writer.flush().catch(() => undefined);
    throw e;
  } finally {
    await writer.close();
  }
  return { snapshots: done, packsRead: [...packsRead], packsPending: [...pending.values()] };
}
