import { restore, type OverwriteMode } from '../../engine/restorer.js';
import { ExitCode, UsageError } from '../../errors.js';
import { shortId } from '../../model/snapshot.js';
import { handle, type Register } from '../command.js';
import { asArray, splitSnapshotPath } from '../args.js';
import { formatBytes } from '../output.js';

interface RestoreArgs {
  snapshot: string;
  target: string;
  include?: string[];
  exclude?: string[];
  verify: boolean;
  overwrite: string;
  sparse: boolean;
  dryRun: boolean;
}

export const registerRestore: Register = (y) =>
  y.command(
    'restore <snapshot>',
    'restore a snapshot, or SNAPSHOT:PATH for part of it, into --target',
    (c) =>
      c
        .positional('snapshot', { type: 'string', demandOption: true, describe: 'ID prefix or "latest", optionally :PATH inside the snapshot' })
        .option('target', { alias: 't', type: 'string', demandOption: true, describe: 'directory to restore into' })
        .option('include', { alias: 'i', type: 'string', array: true, describe: 'restore only paths matching GLOB' })
        .option('exclude', { alias: 'e', type: 'string', array: true, describe: 'skip paths matching GLOB' })
        .option('verify', { type: 'boolean', default: false, describe: 'read restored files back and check them against the snapshot' })
        .option('overwrite', { type: 'string', default: 'always', choices: ['always', 'if-changed', 'never'], describe: 'existing files: make them match (always), only when size or mtime differ (if-changed), or keep them (never)' })
        .option('sparse', { type: 'boolean', default: false, describe: 'leave runs of zeros as holes' })
        .option('dry-run', { alias: 'n', type: 'boolean', default: false, describe: 'show what would be restored' }),
    handle<RestoreArgs>(async (ctx, a) => {
      if (!a.target) throw new UsageError('--target is required');
      const repo = await ctx.repository();
      const ref = splitSnapshotPath(a.snapshot);
      const { id, snapshot } = await repo.findSnapshot(ref.snapshot);
      const out = ctx.out;
      const res = await restore(repo, {
        tree: snapshot.tree,
        subpath: ref.path,
        target: a.target,
        include: asArray(a.include),
        exclude: asArray(a.exclude),
        overwrite: a.overwrite as OverwriteMode,
        sparse: a.sparse,
        verify: a.verify,
        dryRun: a.dryRun,
        signal: ctx.signal,
        onWarning: (m) => out.warn(m),
        onProgress: (p) => out.progress(`${p.filesDone}/${p.filesTotal} files, ${formatBytes(p.bytesDone)}/${formatBytes(p.bytesTotal)}`),
      });
      out.clearProgress();
      const packBytes = res.packsNeeded.reduce((s, p) => s + p.size, 0);
      if (a.dryRun) out.line(`would restore ${res.filesRestored} files from snapshot ${shortId(id)} (${res.filesSkipped} already up to date), reading ${res.packsNeeded.length} packs (${formatBytes(packBytes)})`);
      else {
        out.line(`restored snapshot ${shortId(id)}${ref.path !== '/' ? `:${ref.path}` : ''} to ${a.target}: ${res.filesRestored} files (${formatBytes(res.bytesWritten)} written), ${res.filesSkipped} already up to date, ${res.dirs} directories, ${res.otherNodes} other`);
        if (a.verify) out.line(res.verifyErrors === 0 ? 'verified: every restored file matches the snapshot' : `verification FAILED for ${res.verifyErrors} files`);
      }
      out.data({ message_type: 'summary', snapshot_id: id, dry_run: a.dryRun, files_restored: res.filesRestored, files_skipped: res.filesSkipped, dirs: res.dirs, other: res.otherNodes, bytes_written: res.bytesWritten, packs_needed: res.packsNeeded.length, packs_bytes: packBytes, packs_read: res.packsRead, verify_errors: res.verifyErrors, warnings: res.warnings });
      return res.verifyErrors > 0 ? ExitCode.error : ExitCode.ok;
    }),
  );
