import { repairIndex, repairPacks } from '../../engine/repairer.js';
import { repairSnapshots } from '../../engine/rewriter.js';
import { shortId } from '../../model/snapshot.js';
import { asArray, chosenSnapshots, snapshotFilter, SNAPSHOT_FILTER_FLAGS } from '../args.js';
import { handle, type Register } from '../command.js';
import { catalogAfterBackup } from './catalog.js';

interface RepairIndexArgs {
  readAllPacks: boolean;
}

interface RepairPacksArgs {
  packIds: string[];
  saveDir: string;
}

interface RepairSnapshotsArgs {
  snapshotIds: string[];
  forget: boolean;
  dryRun: boolean;
  host?: string[];
  tag?: string[];
  path?: string[];
}

export const registerRepair: Register = (y) =>
  y.command('repair', 'rebuild what can be rebuilt after data was lost or damaged: the index, damaged packs, then the snapshots', (c) =>
    c
      .command(
        'index',
        'write a new index from the packs, after index objects were lost or damaged (or packs are gone)',
        (cc) => cc.option('read-all-packs', { type: 'boolean', default: false, describe: "read every pack's header, not only those no readable index object describes" }),
        handle<RepairIndexArgs>(async (ctx, a) => {
          const repo = await ctx.repository({ index: false, lock: 'exclusive' });
          const r = await repairIndex(repo, {
            readAllPacks: a.readAllPacks,
            signal: ctx.signal,
            onWarning: (m) => ctx.out.warn(m),
            onProgress: (done, total) => ctx.out.progress(`packs ${done}/${total}`),
          });
          ctx.out.clearProgress();
          ctx.out.data({ message_type: 'repair_index', indexes_read: r.indexesRead, indexes_damaged: r.indexesDamaged, packs: r.packs, packs_read: r.packsRead, packs_missing: r.packsMissing, unreadable: r.unreadable, index: r.index ?? null, indexes_removed: r.indexesRemoved });
          ctx.out.info(`${r.indexesRead} index objects read (${r.indexesDamaged} damaged); ${r.packs} packs indexed, ${r.packsRead} headers read, ${r.packsMissing} packs named by the old index are gone`);
          ctx.out.info(r.index ? `wrote index ${r.index.slice(0, 8)}, removed ${r.indexesRemoved} old index objects` : 'the index was complete: nothing written');
          // Left out of the index, a pack is one prune would delete: say so where it cannot be missed.
          if (r.unreadable.length > 0) ctx.out.line(`${r.unreadable.length} packs could not be read and are not indexed; \`snap prune\` would delete them (thaw archived ones, then repair again)`);
          if (r.packsMissing > 0) ctx.out.line('snapshots may use data of the packs that are gone: `snap check` names it, `snap repair snapshots` removes it from them');
          return 0;
        }),
      )
      .command(
        'packs <packIds..>',
        'copy the intact blobs of damaged packs (`check --read-data` names them) into new packs and remove the damaged ones, after saving a copy of each in --save-dir. Then `repair snapshots` removes what was lost',
        (cc) =>
          cc
            .positional('packIds', { type: 'string', array: true, demandOption: true, describe: 'pack IDs (or unique prefixes)' })
            .option('save-dir', { type: 'string', default: '.', describe: 'where a copy of each damaged pack is saved before it is removed' }),
        handle<RepairPacksArgs>(async (ctx, a) => {
          const repo = await ctx.repository({ index: false, lock: 'exclusive' });
          const r = await repairPacks(repo, asArray(a.packIds), { saveDir: a.saveDir, signal: ctx.signal });
          let lost = 0;
          for (const p of r.packs) {
            ctx.out.info(`${p.type}/${p.id.slice(0, 8)}: ${p.salvaged} of ${p.blobs} blobs kept; a copy of the pack is in ${p.savedAs}`);
            for (const id of p.lost) ctx.out.line(`lost: ${p.type === 'meta' ? 'tree' : 'data'} blob ${id}`);
            lost += p.lost.length;
          }
          ctx.out.info(`${r.packsWritten} packs written, index ${r.index.slice(0, 8)} written, ${r.packs.length} damaged packs removed`);
          if (lost > 0) ctx.out.line(`${lost} blobs are lost: if the files still exist, a backup stores them again; else \`snap repair snapshots\` removes them from the snapshots`);
          ctx.out.data({ message_type: 'repair_packs', packs: r.packs.map((p) => ({ id: p.id, type: p.type, saved_as: p.savedAs, blobs: p.blobs, salvaged: p.salvaged, lost: p.lost })), packs_written: r.packsWritten, index: r.index, indexes_removed: r.indexesRemoved });
          return 0;
        }),
      )
      .command(
        'snapshots [snapshotIds..]',
        'save snapshots anew without what is lost (file contents whose blobs the index lacks, directories whose trees cannot be read): the given IDs, else every snapshot the filters select. Run `repair index` first. Data is lost: a backup of files that still exist restores them instead',
        (cc) =>
          cc
            .positional('snapshotIds', { type: 'string', array: true, default: [] as string[] })
            .option('forget', { type: 'boolean', default: false, describe: 'remove each damaged snapshot once its repaired copy is saved, and those nothing can be read of (then `prune` frees their data)' })
            .options(SNAPSHOT_FILTER_FLAGS)
            .option('dry-run', { alias: 'n', type: 'boolean', default: false, describe: 'show what would be repaired; store nothing' }),
        handle<RepairSnapshotsArgs>(async (ctx, a) => {
          // Removing snapshots takes the exclusive lock, as forget; adding them a shared one, as backup.
          const repo = await ctx.repository({ lock: a.dryRun || !a.forget ? 'shared' : 'exclusive', readOnly: a.dryRun });
          const chosen = await chosenSnapshots(repo, asArray(a.snapshotIds), snapshotFilter(a));
          const say = (text: string) => (a.dryRun ? ctx.out.line(text) : ctx.out.info(text));
          const done = await repairSnapshots(repo, chosen, {
            forget: a.forget,
            dryRun: a.dryRun,
            signal: ctx.signal,
            onFile: (sid, path, kept, blobs) => {
              say(`${shortId(sid)}: file ${path}: ${blobs - kept} of ${blobs} blobs are lost${a.dryRun ? ', would keep' : ', keeping'} the rest`);
              ctx.out.data({ message_type: 'repaired_file', snapshot: sid, path, blobs, kept });
            },
            onDirectory: (sid, path, reason) => {
              say(`${shortId(sid)}: directory ${path} cannot be read (${reason}); ${a.dryRun ? 'would store' : 'storing'} it empty`);
              ctx.out.data({ message_type: 'repaired_directory', snapshot: sid, path, reason });
            },
          });
          for (const r of done) {
            if (r.unreadable) ctx.out.warn(`snapshot ${shortId(r.from)}: its root tree cannot be read, nothing of it can be restored${r.forgotten ? '; removed' : ': `snap forget` it, or repair with --forget'}`);
            else if (r.to) say(`repaired ${shortId(r.from)} -> ${shortId(r.to)}: ${r.repaired} files and directories${r.forgotten ? `; ${shortId(r.from)} removed` : ''}`);
          }
          const repaired = done.filter((r) => !r.unreadable);
          say(a.dryRun ? `dry run: ${repaired.length} of ${chosen.length} snapshots would be repaired` : `${repaired.length} of ${chosen.length} snapshots repaired`);
          if (repaired.length > 0 && !a.dryRun && !a.forget) say('the damaged snapshots are kept: `snap forget` them (or repair with --forget), then `snap prune`');
          ctx.out.data({
            message_type: 'repair_snapshots',
            dry_run: a.dryRun,
            selected: chosen.length,
            repaired: repaired.map((r) => ({ from: r.from, to: r.to ?? null, repaired: r.repaired, forgotten: r.forgotten })),
            unreadable: done.filter((r) => r.unreadable).map((r) => ({ id: r.from, forgotten: r.forgotten })),
          });
          if (done.length > 0 && !a.dryRun) await catalogAfterBackup(ctx);
          return 0;
        }),
      )
      .demandCommand(1, 'name what to repair: index, packs or snapshots'),
  );
