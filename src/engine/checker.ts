// Repository check: every problem is collected with the name of the object at fault instead of
// stopping at the first one, so one run tells the operator everything that is damaged.
import { ARCHIVE_CLASSES, isColdStorage, objectPath } from '../backend/backend.js';
import { sha256Hex } from '../crypto/hash.js';
import { readPackHeader, type PackEntry } from '../format/pack.js';
import type { IndexFile, IndexPack } from '../format/index.js';
import { IntegrityError, InterruptedError, SnapError } from '../errors.js';
import { listKeys } from '../repository/keys.js';
import type { Repository } from '../repository/repository.js';
import type { BlobLocation } from '../repository/index.js';
import { mapLimit } from '../util/concurrency.js';
import { throwIfAborted } from '../backend/common.js';


export type ReadDataSelection = { all: true } | { n: number; m: number } | { fraction: number };

export interface CheckOptions {
  readData?: ReadDataSelection;
  /** Request thaws of archived packs that need reading instead of skipping them. */
  allowThaw?: boolean;
  signal?: AbortSignal;
  onProgress?: (stage: string, done: number, total: number) => void;
}

export interface CheckProblem {
  /** The object at fault, e.g. "index/3fa1…", "data/9c/9c1e…", "snapshots/…", "data blob …". */
  object: string;
  message: string;
}

export interface CheckResult {
  problems: CheckProblem[];
  /** Packs no index names: left by an interrupted backup or prune; `prune` removes them. */
  unreferencedPacks: string[];
  /** Blobs snapshots use that no index names (lost or damaged index objects: `repair index`). */
  missingFromIndex: number;
  /** Packs the index names that are not stored (`repair index` drops them, then `repair snapshots`). */
  missingPacks: number;
  /** Packs read whole and found damaged (content, header or a blob): `repair packs` salvages them. */
  damagedPacks: string[];
  snapshots: number;
  packs: number;
  /** Packs read whole (hash, header, every blob). */
  packsRead: number;
  blobsVerified: number;
  /** Archived packs not thawed, so not checked. */
  coldSkipped: number;
  /** Archived packs whose thaw was requested (--allow-thaw); run check again once thawed. */
  thawRequested: number;
}

function sameEntry(a: PackEntry, b: PackEntry): boolean {
  return a.id === b.id && a.type === b.type && a.offset === b.offset && a.length === b.length && a.rawLength === b.rawLength && a.compressed === b.compressed;
}

/** Deterministic N/M groups by pack name (like restic's --read-data-subset n/m). */
function selectedForRead(sel: ReadDataSelection | undefined, pack: string): boolean {
  if (!sel) return false;
  if ('all' in sel) return true;
  if ('n' in sel) return parseInt(pack.slice(0, 8), 16) % sel.m === sel.n - 1;
  return false;
}

const INTERRUPTED = 'check interrupted: nothing was changed';

