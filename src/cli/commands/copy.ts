import { copySnapshots } from '../../engine/copier.js';
import { ColdObjectError, UsageError } from '../../errors.js';
import { shortId } from '../../model/snapshot.js';
import { handle, type Register } from '../command.js';
import { asArray, chosenSnapshots, snapshotFilter, SNAPSHOT_FILTER_FLAGS } from '../args.js';
import { SOURCE_REPOSITORY_FLAGS, sourceContext, type SourceRepositoryArgs } from '../context.js';
import { formatBytes } from '../output.js';

interface CopyArgs extends SourceRepositoryArgs {
  snapshotIds: string[];
  host?: string[];
  tag?: string[];
  path?: string[];
  dryRun: boolean;
}

export const registerCopy: Register = (y) =>
  y.command(
    'copy [snapshotIds..]',
    'copy snapshots from another repository (--from-repo) into this one: the given IDs, else every snapshot the filters select; those already copied are skipped',
    (c) =>
      c
        .positional('snapshotIds', { type: 'string', array: true, default: [] as string[] })
        .options(SOURCE_REPOSITORY_FLAGS)
        .options(SNAPSHOT_FILTER_FLAGS)
        .option('dry-run', { alias: 'n', type: 'boolean', default: false, describe: 'show what would be copied; copy nothing' }),
    handle<CopyArgs>(async (ctx, a) => {
      const from = sourceContext(ctx, a);
      try {
        const src = await from.repository({ readOnly: true });
        // Adding snapshots takes a shared lock, as backup does.
        const dst = await ctx.repository({ readOnly: a.dryRun });
        // Its snapshots would be copied onto themselves: each one saved a second time.
        if (src.config.id === dst.config.id) throw new UsageError('--from-repo is this repository: copy needs another one');
        const chosen = await chosenSnapshots(src, asArray(a.snapshotIds), snapshotFilter(a));
        const say = (text: string) => (a.dryRun ? ctx.out.line(text) : ctx.out.info(text));
        const done = await copySnapshots(src, dst, chosen, {
          dryRun: a.dryRun,
          signal: ctx.signal,
          onProgress: (p) => ctx.out.progress(`${p.snapshots}/${chosen.length} snapshots, ${p.blobs} blobs, ${formatBytes(p.bytes)} read`),
          onSnapshot: (c) => {
            ctx.out.clearProgress();
            if (c.skipped) say(`${shortId(c.from)}: already in this repository as ${shortId(c.to!)}`);
            else if (!c.to) say(`${shortId(c.from)}: would be copied`);
            else say(`${shortId(c.from)}: copied as ${shortId(c.to)}, ${formatBytes(c.added)} added`);
            ctx.out.data({ message_type: 'copied', from: c.from, to: c.to ?? null, skipped: c.skipped, added: c.added });
          },
        }).catch((e: unknown) => {
          if (!(e instanceof ColdObjectError)) throw e;
          throw new ColdObjectError(e.object, undefined, {
            cause: e,
            hint: 'copy reads every data pack of the snapshots it copies: thaw them in the source first (`snap restore SNAPSHOT --plan` there shows which and what it costs), then run the same copy again; the snapshots copied so far are kept',
          });
        });
        const copied = done.filter((c) => !c.skipped).length;
        say(`${a.dryRun ? 'dry run: ' : ''}${copied} of ${chosen.length} snapshots ${a.dryRun ? 'would be ' : ''}copied, ${done.length - copied} already there`);
        ctx.out.data({ message_type: 'copy', dry_run: a.dryRun, selected: chosen.length, copied, skipped: done.length - copied, added: done.reduce((n, c) => n + c.added, 0) });
        return 0;
      } finally {
        await from.close();
      }
    }),
  );
