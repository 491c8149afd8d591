import { removeLocks } from '../../repository/lock.js';
import { handle, type Register } from '../command.js';

interface UnlockArgs {
  removeAll: boolean;
}

export const registerUnlock: Register = (y) =>
  y.command(
    'unlock',
    'remove stale locks (left by crashed commands)',
    (c) => c.option('remove-all', { type: 'boolean', default: false, describe: 'remove every lock, live ones too (only when no other snap is running)' }),
    handle<UnlockArgs>(async (ctx, a) => {
      const repo = await ctx.repository({ index: false, lock: 'none' });
      const removed = await removeLocks(repo, a.removeAll);
      for (const l of removed) ctx.out.info(`removed lock ${l.name.slice(0, 8)} (pid ${l.lock.pid} on ${l.lock.hostname}${l.stale ? `: ${l.stale}` : ''})`);
      ctx.out.info(`${removed.length} locks removed`);
      ctx.out.data({ message_type: 'unlock', removed: removed.map((l) => ({ name: l.name, ...l.lock, stale: l.stale ?? null })) });
      return 0;
    }),
  );
