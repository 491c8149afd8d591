import { rewrite } from '../../engine/rewriter.js';
import { shortId } from '../../model/snapshot.js';
import { handle, type Register } from '../command.js';
import { asArray, chosenSnapshots, patternsOf, snapshotFilter, SNAPSHOT_FILTER_FLAGS } from '../args.js';
import { catalogAfterBackup } from './catalog.js';

interface RewriteArgs {
  snapshotIds: string[];
  exclude?: string[];
  excludeFile?: string[];
  iexclude?: string[];
  iexcludeFile?: string[];
  forget: boolean;
  host?: string[];
  tag?: string[];
  path?: string[];
  dryRun: boolean;
}

export const registerRewrite: Register = (y) =>
  y.command(
    'rewrite [snapshotIds..]',
    'remove files from snapshots: each snapshot holding a path the patterns match is saved anew without it (the given IDs, else every snapshot the filters select)',
    (c) =>
      c
        .positional('snapshotIds', { type: 'string', array: true, default: [] as string[] })
        .option('exclude', { alias: 'e', type: 'string', array: true, describe: 'leave out paths matching GLOB (as backup --exclude)' })
        .option('exclude-file', { type: 'string', array: true, describe: 'read exclude patterns from a file, one per line' })
        .option('iexclude', { type: 'string', array: true, describe: 'like --exclude, ignoring case' })
        .option('iexclude-file', { type: 'string', array: true, describe: 'like --exclude-file, ignoring case' })
        .option('forget', { type: 'boolean', default: false, describe: 'remove each original snapshot once its rewritten copy is saved (then `prune` frees the data)' })
        .options(SNAPSHOT_FILTER_FLAGS)
        .option('dry-run', { alias: 'n', type: 'boolean', default: false, describe: 'show what would be left out; store nothing' }),
    handle<RewriteArgs>(async (ctx, a) => {
      const excludes = patternsOf(a.exclude, a.excludeFile, '--exclude-file');
      const iexcludes = patternsOf(a.iexclude, a.iexcludeFile, '--iexclude-file');
      // Removing snapshots takes the exclusive lock, as forget; adding them a shared one, as backup.
      const repo = await ctx.repository({ lock: a.dryRun || !a.forget ? 'shared' : 'exclusive', readOnly: a.dryRun });
      const filter = snapshotFilter(a);
      const ids = asArray(a.snapshotIds);
      const chosen = await chosenSnapshots(repo, ids, filter);
      const say = (text: string) => (a.dryRun ? ctx.out.line(text) : ctx.out.info(text));
      const done = await rewrite(repo, chosen, {
        excludes,
        iexcludes,
        forget: a.forget,
        dryRun: a.dryRun,
        signal: ctx.signal,
        onExcluded: (sid, path) => {
          say(`${shortId(sid)}: ${a.dryRun ? 'would leave out' : 'leaving out'} ${path}`);
          ctx.out.data({ message_type: 'excluded', snapshot: sid, path });
        },
      });
      for (const r of done) {
        if (r.to) say(`rewrote ${shortId(r.from)} -> ${shortId(r.to)}: ${r.excluded} entries left out${r.forgotten ? `; ${shortId(r.from)} removed` : ''}`);
      }
      say(a.dryRun ? `dry run: ${done.length} of ${chosen.length} snapshots would be rewritten` : `${done.length} of ${chosen.length} snapshots rewritten`);
      if (done.length > 0 && !a.dryRun) say(a.forget ? 'run `snap prune` to free the space the removed files used' : 'the original snapshots are kept: `snap forget` them (or rewrite with --forget), then `snap prune`, to free the space');
      ctx.out.data({ message_type: 'rewrite', dry_run: a.dryRun, selected: chosen.length, rewritten: done.map((r) => ({ from: r.from, to: r.to ?? null, excluded: r.excluded, forgotten: r.forgotten })) });
      if (done.length > 0 && !a.dryRun) await catalogAfterBackup(ctx);
      return 0;
    }),
  );
