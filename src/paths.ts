// Where snap's own files are, whether it runs compiled (dist/src/...) or from TypeScript sources
// (vitest, tsx), and where it keeps local state for each repository.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

let root: string | undefined;

/** The package root: the nearest ancestor holding package.json and native/binding.gyp. */
export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'native', 'binding.gyp'))) return (root = dir);
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find snap's package root above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/**
 * URL of the compiled JavaScript for a module under src/, given that module's import.meta.url and
 * a relative name. Worker threads need real .js files; under vitest the sources are .ts, so this
 * points at the tsc output in dist/ (`npm test` compiles first).
 */
export function compiledModuleUrl(base: string, rel: string): URL {
  const here = new URL(rel, base);
  const path = fileURLToPath(here);
  if (existsSync(path)) return here;
  const r = packageRoot();
  return pathToFileURL(join(r, 'dist', relative(r, path)));
}

export function programVersion(): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  return `snap ${pkg.version}`;
}

/**
 * Local state kept per repository (catalog, directory cache, restore progress):
 * <root>/<repository id>/, root being --cache-dir, else $XDG_CACHE_HOME/snap, else ~/.cache/snap.
 */
export function repositoryCacheDir(repoId: string, cacheDir?: string): string {
  return join(cacheDir ?? join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'snap'), repoId);
}
