import { repairIndex } from '../../engine/repairer.js';
import { handle, type Register } from '../command.js';

interface RepairArgs {
  what: 'index';
  readAllPacks: boolean;
}

export const registerRepair: Register = (y) =>
  y.command(
    'repair <what>',
    'rebuild what can be rebuilt from the packs (index: after index objects were lost or damaged)',
    (c) =>
      c
        .positional('what', { choices: ['index'] as const, describe: 'index: write a new index from the packs' })
        .option('read-all-packs', { type: 'boolean', default: false, describe: "read every pack's header, not only those no readable index object describes" }),
    handle<RepairArgs>(async (ctx, a) => {
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
      return 0;
    }),
  );
