import { diffTrees, type Change } from '../../engine/differ.js';
import { lookupPath } from '../../engine/walk.js';
import { UsageError } from '../../errors.js';
import { shortId } from '../../model/snapshot.js';
import type { Repository } from '../../repository/repository.js';
import { handle, type Register } from '../command.js';
import { splitSnapshotPath } from '../args.js';
import { formatBytes } from '../output.js';

interface DiffArgs {
  first: string;
  second: string;
}

type Kind = 'files' | 'dirs' | 'others';
const kindOf = (c: Change): Kind => {
  const t = (c.after ?? c.before)!.type;
  return t === 'file' ? 'files' : t === 'dir' ? 'dirs' : 'others';
};

/** The directory tree a SNAPSHOT[:PATH] argument names. */
async function treeOf(repo: Repository, arg: string): Promise<{ id: string; tree: string; path: Buffer }> {
  const ref = splitSnapshotPath(arg);
  const { id, snapshot } = await repo.findSnapshot(ref.snapshot);
  const { path, node } = await lookupPath(repo, snapshot.tree, ref.path);
  if (node.type !== 'dir' || !node.subtree) throw new UsageError(`${arg}: ${ref.path} is not a directory in this snapshot`);
  return { id, tree: node.subtree, path };
}

export const registerDiff: Register = (y) =>
  y.command(
    'diff <first> <second>',
    'show what changed between two snapshots (SNAPSHOT[:PATH] each): + added, - removed, M contents, U metadata, T type, ? contents under unchanged metadata (bitrot)',
    (c) =>
      c
        .positional('first', { type: 'string', demandOption: true, describe: 'the earlier snapshot (ID prefix or "latest"), optionally with :PATH' })
        .positional('second', { type: 'string', demandOption: true, describe: 'the later one' }),
    handle<DiffArgs>(async (ctx, a) => {
      const repo = await ctx.repository({ readOnly: true });
      const [x, y] = await Promise.all([treeOf(repo, a.first), treeOf(repo, a.second)]);
      ctx.out.info(`comparing snapshot ${shortId(x.id)} to ${shortId(y.id)}:`);
      const counts = { files: { new: 0, removed: 0, changed: 0 }, dirs: { new: 0, removed: 0, changed: 0 }, others: { new: 0, removed: 0, changed: 0 } };
      // Data of the files that differ: blobs only the second holds are added, only the first removed.
      const before = new Set<string>();
      const after = new Set<string>();
      for await (const c of diffTrees(repo, x.tree, y.tree, y.path, ctx.signal)) {
        const n = counts[kindOf(c)];
        if (c.modifier === '+') n.new++;
        else if (c.modifier === '-') n.removed++;
        else n.changed++;
        for (const id of c.before?.content ?? []) before.add(id);
        for (const id of c.after?.content ?? []) after.add(id);
        // Paths as in the second snapshot.
        const path = c.path.toString('utf8') + (((c.after ?? c.before)!.type === 'dir') ? '/' : '');
        ctx.out.data({ message_type: 'change', path, modifier: c.modifier });
        ctx.out.line(`${c.modifier.padEnd(4)} ${path}`);
      }
      const sum = (ids: Set<string>, not: Set<string>) => [...ids].filter((id) => !not.has(id)).reduce((s, id) => s + (repo.index.get(id)?.rawLength ?? 0), 0);
      const added = sum(after, before);
      const removed = sum(before, after);
      ctx.out.data({ message_type: 'statistics', source_snapshot: x.id, target_snapshot: y.id, ...counts, data_added: added, data_removed: removed });
      ctx.out.info('');
      ctx.out.info(`Files:   ${counts.files.new} new, ${counts.files.removed} removed, ${counts.files.changed} changed`);
      ctx.out.info(`Dirs:    ${counts.dirs.new} new, ${counts.dirs.removed} removed, ${counts.dirs.changed} changed`);
      ctx.out.info(`Others:  ${counts.others.new} new, ${counts.others.removed} removed, ${counts.others.changed} changed`);
      ctx.out.info(`Data:    ${formatBytes(added)} added, ${formatBytes(removed)} removed (in the files that differ)`);
      return 0;
    }),
  );
