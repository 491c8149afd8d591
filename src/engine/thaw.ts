// Selective restore from archive storage classes: find which needed packs are cold, price a thaw
// (plan mode sends nothing), request thaws only for packs still cold, remember the outstanding
// requests locally (<cache>/<repository id>/thaw.json, format-spec ch. 15) so a later identical
// command resumes, and wait for them when asked to. Hooks into the restorer through readablePacks /
// awaitPacks, so hot and thawed packs are restored while the others thaw.
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../fs/atomic.js';
import { isColdStorage, type Backend, type ThawTier } from '../backend/backend.js';
import { sleep, throwIfAborted } from '../backend/common.js';
import { UsageError } from '../errors.js';
import type { PackType } from '../format/index.js';
import { mapLimit } from '../util/concurrency.js';
import { THAW_TIERS, type PriceTable } from './prices.js';
import type { PackNeed } from './restorer.js';

/** AWS bills retrieval per GiB ("GB" on its price pages). */
const GB = 2 ** 30;
const HOUR_MS = 3600_000;

/** hot: readable now; archived: cold, no thaw requested; ongoing: thaw under way; thawed: readable until expiry. */
export type PackColdness = 'hot' | 'archived' | 'ongoing' | 'thawed';

export interface PackState extends PackNeed {
  /** Storage class as the backend reports it; 'none' for backends without classes (local). */
  storageClass: string;
  state: PackColdness;
  expiry?: Date;
}

/** Asks the backend (HEAD on S3) for the state of each pack. Reads no pack. */
export async function packStates(backend: Backend, packs: PackNeed[], opts: { signal?: AbortSignal; concurrency?: number } = {}): Promise<PackState[]> {
  if (!isColdStorage(backend)) return packs.map((p) => ({ ...p, storageClass: 'none', state: 'hot' }));
  const out: PackState[] = new Array(packs.length);
  await mapLimit(packs.keys(), opts.concurrency ?? 8, async (i) => {
    throwIfAborted(opts.signal);
    const p = packs[i]!;
    const c = await backend.coldState({ type: p.type, name: p.id });
    const state: PackColdness = !c.archived ? 'hot' : c.restore === 'done' ? 'thawed' : c.restore === 'ongoing' ? 'ongoing' : 'archived';
    out[i] = { ...p, storageClass: c.storageClass, state, ...(c.expiry ? { expiry: c.expiry } : {}) };
  });
  return out;
}

export interface Amount {
  packs: number;
  bytes: number;
}

export interface TierEstimate {
  tier: ThawTier;
  hoursMin: number;
  hoursMax: number;
  /** Retrieval plus request charges for the packs still to thaw. */
  costUSD: number;
}

export interface ClassPlan {
  storageClass: string;
  total: Amount;
  /** Readable now (hot, or thawed). */
  readable: Amount;
  ongoing: Amount;
  /** Archived with no thaw requested: what a restore would request. */
  toThaw: Amount;
  /** Retrieval fee of reading the readable packs (STANDARD_IA, GLACIER_IR), when the class has one. */
  retrievalUSD?: number;
  /** Tiers the price table offers for this class (empty for instantly readable classes). */
  tiers: TierEstimate[];
}

export interface ThawPlan {
  prices: { date: string; source: string; region: string };
  total: Amount;
  readable: Amount;
  ongoing: Amount;
  toThaw: Amount;
  classes: ClassPlan[];
  /** Per tier over every class that needs a thaw; absent when some such class does not offer the tier. */
  tiers: TierEstimate[];
}

const zero = (): Amount => ({ packs: 0, bytes: 0 });
const add = (a: Amount, size: number) => {
  a.packs++;
  a.bytes += size;
};

