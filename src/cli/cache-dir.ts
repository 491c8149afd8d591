// Where snap keeps local state per repository: <root>/<repository id>/, with root from --cache-dir,
// else $XDG_CACHE_HOME/snap, else ~/.cache/snap (the same root the catalog uses).
import { homedir } from 'node:os';
import { join } from 'node:path';

export function repositoryCacheDir(repoId: string, cacheDir?: string): string {
  return join(cacheDir ?? join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'snap'), repoId);
}
