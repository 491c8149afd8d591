import { isColdStorage } from '../../backend/backend.js';
import { restore, type OverwriteMode, type PackNeed } from '../../engine/restorer.js';
import { packStates, planThaw } from '../../engine/thaw.js';
import { ExitCode, UsageError } from '../../errors.js';
import { shortId } from '../../model/snapshot.js';
import { handle, type Register } from '../command.js';
import { patternsOf, splitSnapshotPath } from '../args.js';
import { formatBytes } from '../output.js';
import { printPlan, requestedLine, THAW_FLAGS, thawerFor, thawPending, thawSettings, type ThawArgs } from '../thaw.js';
import { isNativeAvailable, setMmapThreshold } from '../../native/binding.js';
import { holdOldGeneration } from '../v8-flags.js';

/**
 * A restore frees a decrypted and a decompressed buffer per blob, about 1 MiB each for large
 * files. Under the CLI's 256 KiB mmap threshold (which bounds a backup's RSS) each was a fresh
 * mapping: 1 GiB restored took 594k page faults instead of 138k, 1.5 s more system time, for ~10%
 * less peak RSS. Below 32 MiB (glibc's own ceiling), freed buffers are reused instead.
 */
const RESTORE_MMAP_THRESHOLD = 32 << 20;

interface RestoreArgs extends ThawArgs {
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
        .options(THAW_FLAGS),
    handle<RestoreArgs>(async (ctx, a) => {
      if (!a.target && !a.plan) throw new UsageError('--target is required');
      const thaw = await thawSettings(a);
      // Before the crypto workers allocate anything (the setting is process-wide).
      if (isNativeAvailable()) setMmapThreshold(RESTORE_MMAP_THRESHOLD);
      holdOldGeneration();
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
        const plan = planThaw(await packStates(repo.backend, res.packsNeeded, { signal: ctx.signal }), thaw.prices);
        out.line(`restore plan for ${where}: ${res.filesRestored} files from ${plan.total.packs} packs (${formatBytes(plan.total.bytes)}); nothing requested`);
        printPlan(out, plan);
        out.data({ message_type: 'plan', snapshot_id: id, path: ref.path, files: res.filesRestored, ...plan });
        return ExitCode.ok;
      }

      const { thawer, state } = await thawerFor(ctx, repo, a, thaw);
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
        const requested = requestedLine(thawer, a);
        if (requested) out.line(requested);
        if (a.verify && pending.size === 0) {
          if (res.verifyErrors === 0) out.info('verified: every restored file matches the snapshot');
          else out.line(`verification FAILED for ${res.verifyErrors} files`);
        }
      }
      out.data({ message_type: 'summary', snapshot_id: id, dry_run: a.dryRun, files_restored: res.filesRestored, files_skipped: res.filesSkipped, dirs: res.dirs, other: res.otherNodes, bytes_written: res.bytesWritten, packs_needed: res.packsNeeded.length, packs_bytes: packBytes, packs_read: res.packsRead, packs_pending: pending.size, bytes_pending: pendingBytes, thaw_requested: thawer.requested.length, verify_errors: res.verifyErrors, warnings: res.warnings });
      if (pending.size > 0) {
        throw thawPending(state, res.packsNeeded.filter((p) => pending.has(p.id)), 'their files are not restored yet', 'run the same command again then (files already restored are kept), or add --wait');
      }
      return res.verifyErrors > 0 ? ExitCode.error : ExitCode.ok;
    }),
  );