export function planThaw(states: PackState[], prices: PriceTable): ThawPlan {
  const classes = new Map<string, ClassPlan>();
  const plan: ThawPlan = { prices: { date: prices.date, source: prices.source, region: prices.region }, total: zero(), readable: zero(), ongoing: zero(), toThaw: zero(), classes: [], tiers: [] };
  for (const s of states) {
    let c = classes.get(s.storageClass);
    if (!c) classes.set(s.storageClass, (c = { storageClass: s.storageClass, total: zero(), readable: zero(), ongoing: zero(), toThaw: zero(), tiers: [] }));
    add(c.total, s.size);
    add(plan.total, s.size);
    const bucket = s.state === 'archived' ? 'toThaw' : s.state === 'ongoing' ? 'ongoing' : 'readable';
    add(c[bucket], s.size);
    add(plan[bucket], s.size);
  }
  for (const c of classes.values()) {
    const price = prices.classes[c.storageClass];
    if (price?.retrievalPerGB !== undefined) c.retrievalUSD = (c.readable.bytes / GB) * price.retrievalPerGB;
    for (const tier of THAW_TIERS) {
      const t = price?.tiers?.[tier];
      if (t) c.tiers.push({ tier, hoursMin: t.hoursMin, hoursMax: t.hoursMax, costUSD: (c.toThaw.bytes / GB) * t.perGB + (c.toThaw.packs / 1000) * t.per1000Requests });
    }
  }
  plan.classes = [...classes.values()].sort((a, b) => b.total.bytes - a.total.bytes);
  const cold = plan.classes.filter((c) => c.toThaw.packs > 0);
  if (cold.length > 0) {
    for (const tier of THAW_TIERS) {
      const per = cold.map((c) => c.tiers.find((t) => t.tier === tier));
      if (per.some((t) => !t)) continue;
      plan.tiers.push({
        tier,
        hoursMin: Math.max(...per.map((t) => t!.hoursMin)),
        hoursMax: Math.max(...per.map((t) => t!.hoursMax)),
        costUSD: per.reduce((s, t) => s + t!.costUSD, 0),
      });
    }
  }
  return plan;
}

// --- local state of outstanding thaw requests -------------------------------------------------

export interface ThawRecord {
  type: PackType;
  size: number;
  storageClass: string;
  tier: ThawTier;
  days: number;
  /** ISO 8601 */
  requestedAt: string;
  /** requestedAt + the tier's maximum time from the price table (ISO 8601). */
  expectedBy: string;
}

interface ThawStateDoc {
  version: 1;
  repository: string;
  requests: Record<string, ThawRecord>;
}

/** The thaw requests this host has sent and not yet seen through, per repository. */
export class ThawState {
  private constructor(readonly file: string, private readonly doc: ThawStateDoc) {}

  /** Loads the state; a missing or unreadable file (it is only a cache) starts empty. */
  static async load(file: string, repository: string): Promise<ThawState> {
    const empty = (): ThawStateDoc => ({ version: 1, repository, requests: {} });
    try {
      const doc = JSON.parse(await readFile(file, 'utf8')) as ThawStateDoc;
      const ok = doc?.version === 1 && doc.repository === repository && doc.requests && typeof doc.requests === 'object';
      return new ThawState(file, ok ? doc : empty());
    } catch {
      return new ThawState(file, empty());
    }
  }

  get(pack: string): ThawRecord | undefined {
    return this.doc.requests[pack];
  }

  get size(): number {
    return Object.keys(this.doc.requests).length;
  }

  record(pack: string, r: ThawRecord): void {
    this.doc.requests[pack] = r;
  }

  forget(packs: Iterable<string>): void {
    for (const p of packs) delete this.doc.requests[p];
  }

  /** Written atomically (temp file, fsync, rename) so a crash never leaves half a file. */
  async save(): Promise<void> {
    await writeFileAtomic(this.file, JSON.stringify(this.doc, null, 2) + '\n');
  }
}

// --- requesting and waiting -------------------------------------------------------------------

export interface ThawProgress {
  pending: number;
  bytes: number;
  /** When the next check happens. */
  nextCheck: Date;
}

export interface ThawerOptions {
  tier: ThawTier;
  days: number;
  prices: PriceTable;
  state: ThawState;
  signal?: AbortSignal;
  /** Give up waiting after this long (awaitPacks then resolves empty). */
  maxWaitMs?: number;
  /** First pause between checks; doubles up to maxPollMs. */
  firstPollMs?: number;
  maxPollMs?: number;
  onProgress?: (p: ThawProgress) => void;
  now?: () => number;
}

