// Prune: plan, then execute (format-spec ch. 14). The plan decides per pack: keep, delete (nothing
// in it is used), repack (used blobs copied into new packs, then deleted) or delete-unreferenced
// (no index names it). Cold-aware: packs in classes with a minimum storage duration are not deleted
// or rewritten before it ends, and archived packs are not thawed without --allow-thaw.
// Execution order is what makes a crash harmless: new packs, then one index that supersedes every
// old index object, then old index objects are removed, then old packs.
import { hasFileStaging, isColdStorage, objectPath, type FileInfo } from '../backend/backend.js';
import { nextRepairMark, type IndexPack, type PackType } from '../format/index.js';
import { removeIfPresent, throwIfAborted } from '../backend/common.js';
import { IntegrityError, NotFoundError } from '../errors.js';
import type { Repository } from '../repository/repository.js';
import { BlobWriter } from '../repository/writer.js';
import { visitReached } from './walk.js';
import type { BlobType } from '../model/ids.js';
import { ARCHIVE_CLASSES } from '../backend/backend.js';

const DAY_MS = 86400_000;

/** Every step leaves a repository that check passes (format-spec ch. 14). */
const INTERRUPTED = 'prune interrupted: the repository is intact, and the next prune finishes the job';

/** S3 minimum storage durations (days): deleting earlier is billed as if stored that long. */
export const MIN_STORAGE_DAYS: Record<string, number> = { DEEP_ARCHIVE: 180, GLACIER: 90, GLACIER_IR: 90, STANDARD_IA: 30, ONEZONE_IA: 30 };
/** Storage price, USD per GB-month (us-east-1), for the early-deletion fee estimate. */
export const PRICE_GB_MONTH: Record<string, number> = { STANDARD: 0.023, DEEP_ARCHIVE: 0.00099, GLACIER: 0.0036, GLACIER_IR: 0.004, STANDARD_IA: 0.0125, ONEZONE_IA: 0.01 };
/** Retrieval (thaw, Standard tier, or IA retrieval) price, USD per GB. */
export const RETRIEVAL_GB: Record<string, number> = { DEEP_ARCHIVE: 0.02, GLACIER: 0.01, GLACIER_IR: 0.03, STANDARD_IA: 0.01, ONEZONE_IA: 0.01 };

export type PackAction = 'keep' | 'delete' | 'repack' | 'delete-unreferenced';

/** What the plan knows about one pack; the input of decidePacks. */
export interface PackFacts {
  id: string;
  type: PackType;
  size: number;
  storageClass: string;
  /** Age in days (from the backend's modification time; 0 when unknown: treated as new). */
  ageDays: number;
  indexed: boolean;
  usedBytes: number;
  unusedBytes: number;
  /** Archived (GLACIER, DEEP_ARCHIVE) and not currently thawed: reading needs a thaw. */
  needsThaw: boolean;
}

export interface PackDecision extends PackFacts {
  action: PackAction;
  /** Why a pack with unused space is kept. */
  held?: 'min-age' | 'cold' | 'max-unused';
}

export interface DecideOptions {
  /** Unused space tolerated after prune, as a share of the used bytes (default 0.05). */
  maxUnused?: number;
  /** Overrides the per-class minimum storage durations (days). */
  keepPackMinAgeDays?: number;
  allowThaw?: boolean;
}

function minAgeDays(cls: string, opts: DecideOptions): number {
  const base = MIN_STORAGE_DAYS[cls] ?? 0;
  return opts.keepPackMinAgeDays !== undefined && base > 0 ? opts.keepPackMinAgeDays : base;
}

