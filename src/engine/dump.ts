// One file of a snapshot read back as its bytes, in order (`snap dump`): the way to take a single
// file version out of a snapshot into a pipe without restoring anything to disk.
import { throwIfAborted } from '../backend/common.js';
import type { TreeNode } from '../model/tree.js';
import type { Repository } from '../repository/repository.js';

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
