import { isColdStorage } from '../../backend/backend.js';
import { copySnapshots, packsToCopy } from '../../engine/copier.js';
import type { PackNeed } from '../../engine/restorer.js';
import { packStates, planThaw } from '../../engine/thaw.js';
import { ColdObjectError, ExitCode, UsageError } from '../../errors.js';
import { shortId } from '../../model/snapshot.js';
import { handle, type Register } from '../command.js';
import { asArray, chosenSnapshots, snapshotFilter, SNAPSHOT_FILTER_FLAGS } from '../args.js';
import { SOURCE_REPOSITORY_FLAGS, sourceContext, type SourceRepositoryArgs } from '../context.js';
import { formatBytes } from '../output.js';
import { printPlan, requestedLine, THAW_FLAGS, thawerFor, thawPending, thawSettings, type ThawArgs } from '../thaw.js';

interface CopyArgs extends SourceRepositoryArgs, ThawArgs {
  snapshotIds: string[];
  host?: string[];
  tag?: string[];
  path?: string[];
  dryRun: boolean;
}

export const registerCopy: Register = (y) =>
  y.command(
    'copy [snapshotIds..]',
    'copy snapshots from another repository (--from-repo) into this one: the given IDs, else every snapshot the filters select; those already copied are skipped. ' +
      'Data packs of the source in GLACIER / DEEP_ARCHIVE are thawed first, as restore does: without --wait, snap copies the snapshots whose packs are readable, ' +
      'requests the thaws, and exits with code 4; run the same command again later to finish. --plan shows the packs, time and cost first.',
    (c) =>
      c
        .positional('snapshotIds', { type: 'string', array: true, default: [] as string[] })
        .options(SOURCE_REPOSITORY_FLAGS)
        .options(SNAPSHOT_FILTER_FLAGS)
        .option('dry-run', { alias: 'n', type: 'boolean', default: false, describe: 'show what would be copied; copy nothing' })
        .options(THAW_FLAGS),
    handle<CopyArgs>(async (ctx, a) => {
      const thaw = await thawSettings(a);
      const from = sourceContext(ctx, a);
      try {
        const src = await from.repository({ readOnly: true });
        // Adding snapshots takes a shared lock, as backup does.
        const dst = await ctx.repository({ readOnly: a.dryRun || a.plan });
        // Its snapshots would be copied onto themselves: each one saved a second time.
        if (src.config.id === dst.config.id) throw new UsageError('--from-repo is this repository: copy needs another one');
        const chosen = await chosenSnapshots(src, asArray(a.snapshotIds), snapshotFilter(a));
        if (a.plan) {
          // Trees (meta packs) only; packStates only asks for storage classes.
          const plan = planThaw(await packStates(src.backend, await packsToCopy(src, dst, chosen, ctx.signal), { signal: ctx.signal }), thaw.prices);
          ctx.out.line(`copy plan for ${chosen.length} snapshots: ${plan.total.packs} data packs (${formatBytes(plan.total.bytes)}) to read from the source; nothing requested`);
          printPlan(ctx.out, plan);
          ctx.out.data({ message_type: 'plan', selected: chosen.length, ...plan });
          return ExitCode.ok;
        }
        const { thawer, state } = await thawerFor(ctx, src, a, thaw);
        const say = (text: string) => (a.dryRun ? ctx.out.line(text) : ctx.out.info(text));
        const res = await copySnapshots(src, dst, chosen, {
          dryRun: a.dryRun,
          signal: ctx.signal,
          ...(isColdStorage(src.backend) ? { readablePacks: (p: PackNeed[]) => thawer.readable(p) } : {}),
          ...(a.wait ? { awaitPacks: (p: PackNeed[]) => thawer.awaitPacks(p) } : {}),
          onProgress: (p) => ctx.out.progress(`${p.snapshots}/${chosen.length} snapshots, ${p.blobs} blobs, ${formatBytes(p.bytes)} read`),
          onSnapshot: (c) => {
            ctx.out.clearProgress();
            if (c.skipped) say(`${shortId(c.from)}: already in this repository as ${shortId(c.to!)}`);
            else if (c.pending) say(`${shortId(c.from)}: not copied yet, ${c.pending} of its packs are still thawing`);
            else if (!c.to) say(`${shortId(c.from)}: would be copied`);
            else say(`${shortId(c.from)}: copied as ${shortId(c.to)}, ${formatBytes(c.added)} added`);
            ctx.out.data({ message_type: 'copied', from: c.from, to: c.to ?? null, skipped: c.skipped, added: c.added, packs_pending: c.pending ?? 0 });
          },
        }).catch((e: unknown) => {
          if (!(e instanceof ColdObjectError)) throw e;
          throw new ColdObjectError(e.object, undefined, {
            cause: e,
            hint: 'its thaw may have lapsed since the copy began: run the same copy again, which requests it anew; the snapshots copied so far are kept',
          });
        });
        const done = res.snapshots;
        if (!a.dryRun) await thawer.finish(res.packsRead);
        const skipped = done.filter((c) => c.skipped).length;
        const waiting = done.filter((c) => c.pending).length;
        const copied = done.length - skipped - waiting;
        say(`${a.dryRun ? 'dry run: ' : ''}${copied} of ${chosen.length} snapshots ${a.dryRun ? 'would be ' : ''}copied, ${skipped} already there${waiting > 0 ? `, ${waiting} waiting for thaws` : ''}`);
        const requested = requestedLine(thawer, a);
        if (requested) ctx.out.line(requested);
        const pendingBytes = res.packsPending.reduce((n, p) => n + p.size, 0);
        ctx.out.data({ message_type: 'copy', dry_run: a.dryRun, selected: chosen.length, copied, skipped, waiting, added: done.reduce((n, c) => n + c.added, 0), packs_read: res.packsRead.length, packs_pending: res.packsPending.length, bytes_pending: pendingBytes, thaw_requested: thawer.requested.length });
        if (waiting > 0) throw thawPending(state, res.packsPending, `${waiting} snapshots are not copied yet`, 'run the same command again then (the snapshots copied so far are kept), or add --wait');
        return ExitCode.ok;
      } finally {
        await from.close();
      }
    }),
  );
