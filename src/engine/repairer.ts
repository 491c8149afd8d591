// `snap repair index`: a new index built from the packs themselves, for a repository whose index
// objects were lost or damaged. Every pack carries its own sealed header (format-spec ch. 5), so
// the index can always be rebuilt from what is stored. The new index is written first, naming in
// `supersedes` every index object there was, and only then are those removed (as prune does,
// ch. 14): interrupted at any point, the repository keeps an index at least as complete as before.
//
// `snap repair packs`: the intact blobs of damaged packs (bit rot in storage, a truncated upload)
// copied into new packs, then the damaged packs removed, after a local copy of each is saved.
import { join } from 'node:path';
import { objectPath } from '../backend/backend.js';
import { removeIfPresent, throwIfAborted } from '../backend/common.js';
import { ColdObjectError, IntegrityError, NotFoundError, UsageError } from '../errors.js';
import { nextRepairMark, type IndexFile, type IndexPack, type PackType } from '../format/index.js';
import { readPackHeader, type PackEntry } from '../format/pack.js';
import { writeFileAtomic } from '../fs/atomic.js';
import type { Repository } from '../repository/repository.js';
import { BlobWriter } from '../repository/writer.js';
import { mapLimit } from '../util/concurrency.js';

export interface RepairIndexOptions {
  /** Read every pack's header, not only those of packs no readable index object describes. */
  readAllPacks?: boolean;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
  onWarning?: (message: string) => void;
}

export interface RepairIndexResult {
  /** Index objects read, and those that could not be (damaged: left out, then removed). */
  indexesRead: number;
  indexesDamaged: number;
  /** Packs in the new index, and how many of their headers were read for it. */
  packs: number;
  packsRead: number;
  /** Packs the old index named that are not stored any more: their entries are dropped. */
  packsMissing: number;
  /** Stored packs whose header could not be read (archived, or damaged): not in the new index. */
  unreadable: string[];
  /** The new index object, or undefined when the index was already complete and consistent. */
  index?: string;
  indexesRemoved: number;
}

const INTERRUPTED = 'repair interrupted: the index is as complete as it was, and the next repair finishes the job';

export async function repairIndex(repo: Repository, opts: RepairIndexOptions = {}): Promise<RepairIndexResult> {
  const res: RepairIndexResult = { indexesRead: 0, indexesDamaged: 0, packs: 0, packsRead: 0, packsMissing: 0, unreadable: [], indexesRemoved: 0 };
  // What the readable index objects say, active ones first (a superseded one is older).
  const names = await repo.listNames('index');
  const files = new Map<string, IndexFile>();
  await mapLimit(names, 8, async (name) => {
    try {
      files.set(name, await repo.loadIndexFile(name));
    } catch (e) {
      if (!(e instanceof IntegrityError) && !(e instanceof NotFoundError)) throw e;
      res.indexesDamaged++;
      opts.onWarning?.(`index/${name}: ${e instanceof IntegrityError ? e.message.slice(e.object.length + 2) : 'gone'}; rebuilding what it described from the packs`);
    }
  });
  res.indexesRead = files.size;
  const superseded = new Set([...files.values()].flatMap((f) => f.supersedes));
  const described = new Map<string, IndexPack>();
  for (const active of [true, false]) {
    for (const [name, f] of files) {
      if (superseded.has(name) === active) continue;
      for (const p of f.packs) if (!described.has(p.id)) described.set(p.id, p);
    }
  }

  const stored = await repo.listPacks();
  const storedIds = new Set(stored.map((f) => f.name));
  res.packsMissing = [...described.keys()].filter((id) => !storedIds.has(id)).length;

  const packs: IndexPack[] = [];
  let done = 0;
  await mapLimit(stored, 8, async (f) => {
    throwIfAborted(opts.signal, INTERRUPTED);
    const known = described.get(f.name);
    if (known && known.type === f.type && known.size === f.size && !opts.readAllPacks) packs.push(known);
    else {
      try {
        packs.push({ id: f.name, type: f.type, size: f.size, blobs: await repo.loadPackHeader(f.type, f.name, f.size) });
        res.packsRead++;
      } catch (e) {
        if (!(e instanceof IntegrityError) && !(e instanceof ColdObjectError)) throw e;
        // An archived pack an old index described keeps that description (it cannot be read to check it).
        if (known && e instanceof ColdObjectError) packs.push(known);
        else {
          const what = objectPath({ type: f.type, name: f.name });
          res.unreadable.push(what);
          opts.onWarning?.(`${what}: ${e instanceof ColdObjectError ? 'archived and not thawed' : e.message.slice(e.object.length + 2)}; left out of the index`);
        }
      }
    }
    opts.onProgress?.(++done, stored.length);
  });
  res.packs = packs.length;

  // Nothing to do when exactly the active index objects' packs are stored, as described.
  const complete = res.indexesDamaged === 0 && res.packsMissing === 0 && res.packsRead === 0 && superseded.size === 0 && packs.length === described.size;
  if (complete && !opts.readAllPacks) return res;
  throwIfAborted(opts.signal, INTERRUPTED);
  // Blobs snapshots use may be gone with a lost pack, one left out, or a damaged index object's marks.
  const dropped = res.packsMissing > 0 || res.unreadable.length > 0 || res.indexesDamaged > 0;
  const marks = new Set([...files].flatMap(([name, f]) => (!superseded.has(name) && f.repairMark !== undefined ? [f.repairMark] : [])));
  ({ name: res.index, removed: res.indexesRemoved } = await repo.replaceIndex(names, packs, nextRepairMark(dropped, marks)));
  return res;
}

