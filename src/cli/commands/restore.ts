import { join } from 'node:path';
import { isColdStorage, type ThawTier } from '../../backend/backend.js';
import { restore, type OverwriteMode, type PackNeed } from '../../engine/restorer.js';
import { DEFAULT_PRICES, loadPriceTable, THAW_TIERS } from '../../engine/prices.js';
import { packStates, planThaw, Thawer, ThawState, type ThawPlan } from '../../engine/thaw.js';
import { ExitCode, ThawPendingError, UsageError } from '../../errors.js';
import { parseWaitDuration } from '../../repository/lock.js';
import { shortId } from '../../model/snapshot.js';
import { handle, type Register } from '../command.js';
import { patternsOf, splitSnapshotPath } from '../args.js';
import { repositoryCacheDir } from '../../paths.js';
import { formatBytes, table } from '../output.js';
import { isNativeAvailable, setMmapThreshold } from '../../native/binding.js';

/**
 * A restore frees a decrypted and a decompressed buffer per blob, about 1 MiB each for large
 * files. Under the CLI's 256 KiB mmap threshold (which bounds a backup's RSS) each was a fresh
 * mapping: 1 GiB restored took 594k page faults instead of 138k, 1.5 s more system time, for ~10%
 * less peak RSS. Below 32 MiB (glibc's own ceiling), freed buffers are reused instead.
 */
const RESTORE_MMAP_THRESHOLD = 32 << 20;

interface RestoreArgs {
  snapshot: string;
  target?: string;
  include?: string[];
  exclude?: string[];
  iinclude?: string[];
  iexclude?: string[];
  includeFile?: string[];
  excludeFile?: string[];
  iincludeFile?: string[];
  iexcludeFile?: string[];
  verify: boolean;
  overwrite: string;
  sparse: boolean;
  dryRun: boolean;
  plan: boolean;
  thawTier: ThawTier;
  thawDays: number;
  wait?: boolean;
  maxWait: string;
  priceTable?: string;
}

const usd = (n: number) => (n === 0 ? '$0' : n < 0.01 ? `$${n.toPrecision(2)}` : `$${n.toFixed(2)}`);

function hours(min: number, max: number): string {
  const one = (h: number) => (h < 1 ? `${Math.round(h * 60)} min` : `${h} h`);
  return min === 0 ? `within ${one(max)}` : max < 1 ? `${Math.round(min * 60)}-${Math.round(max * 60)} min` : `${min}-${max} h`;
}