/** The pure part of the plan: an action for every pack. */
export function decidePacks(packs: readonly PackFacts[], opts: DecideOptions = {}): PackDecision[] {
  const maxUnused = opts.maxUnused ?? 0.05;
  const out: PackDecision[] = [];
  const candidates: PackDecision[] = [];
  let usedTotal = 0;
  let unusedLeft = 0;
  for (const p of packs) {
    usedTotal += p.usedBytes;
    const young = p.ageDays < minAgeDays(p.storageClass, opts);
    if (!p.indexed) {
      out.push(young ? { ...p, action: 'keep', held: 'min-age' } : { ...p, action: 'delete-unreferenced' });
    } else if (p.unusedBytes === 0) {
      out.push({ ...p, action: 'keep' });
    } else if (young) {
      out.push({ ...p, action: 'keep', held: 'min-age' });
      unusedLeft += p.unusedBytes;
    } else if (p.usedBytes === 0) {
      out.push({ ...p, action: 'delete' });
    } else if (p.needsThaw && !opts.allowThaw) {
      out.push({ ...p, action: 'keep', held: 'cold' });
      unusedLeft += p.unusedBytes;
    } else {
      const d: PackDecision = { ...p, action: 'keep', held: 'max-unused' };
      candidates.push(d);
      out.push(d);
      unusedLeft += p.unusedBytes;
    }
  }
  // Repack the emptiest packs first until the unused space left is within the tolerance.
  candidates.sort((a, b) => b.unusedBytes / b.size - a.unusedBytes / a.size || b.unusedBytes - a.unusedBytes);
  for (const c of candidates) {
    if (unusedLeft <= maxUnused * usedTotal) break;
    c.action = 'repack';
    delete c.held;
    unusedLeft -= c.unusedBytes;
  }
  return out;
}

export interface PrunePlan {
  decisions: PackDecision[];
  /** Every index object in the repository (all are superseded by the new index). */
  indexNames: string[];
  /** Those not superseded; the rest are leftovers of an interrupted prune. */
  activeIndexNames: Set<string>;
  /** Active index entries per pack. */
  indexPacks: Map<string, IndexPack>;
  usedBlobs: Set<string>;
  summary: PruneSummary;
}

export interface PruneSummary {
  packs: { total: number; keep: number; delete: number; repack: number; unreferenced: number };
  bytes: { total: number; used: number; unused: number; freed: number; rewritten: number; unusedAfter: number };
  /** Packs kept because their class's minimum storage duration has not passed. */
  heldMinAge: { packs: number; bytes: number; earlyDeletionFeeAvoidedUSD: number };
  /** Partly used archived packs not repacked because that needs a thaw (--allow-thaw). */
  heldCold: { packs: number; bytes: number; thawCostUSD: number };
  /** Reading cost of the packs this plan repacks (thaw / IA retrieval). */
  retrievalCostUSD: number;
  snapshots: number;
}

export interface PruneOptions extends DecideOptions {
  now?: Date;
  signal?: AbortSignal;
}

const GB = 1e9;

export async function planPrune(repo: Repository, opts: PruneOptions = {}): Promise<PrunePlan> {
  const now = (opts.now ?? new Date()).getTime();
  // Read in a fixed order: the plan, the packs it writes and the number of its steps are the same
  // on every run.
  const { names: indexNames, packs: indexPacks } = await repo.loadWholeIndex();

  // Everything any snapshot needs; a blob missing from the index stops the prune (data would be lost).
  const usedBlobs = new Set<string>();
  const snapshots = await repo.listSnapshots();
  for (const { id, snapshot } of snapshots) {
    const check = (c: string, type: BlobType) => {
      if (type === 'data' && !repo.index.has(c)) throw new IntegrityError(`data blob ${c}`, `used by snapshots/${id} but not in the index; run \`snap check\` (prune refuses to continue)`);
    };
    await visitReached(repo, [snapshot.tree], check, usedBlobs, () => throwIfAborted(opts.signal, INTERRUPTED));
  }

  const stored = new Map<string, FileInfo & { type: PackType }>();
  for (const f of (await repo.listPacks()).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) stored.set(f.name, f);
  const cold = coldOf(repo);
  const facts: PackFacts[] = [];
  for (const p of indexPacks.values()) {
    // Header and trailer bytes count as neither: a pack of only used blobs has nothing to reclaim.
    let used = 0;
    let unused = 0;
    for (const b of p.blobs) {
      if (usedBlobs.has(b.id)) used += b.length;
      else unused += b.length;
    }
    const f = stored.get(p.id);
    if (!f) {
      if (used > 0) throw new IntegrityError(objectPath({ type: p.type, name: p.id }), 'holds blobs snapshots use but is missing; run `snap check` (prune refuses to continue)');
      // Already gone (an earlier prune deleted it after writing its index): drop it from the index.
      facts.push({ id: p.id, type: p.type, size: 0, storageClass: 'STANDARD', ageDays: Infinity, indexed: true, usedBytes: 0, unusedBytes: 0, needsThaw: false });
      continue;
    }
    facts.push(await packFacts(f, p.type, true, used, unused, now, cold));
  }
  for (const f of stored.values()) if (!indexPacks.has(f.name)) facts.push(await packFacts(f, f.type, false, 0, f.size, now, cold));
  // A missing, unused pack is dropped from the index (and not deleted: it is gone).
  const decisions = decidePacks(facts, opts).map((d) => (d.size === 0 && d.indexed && !stored.has(d.id) ? { ...d, action: 'delete' as const } : d));
  return { decisions, indexNames, activeIndexNames: new Set(repo.index.indexNames), indexPacks, usedBlobs, summary: summarize(decisions, snapshots.length, opts) };
}

