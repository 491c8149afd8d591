import { retag, validateTagChange, type TagChange } from '../../engine/tagger.js';
import { shortId } from '../../model/snapshot.js';
import { handle, type Register } from '../command.js';
import { asArray, chosenSnapshots, snapshotFilter, tagList, SNAPSHOT_FILTER_FLAGS } from '../args.js';
import { catalogAfterBackup } from './catalog.js';

interface TagArgs {
  snapshotIds: string[];
  add?: string[];
  remove?: string[];
  set?: string[];
  host?: string[];
  tag?: string[];
  path?: string[];
  dryRun: boolean;
}

export const registerTag: Register = (y) =>
  y.command(
    'tag [snapshotIds..]',
    'add, remove or replace the tags of snapshots: the given IDs, else every snapshot the --host/--tag/--path filters select',
    (c) =>
      c
        .positional('snapshotIds', { type: 'string', array: true, default: [] as string[] })
        .option('add', { type: 'string', array: true, describe: 'add tags (TAG[,TAG...]; repeatable)' })
        .option('remove', { type: 'string', array: true, describe: 'remove tags' })
        .option('set', { type: 'string', array: true, describe: 'replace all tags with these (--set "" removes them all)' })
        .options(SNAPSHOT_FILTER_FLAGS)
        .option('dry-run', { alias: 'n', type: 'boolean', default: false, describe: 'show which snapshots would change; change nothing' }),
    handle<TagArgs>(async (ctx, a) => {
      const change: TagChange = { add: tagList(a.add), remove: tagList(a.remove), ...(a.set !== undefined ? { set: tagList(a.set) } : {}) };
      validateTagChange(change);
      // Exclusive, as forget: a snapshot is replaced, and a forget running meanwhile could
      // otherwise remove the old one while this saves it anew.
      const repo = await ctx.repository({ index: false, lock: a.dryRun ? 'shared' : 'exclusive', readOnly: a.dryRun });
      const filter = snapshotFilter(a);
      const ids = asArray(a.snapshotIds);
      const chosen = await chosenSnapshots(repo, ids, filter);
      const done = await retag(repo, chosen, change, { dryRun: a.dryRun, signal: ctx.signal });
      const say = (text: string) => (a.dryRun ? ctx.out.line(text) : ctx.out.info(text));
      for (const r of done) say(`${a.dryRun ? 'would change' : 'changed'} ${shortId(r.from)}${r.to ? ` -> ${shortId(r.to)}` : ''}: tags [${r.tags.join(', ')}]`);
      say(a.dryRun ? `dry run: ${done.length} of ${chosen.length} snapshots would change` : `${done.length} of ${chosen.length} snapshots changed`);
      ctx.out.data({ message_type: 'tag', dry_run: a.dryRun, selected: chosen.length, changed: done.map((r) => ({ from: r.from, to: r.to ?? null, tags: r.tags })) });
      // The catalog swaps the old snapshots for the new, as after forget: warning-only.
      if (done.length > 0 && !a.dryRun) await catalogAfterBackup(ctx);
      return 0;
    }),
  );
