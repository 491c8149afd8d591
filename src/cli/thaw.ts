// The thaw flags and output shared by the commands that read data packs out of archive storage
// (restore, copy): price plan, thaw requests, waiting, and the "still thawing" exit.
import { join } from 'node:path';
import type { ThawTier } from '../backend/backend.js';
import type { Repository } from '../repository/repository.js';
import { DEFAULT_PRICES, loadPriceTable, THAW_TIERS, type PriceTable } from '../engine/prices.js';
import type { PackNeed } from '../engine/restorer.js';
import { Thawer, ThawState, type ThawPlan } from '../engine/thaw.js';
import { ThawPendingError, UsageError } from '../errors.js';
import { repositoryCacheDir } from '../paths.js';
import { parseWaitDuration } from '../repository/lock.js';
import type { Context } from './context.js';
import { formatBytes, table } from './output.js';

export interface ThawArgs {
  plan: boolean;
  thawTier: ThawTier;
  thawDays: number;
  wait?: boolean;
  maxWait: string;
  priceTable?: string;
}

export const THAW_FLAGS = {
  plan: { type: 'boolean', default: false, describe: 'show the packs needed by storage class and, per thaw tier, the time and cost; request and read nothing' },
  'thaw-tier': { type: 'string', default: 'Standard', choices: [...THAW_TIERS], describe: 'retrieval tier for thaw requests (DEEP_ARCHIVE has no Expedited)' },
  'thaw-days': { type: 'number', default: 7, describe: 'days a thawed copy stays readable' },
  wait: { type: 'boolean', describe: 'wait for thaws, polling with backoff, going on as packs become readable (default: --no-wait, exit 4 while thaws are pending)' },
  'max-wait': { type: 'string', default: '72h', describe: 'with --wait: give up (exit 4, resumable) after DURATION' },
  'price-table': { type: 'string', describe: 'JSON price table for --plan (default: built-in AWS us-east-1 prices; format-spec/15-thaw-state.md)' },
} as const;

/** The price table and wait limit the flags give; checks them before anything is read. */
export async function thawSettings(a: ThawArgs): Promise<{ prices: PriceTable; maxWaitMs: number }> {
  if (!Number.isInteger(a.thawDays) || a.thawDays < 1) throw new UsageError(`--thaw-days must be a whole number of days >= 1, got ${a.thawDays}`);
  const maxWaitMs = parseWaitDuration(a.maxWait, '--max-wait');
  return { prices: a.priceTable ? await loadPriceTable(a.priceTable) : DEFAULT_PRICES, maxWaitMs };
}

/** A Thawer for `repo`'s packs, keeping its requests in the repository's thaw.json (ch. 15). */
export async function thawerFor(ctx: Context, repo: Repository, a: ThawArgs, settings: { prices: PriceTable; maxWaitMs: number }): Promise<{ thawer: Thawer; state: ThawState }> {
  const state = await ThawState.load(join(repositoryCacheDir(repo.config.id, ctx.args.cacheDir), 'thaw.json'), repo.config.id);
  const out = ctx.out;
  const thawer = new Thawer(repo.backend, {
    tier: a.thawTier,
    days: a.thawDays,
    prices: settings.prices,
    state,
    maxWaitMs: settings.maxWaitMs,
    signal: ctx.signal,
    onProgress: (p) => {
      out.progress(`waiting for ${p.pending} packs (${formatBytes(p.bytes)}) to thaw; next check ${p.nextCheck.toLocaleTimeString()}`, true);
      out.data({ message_type: 'thaw_wait', packs_pending: p.pending, bytes_pending: p.bytes, next_check: p.nextCheck.toISOString() });
    },
  });
  return { thawer, state };
}

/** The line that says which thaws this run requested, if any. */
export function requestedLine(thawer: Thawer, a: ThawArgs): string | undefined {
  const n = thawer.requested.length;
  return n > 0 ? `requested ${a.thawTier} thaw of ${n} packs (${formatBytes(thawer.requested.reduce((s, p) => s + p.size, 0))}) for ${a.thawDays} days` : undefined;
}

/** Exit 4: `pending` packs still thaw, so `what` is not done yet. */
export function thawPending(state: ThawState, pending: readonly PackNeed[], what: string, hint: string): ThawPendingError {
  const bytes = pending.reduce((s, p) => s + p.size, 0);
  const expected = pending.map((p) => state.get(p.id)?.expectedBy).filter((e): e is string => !!e).sort().pop();
  return new ThawPendingError(`${pending.length} packs (${formatBytes(bytes)}) are still thawing${expected ? `, expected readable by ${expected}` : ''}; ${what}`, { hint });
}

const usd = (n: number) => (n === 0 ? '$0' : n < 0.01 ? `$${n.toPrecision(2)}` : `$${n.toFixed(2)}`);

function hours(min: number, max: number): string {
  const one = (h: number) => (h < 1 ? `${Math.round(h * 60)} min` : `${h} h`);
  return min === 0 ? `within ${one(max)}` : max < 1 ? `${Math.round(min * 60)}-${Math.round(max * 60)} min` : `${min}-${max} h`;
}

export function printPlan(out: { line(t?: string): void }, plan: ThawPlan): void {
  const amount = (a: { packs: number; bytes: number }) => (a.packs === 0 ? '-' : `${a.packs} (${formatBytes(a.bytes)})`);
  for (const l of table(
    plan.classes.map((c) => [c.storageClass === 'none' ? '(no classes)' : c.storageClass, amount(c.total), amount(c.readable), amount(c.ongoing), amount(c.toThaw), c.retrievalUSD !== undefined ? usd(c.retrievalUSD) : '-']),
    ['class', 'packs', 'readable now', 'thawing', 'to thaw', 'retrieval'],
  )) out.line('  ' + l);
  if (plan.toThaw.packs === 0) {
    out.line(plan.ongoing.packs > 0 ? 'no new thaw needed; some packs are still thawing' : 'every needed pack is readable now');
    return;
  }
  out.line(`thaw ${amount(plan.toThaw)}, by retrieval tier (prices ${plan.prices.region} as of ${plan.prices.date}; data transfer not included):`);
  for (const l of table(plan.tiers.map((t) => [t.tier, hours(t.hoursMin, t.hoursMax), usd(t.costUSD)]), ['tier', 'time', 'cost'])) out.line('  ' + l);
  for (const c of plan.classes) {
    for (const tier of THAW_TIERS) if (c.toThaw.packs > 0 && !c.tiers.some((t) => t.tier === tier)) out.line(`  (${tier} is not offered for ${c.storageClass})`);
  }
}
