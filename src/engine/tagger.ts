// Changes the tags of snapshots (`snap tag`). A snapshot's name is the hash of its stored bytes,
// so a changed snapshot is saved anew and the old one removed, in that order: a crash between
// leaves both (the same backup listed twice, with the old and the new tags), never neither.
import { removeIfPresent } from '../backend/common.js';
import type { Snapshot, SnapshotEntry } from '../model/snapshot.js';
import type { Repository } from '../repository/repository.js';
import { InterruptedError, UsageError } from '../errors.js';

export interface TagChange {
  add?: string[];
  remove?: string[];
  /** Replaces every tag (an empty list removes them all); not with add or remove. */
  set?: string[];
}

export interface Retagged {
  /** The snapshot as it was. */
  from: string;
  /** Its new ID; undefined in a dry run. */
  to?: string;
  tags: string[];
}

export function validateTagChange(c: TagChange): void {
  if (c.set !== undefined && (c.add?.length || c.remove?.length)) throw new UsageError('--set replaces all tags: give it alone, not with --add or --remove');
  if (c.set === undefined && !c.add?.length && !c.remove?.length) throw new UsageError('nothing to do: give --add, --remove or --set');
}

/** The tags a snapshot has after the change: sorted, each once (format-spec ch. 8). */
export function changedTags(tags: readonly string[], c: TagChange): string[] {
  const out = new Set(c.set ?? tags);
  for (const t of c.add ?? []) out.add(t);
  for (const t of c.remove ?? []) out.delete(t);
  return [...out].sort();
}

/**
 * Applies the change to each snapshot whose tags it alters; the others are left as they are. The
 * new document keeps every other field, and `original` names the snapshot as first saved.
 */
export async function retag(repo: Repository, entries: readonly SnapshotEntry[], c: TagChange, opts: { dryRun?: boolean; signal?: AbortSignal } = {}): Promise<Retagged[]> {
  validateTagChange(c);
  const done: Retagged[] = [];
  for (const { id, snapshot } of entries) {
    if (opts.signal?.aborted) throw new InterruptedError(`tag interrupted after ${done.length} snapshots; the others keep their tags`);
    const tags = changedTags(snapshot.tags, c);
    if (tags.join('\0') === [...snapshot.tags].sort().join('\0')) continue;
    if (opts.dryRun) {
      done.push({ from: id, tags });
      continue;
    }
    const doc: Snapshot = { ...snapshot, tags, original: snapshot.original ?? id };
    const to = await repo.saveMetadata('snapshot', doc);
    await removeIfPresent(repo.backend, { type: 'snapshot', name: id });
    done.push({ from: id, to, tags });
  }
  return done;
}