export async function check(repo: Repository, opts: CheckOptions = {}): Promise<CheckResult> {
  const problems: CheckProblem[] = [];
  const problem = (object: string, message: string): void => {
    problems.push({ object, message });
  };
  const fromError = (fallback: string, e: unknown): void => {
    if (e instanceof InterruptedError || (e as Error)?.name === 'AbortError') throw e;
    if (e instanceof IntegrityError) problem(e.object, e.message.slice(e.object.length + 2));
    else problem(fallback, e instanceof SnapError ? e.message : String((e as Error)?.message ?? e));
  };
  const res: CheckResult = { problems, unreferencedPacks: [], missingFromIndex: 0, missingPacks: 0, damagedPacks: [], snapshots: 0, packs: 0, packsRead: 0, blobsVerified: 0, coldSkipped: 0, thawRequested: 0 };
  const backend = repo.backend;

  // Keys (the config was verified when the repository was opened).
  try {
    await listKeys(backend);
  } catch (e) {
    fromError('keys/', e);
  }

  // Index objects, each on its own so one damaged object does not hide the others.
  const files = new Map<string, IndexFile>();
  await mapLimit(await repo.listNames('index'), 8, async (name) => {
    try {
      files.set(name, await repo.loadIndexFile(name));
    } catch (e) {
      fromError(`index/${name}`, e);
    }
  });
  repo.index.load(files);
  // Per pack, the entries the active index objects give it.
  const indexed = new Map<string, IndexPack>();
  for (const name of repo.index.indexNames) {
    for (const p of files.get(name)!.packs) {
      const prev = indexed.get(p.id);
      if (prev && (prev.type !== p.type || prev.size !== p.size)) problem(objectPath({ type: p.type, name: p.id }), 'index objects disagree about this pack');
      indexed.set(p.id, p);
    }
  }
  throwIfAborted(opts.signal, INTERRUPTED);

  // Packs present in the backend.
  const stored = new Map((await repo.listPacks()).map((f) => [f.name, f]));
  for (const [id, p] of indexed) {
    const what = objectPath({ type: p.type, name: id });
    const f = stored.get(id);
    if (!f) {
      problem(what, 'named in the index but missing from the repository');
      res.missingPacks++;
    }
    else if (f.type !== p.type) problem(what, `indexed as a ${p.type} pack but stored under ${f.type}/`);
    else if (f.size !== p.size) problem(what, `size ${f.size} differs from the index (${p.size})`);
  }
  for (const [id, f] of stored) if (!indexed.has(id)) res.unreferencedPacks.push(objectPath({ type: f.type, name: id }));

  // Snapshots and everything they reference.
  const snapshotNames = await repo.listNames('snapshot');
  res.snapshots = snapshotNames.length;
  const seenTrees = new Set<string>();
  const seenData = new Set<string>();
  for (const sid of snapshotNames) {
    throwIfAborted(opts.signal, INTERRUPTED);
    let root: string;
    try {
      root = (await repo.loadSnapshot(sid)).tree;
    } catch (e) {
      fromError(`snapshots/${sid}`, e);
      continue;
    }
    const stack = [root];
    while (stack.length > 0) {
      const tid = stack.pop()!;
      if (seenTrees.has(tid)) continue;
      seenTrees.add(tid);
      const loc = repo.index.get(tid);
      if (!loc || loc.type !== 'tree') {
        problem(`tree ${tid}`, `used by snapshots/${sid} but not in the index`);
        res.missingFromIndex++;
        continue;
      }
      try {
        const tree = await repo.loadTree(tid);
        for (const n of tree.nodes) {
          if (n.subtree) stack.push(n.subtree);
          for (const c of n.content ?? []) {
            if (seenData.has(c)) continue;
            seenData.add(c);
            const dl = repo.index.get(c);
            if (!dl || dl.type !== 'data') {
              problem(`data blob ${c}`, `used by snapshots/${sid} (file ${n.name.toString('utf8')}) but not in the index`);
              res.missingFromIndex++;
            }
          }
        }
      } catch (e) {
        fromError(`tree ${tid}`, e);
      }
    }
  }

  // Pack contents: meta packs are always read whole (small, hot, and trees were just used); data
  // packs have their header compared with the index, and are read whole when --read-data selects them.
  const present = [...indexed.values()].filter((p) => stored.get(p.id)?.type === p.type && stored.get(p.id)?.size === p.size);
  res.packs = present.length;
  let fractionLeft = 0;
  const sel = opts.readData;
  if (sel && 'fraction' in sel) fractionLeft = Math.ceil(present.filter((p) => p.type === 'data').length * sel.fraction);
  const randomPicks = new Set<string>();
  if (fractionLeft > 0) {
    const data = present.filter((p) => p.type === 'data').map((p) => p.id);
    for (let i = data.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [data[i], data[j]] = [data[j]!, data[i]!];
    }
    for (const id of data.slice(0, fractionLeft)) randomPicks.add(id);
  }
  const cold = isColdStorage(backend) ? backend : undefined;
  let done = 0;
  await mapLimit(present, 4, async (p) => {
    throwIfAborted(opts.signal, INTERRUPTED);
    const h = { type: p.type, name: p.id };
    const what = objectPath(h);
    const f = stored.get(p.id)!;
    if (cold && p.type === 'data' && ARCHIVE_CLASSES.has((f.storageClass ?? '').toUpperCase())) {
      const st = await cold.coldState(h);
      if (st.archived && st.restore !== 'done') {
        if (opts.allowThaw && st.restore === 'none') {
          await cold.requestThaw(h, { days: 2, tier: 'Standard' });
          res.thawRequested++;
        } else if (opts.allowThaw) res.thawRequested++;
        else res.coldSkipped++;
        return;
      }
    }
    const readWhole = p.type === 'meta' || selectedForRead(sel, p.id) || randomPicks.has(p.id);
    const damaged = () => {
      if (!res.damagedPacks.includes(p.id)) res.damagedPacks.push(p.id);
    };
    try {
      let header: PackEntry[];
      let bytes: Buffer | undefined;
      if (readWhole) {
        bytes = await backend.load(h);
        if (sha256Hex(bytes) !== p.id) {
          problem(what, 'content does not match its name (corrupt or tampered)');
          damaged();
        }
        try {
          header = readPackHeader(repo.keys.encrypt, bytes);
        } catch (e) {
          throw new IntegrityError(what, (e as Error).message);
        }
      } else {
        header = await repo.loadPackHeader(p.type, p.id, p.size);
      }
      const byId = new Map(header.map((e) => [e.id, e]));
      for (const b of p.blobs) {
        const e = byId.get(b.id);
        if (!e || !sameEntry(e, b)) problem(what, `index entry for blob ${b.id} does not match the pack header`);
      }
      if (header.length !== p.blobs.length) problem(what, `pack header lists ${header.length} blobs, the index ${p.blobs.length}`);
      if (bytes) {
        res.packsRead++;
        for (const e of header) {
          const loc: BlobLocation = { pack: p.id, packType: p.type, type: e.type, offset: e.offset, length: e.length, rawLength: e.rawLength, compressed: e.compressed };
          try {
            repo.openBlob(e.id, loc, bytes.subarray(e.offset, e.offset + e.length));
            res.blobsVerified++;
          } catch (err) {
            fromError(`${e.type} blob ${e.id} in ${what}`, err);
            damaged();
          }
        }
      }
    } catch (e) {
      fromError(what, e);
      if (e instanceof IntegrityError) damaged();
    }
    opts.onProgress?.('packs', ++done, present.length);
  });
  problems.sort((a, b) => a.object.localeCompare(b.object) || a.message.localeCompare(b.message));
  res.unreferencedPacks.sort();
  res.damagedPacks.sort();
  return res;
}