async function packFacts(f: FileInfo, type: PackType, indexed: boolean, used: number, unused: number, now: number, cold: ReturnType<typeof coldOf>): Promise<PackFacts> {
  const storageClass = (f.storageClass ?? 'STANDARD').toUpperCase();
  let needsThaw = false;
  // Only partly used archived packs would be read; ask the backend about those alone.
  if (cold && ARCHIVE_CLASSES.has(storageClass) && used > 0 && unused > 0) {
    const st = await cold.coldState({ type, name: f.name });
    needsThaw = st.archived && st.restore !== 'done';
  }
  return { id: f.name, type, size: f.size, storageClass, ageDays: f.modified ? (now - f.modified.getTime()) / DAY_MS : 0, indexed, usedBytes: used, unusedBytes: unused, needsThaw };
}

function coldOf(repo: Repository) {
  return isColdStorage(repo.backend) ? repo.backend : undefined;
}

function summarize(ds: PackDecision[], snapshots: number, opts: DecideOptions): PruneSummary {
  const s: PruneSummary = {
    packs: { total: ds.length, keep: 0, delete: 0, repack: 0, unreferenced: 0 },
    bytes: { total: 0, used: 0, unused: 0, freed: 0, rewritten: 0, unusedAfter: 0 },
    heldMinAge: { packs: 0, bytes: 0, earlyDeletionFeeAvoidedUSD: 0 },
    heldCold: { packs: 0, bytes: 0, thawCostUSD: 0 },
    retrievalCostUSD: 0,
    snapshots,
  };
  for (const d of ds) {
    s.bytes.total += d.size;
    s.bytes.used += d.usedBytes;
    s.bytes.unused += d.unusedBytes;
    if (d.action === 'keep') {
      s.packs.keep++;
      s.bytes.unusedAfter += d.unusedBytes;
      if (d.held === 'min-age') {
        s.heldMinAge.packs++;
        s.heldMinAge.bytes += d.size;
        const remaining = Math.max(0, minAgeDays(d.storageClass, opts) - d.ageDays);
        s.heldMinAge.earlyDeletionFeeAvoidedUSD += (d.size / GB) * (PRICE_GB_MONTH[d.storageClass] ?? 0) * (remaining / 30);
      } else if (d.held === 'cold') {
        s.heldCold.packs++;
        s.heldCold.bytes += d.size;
        s.heldCold.thawCostUSD += (d.size / GB) * (RETRIEVAL_GB[d.storageClass] ?? 0);
      }
    } else if (d.action === 'repack') {
      s.packs.repack++;
      s.bytes.freed += d.unusedBytes;
      s.bytes.rewritten += d.usedBytes;
      s.retrievalCostUSD += (d.size / GB) * (RETRIEVAL_GB[d.storageClass] ?? 0);
    } else {
      if (d.action === 'delete') s.packs.delete++;
      else s.packs.unreferenced++;
      s.bytes.freed += d.size;
    }
  }
  return s;
}

export interface PruneResult {
  packsWritten: number;
  packsDeleted: number;
  indexesDeleted: number;
  bytesFreed: number;
  bytesRewritten: number;
  /** Archived packs whose thaw was requested (--allow-thaw); re-run prune once they are readable. */
  thawRequested: number;
  /** Temporary files of killed writers removed (local repositories), and their bytes. */
  tempFilesRemoved: number;
  tempBytesRemoved: number;
}

/**
 * Temporary files older than this are left by killed writers, not written by a running one: a
 * pack is renamed into place seconds after its first byte, and prune holds the exclusive lock.
 */
const STALE_TEMP_MS = 3600_000;

/**
 * Test hook: SNAP_TEST_CRASH_AT=N kills the process (SIGKILL, no cleanup) right after the Nth
 * write or delete of a prune, so crash-safety tests can stop it at seeded points. Unset in normal use.
 */