export interface RepairPacksOptions {
  /** Where a copy of each damaged pack is saved before it is removed from the repository. */
  saveDir: string;
  signal?: AbortSignal;
}

export interface RepairedPack {
  id: string;
  type: PackType;
  /** Local copy of the pack as it was stored. */
  savedAs: string;
  /** Blobs the pack held (as its header and the index list them), and those kept: copied intact, or in another pack too. */
  blobs: number;
  salvaged: number;
  /** Damaged blobs with no copy in another pack: lost from the repository. */
  lost: string[];
}

export interface RepairPacksResult {
  packs: RepairedPack[];
  packsWritten: number;
  index: string;
  indexesRemoved: number;
}

/**
 * Copies the intact blobs of the given packs (full IDs or unique prefixes) into new packs, writes
 * an index without the old packs, then removes them. Their blobs are found through the index and
 * the pack's own header (either may be damaged); each is verified before it is copied. Write order
 * as prune's (ch. 14): new packs, the new index superseding every index object, the old index
 * objects, then the damaged packs; a copy of each is saved locally first. The blobs it reports
 * lost are then missing from the index: `repair snapshots` removes them from the snapshots.
 */
export async function repairPacks(repo: Repository, ids: readonly string[], opts: RepairPacksOptions): Promise<RepairPacksResult> {
  if (ids.length === 0) throw new UsageError('name the damaged packs to repair (`snap check --read-data` lists them)');
  const { names, packs: indexed } = await repo.loadWholeIndex();
  const stored = await repo.listPacks();
  const targets = [...new Set(ids.map((id) => resolvePack(id, stored.map((f) => f.name), [...indexed.keys()])))].map((id) => stored.find((f) => f.name === id)!);
  const repairing = new Set(targets.map((f) => f.name));
  // Blobs with a copy in a pack that stays: nothing is lost when theirs here is damaged.
  const elsewhere = new Set<string>();
  for (const p of indexed.values()) if (!repairing.has(p.id)) for (const b of p.blobs) elsewhere.add(b.id);

  const res: RepairPacksResult = { packs: [], packsWritten: 0, index: '', indexesRemoved: 0 };
  const writer = new BlobWriter(repo, { workers: false, indexObjects: false });
  try {
    for (const f of targets) {
      throwIfAborted(opts.signal, INTERRUPTED);
      const h = { type: f.type, name: f.name };
      const bytes = await repo.backend.load(h);
      const savedAs = join(opts.saveDir, f.name);
      await writeFileAtomic(savedAs, bytes);
      const entries = new Map<string, PackEntry>();
      for (const b of indexed.get(f.name)?.blobs ?? []) entries.set(b.id, b);
      try {
        for (const b of readPackHeader(repo.keys.encrypt, bytes)) if (!entries.has(b.id)) entries.set(b.id, b);
      } catch {
        // A damaged header: the index entries are all there is to go by.
      }
      const r: RepairedPack = { id: f.name, type: f.type, savedAs, blobs: entries.size, salvaged: 0, lost: [] };
      for (const b of entries.values()) {
        // A copy in a pack that stays serves: nothing to copy, nothing lost.
        if (elsewhere.has(b.id)) {
          r.salvaged++;
          continue;
        }
        const sealed = bytes.subarray(b.offset, b.offset + b.length);
        try {
          if (b.offset + b.length > bytes.length) throw new Error('beyond the end of the pack');
          repo.openBlob(b.id, { pack: f.name, packType: f.type, type: b.type, offset: b.offset, length: b.length, rawLength: b.rawLength, compressed: b.compressed }, sealed);
        } catch {
          r.lost.push(b.id);
          continue;
        }
        await writer.copySealed(b.id, b.type, Buffer.from(sealed), b.rawLength, b.compressed);
        r.salvaged++;
      }
      r.lost.sort();
      res.packs.push(r);
    }
    await writer.flush();
  } finally {
    await writer.close();
  }
  res.packsWritten = writer.storedPacks.length;
  const packs = [...[...indexed.values()].filter((p) => !repairing.has(p.id)), ...writer.storedPacks];
  const dropped = res.packs.some((r) => r.lost.length > 0);
  ({ name: res.index, removed: res.indexesRemoved } = await repo.replaceIndex(names, packs, nextRepairMark(dropped, repo.index.repairMarks)));
  for (const f of targets) await removeIfPresent(repo.backend, { type: f.type, name: f.name });
  return res;
}

/** The stored pack a full ID or unique prefix names. */
function resolvePack(id: string, stored: readonly string[], indexed: readonly string[]): string {
  const prefix = id.toLowerCase();
  if (!/^[0-9a-f]+$/.test(prefix)) throw new UsageError(`${JSON.stringify(id)} is not a pack ID`);
  const hits = stored.filter((n) => n.startsWith(prefix));
  if (hits.length === 1) return hits[0]!;
  if (hits.length > 1) throw new UsageError(`pack ID ${id} is ambiguous: give more of it`);
  if (indexed.some((n) => n.startsWith(prefix))) {
    throw new UsageError(`pack ${id} is not stored, though the index names it`, { hint: 'a pack that is gone has nothing to salvage: `snap repair index` drops it from the index, then `snap repair snapshots` removes its data from the snapshots' });
  }
  throw new UsageError(`no pack ${id} is stored in this repository`);
}
