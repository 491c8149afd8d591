// `snap repair index`: a new index built from the packs themselves, for a repository whose index
// objects were lost or damaged. Every pack carries its own sealed header (format-spec ch. 5), so
// the index can always be rebuilt from what is stored. The new index is written first, naming in
// `supersedes` every index object there was, and only then are those removed (as prune does,
// ch. 14): interrupted at any point, the repository keeps an index at least as complete as before.
import { objectPath } from '../backend/backend.js';
import { removeIfPresent, throwIfAborted } from '../backend/common.js';
import { ColdObjectError, IntegrityError, NotFoundError } from '../errors.js';
import { indexToJson, type IndexFile, type IndexPack } from '../format/index.js';
import type { Repository } from '../repository/repository.js';
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
  packs.sort((a, b) => a.id.localeCompare(b.id));
  res.index = await repo.saveMetadata('index', indexToJson({ supersedes: names, packs }), true);
  for (const name of names) {
    await removeIfPresent(repo.backend, { type: 'index', name });
    res.indexesRemoved++;
  }
  return res;
}
