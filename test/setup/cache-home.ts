// vitest globalSetup: every snap the tests start keeps its caches (catalog, directory cache,
// copies of remote metadata) under a temporary XDG_CACHE_HOME, removed after the run, instead of
// in the cache directory of whoever runs the tests. Test workers and the snap processes they
// spawn inherit the variable.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'snap-test-cache-'));
  process.env.XDG_CACHE_HOME = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
