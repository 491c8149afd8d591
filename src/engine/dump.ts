// A file of a snapshot read back as its bytes, in order, or a directory as a tar archive (`snap
// dump`): the way to take one version out of a snapshot into a pipe without restoring to disk.
import { throwIfAborted } from '../backend/common.js';
import { IntegrityError } from '../errors.js';
import { TAR_END, tarHeader, tarPadding, type TarEntry, type TarType } from '../format/tar.js';
import type { TreeNode } from '../model/tree.js';
import { major, minor } from '../native/binding.js';
import type { Repository } from '../repository/repository.js';
import { walkTree } from './walk.js';

/** Blobs loaded ahead of the one being written: hides a remote backend's latency; bounds memory. */
const AHEAD = 4;

/** The contents of a file node, blob by blob in order, each one verified as it is opened. */
export async function* fileContents(repo: Repository, node: TreeNode, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const ids = node.content ?? [];
  const loading: Promise<Buffer>[] = [];
  let next = 0;
  const fill = () => {
    while (next < ids.length && loading.length < AHEAD) {
      const blob = repo.loadBlob(ids[next++]!, 'data');
      // Settled when its turn comes; a failure meanwhile must not count as unhandled.
      blob.catch(() => undefined);
      loading.push(blob);
    }
  };
  fill();
  while (loading.length > 0) {
    throwIfAborted(signal);
    const data = await loading.shift()!;
    fill();
    yield data;
  }
}

const TAR_TYPES: Partial<Record<TreeNode['type'], TarType>> = { file: 'file', dir: 'dir', symlink: 'symlink', fifo: 'fifo', chardev: 'chardev', blockdev: 'blockdev' };

/**
 * A directory of a snapshot and everything under it as a pax tar archive, its entries named by
 * their paths in the snapshot without the leading "/" (as GNU tar names what it archives). Files
 * that are hard links of each other are stored once, the others as links to the first. Sockets
 * have no tar form and are left out (`onSkip`).
 */
export async function* tarContents(repo: Repository, dir: { path: Buffer; node: TreeNode }, opts: { signal?: AbortSignal; onSkip?: (path: Buffer) => void } = {}): AsyncGenerator<Buffer> {
  const relative = (p: Buffer) => p.subarray(p[0] === 0x2f ? 1 : 0);
  const linked = new Map<string, Buffer>();
  const entries = async function* () {
    if (dir.path.length > 1) yield { path: dir.path, node: dir.node };
    if (dir.node.subtree) yield* walkTree(repo, dir.node.subtree, dir.path);
  };
  for await (const { path, node } of entries()) {
    throwIfAborted(opts.signal);
    const type = TAR_TYPES[node.type];
    if (!type) {
      opts.onSkip?.(path);
      continue;
    }
    const name = relative(path);
    const e: TarEntry = { path: name, type, mode: node.mode, uid: node.uid, gid: node.gid, mtimeNs: node.mtimeNs, size: node.type === 'file' ? (node.size ?? 0) : 0 };
    if (node.user !== undefined) e.user = node.user;
    if (node.group !== undefined) e.group = node.group;
    if (node.xattrs?.length) e.xattrs = node.xattrs;
    if (node.target) e.link = node.target;
    if (node.rdev !== undefined) {
      e.devMajor = major(node.rdev);
      e.devMinor = minor(node.rdev);
    }
    if (node.type === 'file' && (node.nlink ?? 1) > 1) {
      const key = `${node.device}:${node.inode}`;
      const first = linked.get(key);
      if (first) {
        yield tarHeader({ ...e, type: 'hardlink', link: first, size: 0 });
        continue;
      }
      linked.set(key, name);
    }
    yield tarHeader(e);
    if (node.type !== 'file') continue;
    let written = 0;
    for await (const data of fileContents(repo, node, opts.signal)) {
      written += data.length;
      yield data;
    }
    // The header announced the size the snapshot records; the blobs must add up to it.
    if (written !== e.size) throw new IntegrityError(path.toString('utf8'), `its blobs hold ${written} bytes, its tree entry says ${e.size}`);
    yield tarPadding(written);
  }
  yield TAR_END;
}
