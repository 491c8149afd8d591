import { lookupPath } from '../../engine/walk.js';
import { fileContents, tarContents } from '../../engine/dump.js';
import { ColdObjectError, UsageError } from '../../errors.js';
import { handle, type Register } from '../command.js';
import { splitSnapshotPath } from '../args.js';

interface DumpArgs {
  snapshot: string;
  path?: string;
}

/** Writes to stdout, waiting while the pipe is full; false once the reader has gone. */
function write(data: Buffer): Promise<boolean> {
  const out = process.stdout;
  if (out.destroyed) return Promise.resolve(false);
  if (out.write(data)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (more: boolean) => {
      out.off('drain', drained);
      out.off('close', closed);
      resolve(more);
    };
    const drained = () => done(true);
    const closed = () => done(false);
    out.on('drain', drained);
    out.on('close', closed);
  });
}

export const registerDump: Register = (y) =>
  y.command(
    'dump <snapshot> [path]',
    'write a file of a snapshot, or a directory as a tar archive, to standard output (SNAPSHOT:PATH, or SNAPSHOT PATH)',
    (c) =>
      c
        .positional('snapshot', { type: 'string', demandOption: true, describe: 'ID prefix or "latest", optionally with :PATH' })
        .positional('path', { type: 'string', describe: 'the file or directory inside the snapshot' }),
    handle<DumpArgs>(async (ctx, a) => {
      const repo = await ctx.repository({ readOnly: true });
      const ref = splitSnapshotPath(a.snapshot);
      const path = a.path ?? ref.path;
      const { snapshot } = await repo.findSnapshot(ref.snapshot);
      const found = await lookupPath(repo, snapshot.tree, path);
      const { node } = found;
      if (node.type !== 'file' && node.type !== 'dir') throw new UsageError(`${path}: a ${node.type} in this snapshot; dump writes a file, or a directory as a tar archive`);
      if (node.type === 'dir' && process.stdout.isTTY) throw new UsageError(`${path} is a directory: its tar archive would go to the terminal; redirect it (> dir.tar) or pipe it (| tar -x)`);
      const contents = node.type === 'file' ? fileContents(repo, node, ctx.signal) : tarContents(repo, found, { signal: ctx.signal, onSkip: (p) => ctx.out.warn(`${p.toString('utf8')}: a socket has no tar form; left out`) });
      try {
        // A reader that goes away (`| head`) ends the dump: the rest is not read.
        for await (const data of contents) if (!(await write(data))) break;
      } catch (e) {
        if (e instanceof ColdObjectError) {
          throw new ColdObjectError(e.object, 'archived and not thawed; `snap restore SNAPSHOT:PATH --target DIR` requests the thaw and restores it once it is readable (`--plan` shows the cost)');
        }
        throw e;
      }
      return 0;
    }),
  );