function printPlan(out: { line(t?: string): void }, plan: ThawPlan): void {
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

export const registerRestore: Register = (y) =>
  y.command(
    'restore <snapshot>',
    'restore a snapshot, or SNAPSHOT:PATH for part of it, into --target. Data packs in GLACIER / DEEP_ARCHIVE are thawed first: ' +
      'only the packs the restore needs, and only those still cold. Without --wait, snap restores what is readable, requests the thaws, ' +
      'and exits with code 4 (thaw pending); run the same command again later to finish. --plan shows the packs, time and cost first.',
    (c) =>
      c
        .positional('snapshot', { type: 'string', demandOption: true, describe: 'ID prefix or "latest", optionally :PATH inside the snapshot' })
        .option('target', { alias: 't', type: 'string', describe: 'directory to restore into (not needed with --plan)' })
        .option('include', { alias: 'i', type: 'string', array: true, describe: 'restore only paths matching GLOB' })
        .option('exclude', { alias: 'e', type: 'string', array: true, describe: 'skip paths matching GLOB' })
        .option('iinclude', { type: 'string', array: true, describe: 'like --include, ignoring case' })
        .option('iexclude', { type: 'string', array: true, describe: 'like --exclude, ignoring case' })
        .option('include-file', { type: 'string', array: true, describe: 'read --include patterns from a file, one per line (# comments)' })
        .option('exclude-file', { type: 'string', array: true, describe: 'read --exclude patterns from a file' })
        .option('iinclude-file', { type: 'string', array: true, describe: 'read --iinclude patterns from a file' })
        .option('iexclude-file', { type: 'string', array: true, describe: 'read --iexclude patterns from a file' })
        .option('verify', { type: 'boolean', default: false, describe: 'read restored files back and check them against the snapshot' })
        .option('overwrite', { type: 'string', default: 'always', choices: ['always', 'if-changed', 'never'], describe: 'existing files: make them match (always), only when size or mtime differ (if-changed), or keep them (never)' })
        .option('sparse', { type: 'boolean', default: false, describe: 'leave runs of zeros as holes' })
        .option('dry-run', { alias: 'n', type: 'boolean', default: false, describe: 'show what would be restored' })
        .option('plan', { type: 'boolean', default: false, describe: 'show the packs needed by storage class and, per thaw tier, the time and cost; request and read nothing' })
        .option('thaw-tier', { type: 'string', default: 'Standard', choices: [...THAW_TIERS], describe: 'retrieval tier for thaw requests (DEEP_ARCHIVE has no Expedited)' })
        .option('thaw-days', { type: 'number', default: 7, describe: 'days a thawed copy stays readable' })
        .option('wait', { type: 'boolean', describe: 'wait for thaws, polling with backoff, restoring packs as they become readable (default: --no-wait, exit 4 while thaws are pending)' })
        .option('max-wait', { type: 'string', default: '72h', describe: 'with --wait: give up (exit 4, resumable) after DURATION' })
        .option('price-table', { type: 'string', describe: 'JSON price table for --plan (default: built-in AWS us-east-1 prices; format-spec/15-thaw-state.md)' }),
    handle<RestoreArgs>(async (ctx, a) => {
      if (!a.target && !a.plan) throw new UsageError('--target is required');
      if (!Number.isInteger(a.thawDays) || a.thawDays < 1) throw new UsageError(`--thaw-days must be a whole number of days >= 1, got ${a.thawDays}`);
      const maxWaitMs = parseWaitDuration(a.maxWait, '--max-wait');
      // Before the crypto workers allocate anything (the setting is process-wide).
      if (isNativeAvailable()) setMmapThreshold(RESTORE_MMAP_THRESHOLD);
      const prices = a.priceTable ? await loadPriceTable(a.priceTable) : DEFAULT_PRICES;
      const repo = await ctx.repository({ readOnly: true });
      const ref = splitSnapshotPath(a.snapshot);
      const { id, snapshot } = await repo.findSnapshot(ref.snapshot);
      const out = ctx.out;
      const where = `${shortId(id)}${ref.path !== '/' ? `:${ref.path}` : ''}`;
      const base = {
        tree: snapshot.tree,
        subpath: ref.path,
        include: patternsOf(a.include, a.includeFile, '--include-file'),
        exclude: patternsOf(a.exclude, a.excludeFile, '--exclude-file'),
        iinclude: patternsOf(a.iinclude, a.iincludeFile, '--iinclude-file'),
        iexclude: patternsOf(a.iexclude, a.iexcludeFile, '--iexclude-file'),
        signal: ctx.signal,
      };

      if (a.plan) {
        // A dry run reads trees (meta packs) only; packStates only asks for storage classes.
        const res = await restore(repo, { ...base, target: a.target ?? '.', dryRun: true });
        const plan = planThaw(await packStates(repo.backend, res.packsNeeded, { signal: ctx.signal }), prices);
        out.line(`restore plan for ${where}: ${res.filesRestored} files from ${plan.total.packs} packs (${formatBytes(plan.total.bytes)}); nothing requested`);
        printPlan(out, plan);
        out.data({ message_type: 'plan', snapshot_id: id, path: ref.path, files: res.filesRestored, ...plan });
        return ExitCode.ok;
      }

      const state = await ThawState.load(join(repositoryCacheDir(repo.config.id, ctx.args.cacheDir), 'thaw.json'), repo.config.id);
      const thawer = new Thawer(repo.backend, {
        tier: a.thawTier,
        days: a.thawDays,
        prices,
        state,
        maxWaitMs,
        signal: ctx.signal,
        onProgress: (p) => {
          out.progress(`waiting for ${p.pending} packs (${formatBytes(p.bytes)}) to thaw; next check ${p.nextCheck.toLocaleTimeString()}`, true);
          out.data({ message_type: 'thaw_wait', packs_pending: p.pending, bytes_pending: p.bytes, next_check: p.nextCheck.toISOString() });
        },
      });
      const res = await restore(repo, {
        ...base,
        target: a.target!,
        overwrite: a.overwrite as OverwriteMode,
        sparse: a.sparse,
        verify: a.verify,
        dryRun: a.dryRun,
        // Only archive storage needs every pack known before the first is read (to plan thaws);
        // otherwise packs are read while the trees still are.
        ...(isColdStorage(repo.backend) ? { readablePacks: (p: PackNeed[]) => thawer.readable(p) } : {}),
        ...(a.wait ? { awaitPacks: (p) => thawer.awaitPacks(p) } : {}),
        onWarning: (m) => out.warn(m),
        onProgress: (p) => out.progress(`${p.filesDone}/${p.filesTotal} files, ${formatBytes(p.bytesDone)}/${formatBytes(p.bytesTotal)}`),
      });
      out.clearProgress();
      const pending = new Set(res.packsPending);
      if (!a.dryRun) await thawer.finish(res.packsNeeded.filter((p) => !pending.has(p.id)).map((p) => p.id));
      const packBytes = res.packsNeeded.reduce((s, p) => s + p.size, 0);
      const pendingBytes = res.packsNeeded.filter((p) => pending.has(p.id)).reduce((s, p) => s + p.size, 0);
      if (a.dryRun) out.line(`would restore ${res.filesRestored} files from snapshot ${shortId(id)} (${res.filesSkipped} already up to date), reading ${res.packsNeeded.length} packs (${formatBytes(packBytes)})`);
      else {
        out.info(`restored snapshot ${where} to ${a.target}: ${res.filesRestored} files (${formatBytes(res.bytesWritten)} written), ${res.filesSkipped} already up to date, ${res.dirs} directories, ${res.otherNodes} other`);
        if (thawer.requested.length > 0) out.line(`requested ${a.thawTier} thaw of ${thawer.requested.length} packs (${formatBytes(thawer.requested.reduce((s, p) => s + p.size, 0))}) for ${a.thawDays} days`);
        if (a.verify && pending.size === 0) {
          if (res.verifyErrors === 0) out.info('verified: every restored file matches the snapshot');
          else out.line(`verification FAILED for ${res.verifyErrors} files`);
        }
      }
      out.data({ message_type: 'summary', snapshot_id: id, dry_run: a.dryRun, files_restored: res.filesRestored, files_skipped: res.filesSkipped, dirs: res.dirs, other: res.otherNodes, bytes_written: res.bytesWritten, packs_needed: res.packsNeeded.length, packs_bytes: packBytes, packs_read: res.packsRead, packs_pending: pending.size, bytes_pending: pendingBytes, thaw_requested: thawer.requested.length, verify_errors: res.verifyErrors, warnings: res.warnings });
      if (pending.size > 0) {
        const expected = [...pending].map((p) => state.get(p)?.expectedBy).filter((e): e is string => !!e).sort().pop();
        throw new ThawPendingError(`${pending.size} packs (${formatBytes(pendingBytes)}) are still thawing${expected ? `, expected readable by ${expected}` : ''}; their files are not restored yet`, {
          hint: `run the same command again then (files already restored are kept), or add --wait`,
        });
      }
      return res.verifyErrors > 0 ? ExitCode.error : ExitCode.ok;
    }),
  );
