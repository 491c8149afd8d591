import { lookupPath, walkTree } from '../../engine/walk.js';
import { handle, type Register } from '../command.js';
import { splitSnapshotPath } from '../args.js';
import type { TreeNode } from '../../model/tree.js';
import { joinPath } from '../../fs/metadata.js';
import { major, minor } from '../../native/binding.js';

interface LsArgs {
  snapshot: string;
  path?: string;
  recursive: boolean;
  long: boolean;
}

const TYPE_CHAR: Record<TreeNode['type'], string> = { file: '-', dir: 'd', symlink: 'l', fifo: 'p', socket: 's', chardev: 'c', blockdev: 'b' };

function modeString(n: TreeNode): string {
  const m = n.mode;
  const rwx = (b: number, s: boolean, sc: string) => (m & (b << 2) ? 'r' : '-') + (m & (b << 1) ? 'w' : '-') + (s ? (m & b ? sc : sc.toUpperCase()) : m & b ? 'x' : '-');
  return TYPE_CHAR[n.type] + rwx(0o100, (m & 0o4000) !== 0, 's') + rwx(0o10, (m & 0o2000) !== 0, 's') + rwx(0o1, (m & 0o1000) !== 0, 't');
}

export function nodeJson(path: Buffer, n: TreeNode): Record<string, unknown> {
  const o: Record<string, unknown> = {
    path: path.toString('utf8'), name: n.name.toString('utf8'), type: n.type, mode: n.mode, uid: n.uid, gid: n.gid,
    user: n.user, group: n.group, size: n.size ?? 0, mtime: new Date(Number(n.mtimeNs / 1_000_000n)).toISOString(), mtime_ns: n.mtimeNs.toString(),
  };
  if (n.target) o.target = n.target.toString('utf8');
  if (n.content) o.content = n.content;
  if (n.subtree) o.subtree = n.subtree;
  return o;
}

export const registerLs: Register = (y) =>
  y.command(
    'ls <snapshot> [path]',
    'list files in a snapshot (SNAPSHOT may be an ID prefix or "latest")',
    (c) =>
      c
        .positional('snapshot', { type: 'string', demandOption: true })
        .positional('path', { type: 'string', describe: 'directory or file inside the snapshot' })
        .option('recursive', { alias: 'R', type: 'boolean', default: true, describe: 'list subdirectories too (--no-recursive for one level)' })
        .option('long', { alias: 'l', type: 'boolean', default: false, describe: 'show mode, owner, size and time' }),
    handle<LsArgs>(async (ctx, a) => {
      const repo = await ctx.repository({ readOnly: true });
      const ref = splitSnapshotPath(a.snapshot);
      const { id, snapshot } = await repo.findSnapshot(ref.snapshot);
      const start = await lookupPath(repo, snapshot.tree, a.path ?? ref.path);
      ctx.out.data({ message_type: 'snapshot', id, ...snapshot });
      const print = (path: Buffer, n: TreeNode) => {
        ctx.out.data({ message_type: 'node', ...nodeJson(path, n) });
        if (!a.long) return ctx.out.line(path.toString('utf8'));
        const t = new Date(Number(n.mtimeNs / 1_000_000n)).toISOString().replace('T', ' ').slice(0, 19);
        const link = n.type === 'symlink' ? ` -> ${n.target!.toString('utf8')}` : '';
        // Devices show "major, minor" where files show their size, as ls -l does.
        const size = n.rdev !== undefined ? `${major(n.rdev)}, ${minor(n.rdev)}` : String(n.size ?? 0);
        ctx.out.line(`${modeString(n)} ${String(n.user ?? n.uid).padEnd(8)} ${String(n.group ?? n.gid).padEnd(8)} ${size.padStart(12)} ${t} ${path.toString('utf8')}${link}`);
      };
      if (start.node.type !== 'dir') {
        print(start.path, start.node);
        return 0;
      }
      if (!a.recursive) {
        for (const n of (await repo.loadTree(start.node.subtree!)).nodes) print(joinPath(start.path, n.name), n);
        return 0;
      }
      for await (const e of walkTree(repo, start.node.subtree!, start.path)) print(e.path, e.node);
      return 0;
    }),
  );