/** Drives thaws for one restore: readable() is the restorer's readablePacks hook, awaitPacks() its awaitPacks. */
export class Thawer {
  /** Thaw requests sent by this run. */
  readonly requested: PackState[] = [];
  /** States found at the start (for the summary). */
  initial: PackState[] = [];
  private readonly now: () => number;
  private waitStarted?: number;
  private poll: number;

  constructor(private readonly backend: Backend, private readonly opts: ThawerOptions) {
    this.now = opts.now ?? Date.now;
    this.poll = opts.firstPollMs ?? 1000;
  }

  async readable(packs: PackNeed[]): Promise<Set<string>> {
    if (!isColdStorage(this.backend)) return new Set(packs.map((p) => p.id));
    const states = await packStates(this.backend, packs, this.opts.signal ? { signal: this.opts.signal } : {});
    this.initial = states;
    const cold = states.filter((s) => s.state === 'archived');
    // Refuse a tier a class does not offer before sending anything (DEEP_ARCHIVE has no Expedited).
    for (const s of cold) {
      const c = this.opts.prices.classes[s.storageClass];
      if (c?.tiers && !c.tiers[this.opts.tier]) {
        throw new UsageError(`--thaw-tier ${this.opts.tier} is not available for ${s.storageClass}`, { hint: `use ${Object.keys(c.tiers).join(' or ')}` });
      }
    }
    const backend = this.backend;
    try {
      await mapLimit(cold, 8, async (s) => {
        throwIfAborted(this.opts.signal);
        await backend.requestThaw({ type: s.type, name: s.id }, { days: this.opts.days, tier: this.opts.tier });
        const at = this.now();
        const hours = this.opts.prices.classes[s.storageClass]?.tiers?.[this.opts.tier]?.hoursMax ?? 48;
        this.opts.state.record(s.id, { type: s.type, size: s.size, storageClass: s.storageClass, tier: this.opts.tier, days: this.opts.days, requestedAt: new Date(at).toISOString(), expectedBy: new Date(at + hours * HOUR_MS).toISOString() });
        this.requested.push(s);
      });
    } finally {
      // Whatever was requested before a failure is recorded, so the next run does not lose track.
      if (this.requested.length > 0) await this.opts.state.save();
    }
    return new Set(states.filter((s) => s.state === 'hot' || s.state === 'thawed').map((s) => s.id));
  }

  /**
   * Polls the pending packs with backoff until some are readable; empty when maxWaitMs runs out.
   * The pause keeps growing across calls, also once packs are readable: a poll is a HEAD per
   * pending pack, and thaws of thousands of packs finish one by one over hours. Going back to the
   * first pause at each readable pack polled every pending pack every few seconds for as long as
   * thaws kept finishing.
   */
  async awaitPacks(pending: PackNeed[]): Promise<Set<string>> {
    this.waitStarted ??= this.now();
    const deadline = this.waitStarted + (this.opts.maxWaitMs ?? 72 * HOUR_MS);
    const maxPoll = this.opts.maxPollMs ?? 15 * 60_000;
    for (;;) {
      const left = deadline - this.now();
      if (left <= 0) return new Set();
      const pause = Math.min(this.poll, left);
      this.opts.onProgress?.({ pending: pending.length, bytes: pending.reduce((n, p) => n + p.size, 0), nextCheck: new Date(this.now() + pause) });
      await sleep(pause, this.opts.signal);
      this.poll = Math.min(this.poll * 2, maxPoll);
      const states = await packStates(this.backend, pending, this.opts.signal ? { signal: this.opts.signal } : {});
      const ready = states.filter((s) => s.state === 'hot' || s.state === 'thawed');
      // A thaw that expired before we read it (or was never sent) is cold again: ask once more.
      const lapsed = states.filter((s) => s.state === 'archived');
      if (lapsed.length > 0) await this.readable(lapsed);
      if (ready.length > 0) return new Set(ready.map((s) => s.id));
    }
  }

  /** Drops the records of packs this run has read; keeps the ones still pending. */
  async finish(read: Iterable<string>): Promise<void> {
    const before = this.opts.state.size;
    this.opts.state.forget(read);
    if (this.opts.state.size !== before) await this.opts.state.save();
  }
}
