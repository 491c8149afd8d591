// Snapshot documents as stored (format-spec ch. 8); field names match the JSON.
import { NoSuchItemError, UsageError } from '../errors.js';

export interface SnapshotSummary {
  backup_start: string;
  backup_end: string;
  duration_ms: number;
  files_new: number;
  files_changed: number;
  files_unchanged: number;
  dirs_new: number;
  dirs_changed: number;
  dirs_unchanged: number;
  data_blobs: number;
  tree_blobs: number;
  data_added: number;
  data_added_packed: number;
  total_files_processed: number;
  total_bytes_processed: number;
  errors: number;
}

export interface Snapshot {
  version: 1;
  time: string;
  tree: string;
  paths: string[];
  hostname: string;
  username: string;
  uid: number;
  gid: number;
  tags: string[];
  parent?: string;
  excludes: string[];
  /** Set when the snapshot was saved anew (tag, rewrite) or copied (copy): the ID it was first saved under. */
  original?: string;
  program_version: string;
  summary?: SnapshotSummary;
}

/** A snapshot with the ID it is stored under. */
export interface SnapshotEntry {
  id: string;
  snapshot: Snapshot;
}

export function shortId(id: string): string {
  return id.slice(0, 8);
}

/** The one ID among `ids` that `ref` names: a full snapshot ID or a unique prefix of at least 4 hex digits. */
export function matchSnapshotId(ids: readonly string[], ref: string): string {
  if (!/^[0-9a-f]{4,64}$/i.test(ref)) throw new UsageError(`"${ref}" is not a snapshot ID (hex digits, at least 4) or "latest"`);
  const prefix = ref.toLowerCase();
  const matches = ids.filter((id) => id.startsWith(prefix));
  if (matches.length === 0) throw new NoSuchItemError(`no snapshot with ID ${ref}`);
  if (matches.length > 1) throw new NoSuchItemError(`snapshot ID ${ref} is ambiguous (${matches.length} matches); give more digits`);
  return matches[0]!;
}
