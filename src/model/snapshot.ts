// Snapshot documents as stored (format-spec ch. 8); field names match the JSON.

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
