import { executePrune, planPrune, type PruneOptions, type PrunePlan } from '../../engine/pruner.js';
import { ExitCode, UsageError } from '../../errors.js';
import type { Repository } from '../../repository/repository.js';
import { parseCalendarDuration } from '../../engine/retention.js';
import type { Context } from '../context.js';
import { handle, type Register } from '../command.js';
import { formatBytes } from '../output.js';
import { catalogAfterBackup } from './catalog.js';

export interface PruneArgs {
  dryRun: boolean;
  maxUnused: string;
  keepPackMinAge?: string;
  allowThaw: boolean;
}

export const pruneOptions = {
  'max-unused': { type: 'string', default: '5%', describe: 'tolerated unused space after prune, as a share of the used data (e.g. 5%, 0%)' },
  'keep-pack-min-age': { type: 'string', describe: 'override the minimum storage durations of cold/IA classes (DEEP_ARCHIVE 180d, GLACIER 90d, GLACIER_IR 90d, STANDARD_IA 30d), e.g. 0d' },
  'allow-thaw': { type: 'boolean', default: false, describe: 'thaw archived packs that need rewriting (costs money: see the plan first)' },
} as const;

export function pruneOptionsFrom(a: PruneArgs, signal: AbortSignal): PruneOptions {
  const m = /^(\d+(?:\.\d+)?)%$/.exec(a.maxUnused.trim());
  if (!m || Number(m[1]) > 100) throw new UsageError(`--max-unused: "${a.maxUnused}" is not a percentage like 5%`);
  const opts: PruneOptions = { maxUnused: Number(m[1]) / 100, allowThaw: a.allowThaw, signal };
  if (a.keepPackMinAge !== undefined) {
    const d = parseCalendarDuration(a.keepPackMinAge === '0' ? '0d' : a.keepPackMinAge, '--keep-pack-min-age');
    opts.keepPackMinAgeDays = d.years * 365 + d.months * 30 + d.days + d.hours / 24;
  }
  return opts;
}

/** The plan: a dry run's report, else a summary that --quiet drops. */
function showPlan(ctx: Context, plan: PrunePlan, dryRun: boolean): void {
  const s = plan.summary;
  const say = (text: string) => (dryRun ? ctx.out.line(text) : ctx.out.info(text));
  say(`${s.snapshots} snapshots; ${s.packs.total} packs, ${formatBytes(s.bytes.total)}: used ${formatBytes(s.bytes.used)}, unused ${formatBytes(s.bytes.unused)}`);
  say(`plan: delete ${s.packs.delete} unused packs and ${s.packs.unreferenced} unreferenced packs, repack ${s.packs.repack} packs, keep ${s.packs.keep}`);
  say(`      frees ${formatBytes(s.bytes.freed)}, rewrites ${formatBytes(s.bytes.rewritten)}, leaves ${formatBytes(s.bytes.unusedAfter)} unused`);
  if (s.heldMinAge.packs > 0) say(`      kept ${s.heldMinAge.packs} packs (${formatBytes(s.heldMinAge.bytes)}) younger than their storage class's minimum duration: early-deletion fees avoided ~$${s.heldMinAge.earlyDeletionFeeAvoidedUSD.toFixed(4)}`);
  if (s.heldCold.packs > 0) say(`      kept ${s.heldCold.packs} partly used archived packs (${formatBytes(s.heldCold.bytes)}): repacking needs a thaw costing ~$${s.heldCold.thawCostUSD.toFixed(4)} (--allow-thaw)`);
  if (s.retrievalCostUSD > 0) say(`      reading the packs to repack costs ~$${s.retrievalCostUSD.toFixed(4)} (thaw / retrieval)`);
}

/** Plans and (unless dry-run) executes a prune; shared with `forget --prune`. */
export async function runPrune(ctx: Context, repo: Repository, a: PruneArgs): Promise<number> {
  const opts = pruneOptionsFrom(a, ctx.signal);
  const plan = await planPrune(repo, opts);
  showPlan(ctx, plan, a.dryRun);
  if (a.dryRun) {
    ctx.out.data({ message_type: 'prune_plan', dry_run: true, ...plan.summary, packs_detail: plan.decisions.filter((d) => d.action !== 'keep' || d.held).map((d) => ({ id: d.id, type: d.type, size: d.size, storage_class: d.storageClass, action: d.action, held: d.held ?? null, used: d.usedBytes, unused: d.unusedBytes })) });
    ctx.out.line('dry run: nothing changed');
    return 0;
  }
  // The catalog follows prune the way it follows backup (warning-only). Prune removes no snapshot,
  // so syncing here is the same as syncing after it, and here the index the plan just loaded still
  // names the packs where trees are (afterwards it is stale for repacked ones).
  await catalogAfterBackup(ctx);
  const r = await executePrune(repo, plan, opts);
  ctx.out.info(`wrote ${r.packsWritten} packs, deleted ${r.packsDeleted} packs and ${r.indexesDeleted} index objects; freed ${formatBytes(r.bytesFreed)}, rewrote ${formatBytes(r.bytesRewritten)}`);
  if (r.tempFilesRemoved > 0) ctx.out.info(`removed ${r.tempFilesRemoved} temporary files (${formatBytes(r.tempBytesRemoved)}) left by interrupted writers`);
  if (r.thawRequested > 0) ctx.out.line(`${r.thawRequested} archived packs are being thawed; run prune again once they are readable to repack them`);
  ctx.out.data({ message_type: 'prune', dry_run: false, plan: plan.summary, ...r });
  return r.thawRequested > 0 ? ExitCode.thawPending : 0;
}

export const registerPrune: Register = (y) =>
  y.command(
    'prune',
    'remove data no snapshot uses: delete unused packs, repack partly used ones (cold-aware)',
    (c) => c.option('dry-run', { alias: 'n', type: 'boolean', default: false, describe: 'print the plan, change nothing' }).options(pruneOptions),
    handle<PruneArgs>(async (ctx, a) => {
      pruneOptionsFrom(a, ctx.signal); // bad flags fail before the lock is taken
      const repo = await ctx.repository({ index: false, lock: a.dryRun ? 'shared' : 'exclusive', readOnly: a.dryRun });
      return runPrune(ctx, repo, a);
    }),
  );