function crashHook(): () => void {
  const at = Number(process.env.SNAP_TEST_CRASH_AT ?? 0);
  let step = 0;
  return () => {
    if (at > 0 && ++step === at) process.kill(process.pid, 'SIGKILL');
  };
}

export async function executePrune(repo: Repository, plan: PrunePlan, opts: PruneOptions = {}): Promise<PruneResult> {
  const step = crashHook();
  const res: PruneResult = { packsWritten: 0, packsDeleted: 0, indexesDeleted: 0, bytesFreed: 0, bytesRewritten: 0, thawRequested: 0, tempFilesRemoved: 0, tempBytesRemoved: 0 };
  const cold = coldOf(repo);
  const repack = plan.decisions.filter((d) => d.action === 'repack');
  const keep = new Set(plan.decisions.filter((d) => d.action === 'keep').map((d) => d.id));
  // Archived packs to repack must be thawed first: request it, keep them this time.
  if (cold) {
    for (const d of repack) {
      if (!d.needsThaw) continue;
      await cold.requestThaw({ type: d.type, name: d.id }, { days: 2, tier: 'Standard' }).catch((e) => {
        if (!(e instanceof NotFoundError)) throw e;
      });
      res.thawRequested++;
      keep.add(d.id);
    }
  }
  const toRepack = repack.filter((d) => !keep.has(d.id));
  // Blobs that survive in a kept pack need no copy.
  const safe = new Set<string>();
  for (const id of keep) for (const b of plan.indexPacks.get(id)?.blobs ?? []) safe.add(b.id);

  // 1. New packs.
  const writer = new BlobWriter(repo, { workers: false, indexObjects: false, onPack: () => step() });
  try {
    for (const d of toRepack) {
      throwIfAborted(opts.signal, INTERRUPTED);
      const p = plan.indexPacks.get(d.id)!;
      const bytes = await repo.backend.load({ type: p.type, name: p.id });
      for (const b of p.blobs) {
        if (!plan.usedBlobs.has(b.id) || safe.has(b.id)) continue;
        const sealed = bytes.subarray(b.offset, b.offset + b.length);
        // Verify before copying: never carry a damaged blob into a new pack and drop the old one.
        repo.openBlob(b.id, { pack: p.id, packType: p.type, type: b.type, offset: b.offset, length: b.length, rawLength: b.rawLength, compressed: b.compressed }, sealed);
        await writer.copySealed(b.id, b.type, Buffer.from(sealed), b.rawLength, b.compressed);
        res.bytesRewritten += b.length;
      }
    }
    await writer.flush();
  } finally {
    await writer.close();
  }
  res.packsWritten = writer.storedPacks.length;

  // A pack just written is never removed, even if an earlier run left one under the same name.
  const written = new Set(writer.storedPacks.map((p) => p.id));
  const removePacks = plan.decisions.filter((d) => !written.has(d.id) && (d.action === 'delete' || d.action === 'delete-unreferenced' || (d.action === 'repack' && !keep.has(d.id))));
  const indexChanges = removePacks.some((d) => d.indexed) || writer.storedPacks.length > 0;
  // 2. One index naming every kept pack and the new ones, superseding every old index object;
  // 3. then the old index objects (with no index change: only those an interrupted prune already
  // superseded).
  if (indexChanges) {
    const packs = [...[...keep].map((id) => plan.indexPacks.get(id)).filter((p): p is IndexPack => p !== undefined), ...writer.storedPacks];
    res.indexesDeleted += (await repo.replaceIndex(plan.indexNames, packs, nextRepairMark(false, repo.index.repairMarks), step)).removed;
  } else res.indexesDeleted += await repo.removeIndexes(plan.indexNames.filter((n) => !plan.activeIndexNames.has(n)), step);
  // 4. Old packs: no index names them any more.
  for (const d of removePacks) {
    throwIfAborted(opts.signal, INTERRUPTED);
    if (d.size > 0) await removeIfPresent(repo.backend, { type: d.type, name: d.id });
    res.packsDeleted++;
    res.bytesFreed += d.action === 'repack' ? d.unusedBytes : d.size;
    step();
  }
  // 5. Half-written packs of killed backups (and other writers).
  if (hasFileStaging(repo.backend)) {
    const stale = await repo.backend.removeStale(new Date(Date.now() - STALE_TEMP_MS));
    res.tempFilesRemoved = stale.files;
    res.tempBytesRemoved = stale.bytes;
  }
  return res;
}
