// Catalog benchmark: a generated repository of 200 snapshots of a 100,000-file tree in which 1% of
// the files change between snapshots (50 directories, 20 files each: changes cluster as they do in
// real trees). Trees and snapshots are written through the repository API; file contents are never
// stored because the catalog never reads them. Measures the full sync, the incremental sync of one
// new snapshot, a name-glob find over all snapshots, the catalog's bytes per distinct version and,
// when restic is on PATH, `restic find` on a real restic repository of a (smaller) equivalent history.
// Run: node dist/bench/catalog.js
import { xorshift32 } from './prng.js';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemoryBackend } from '../src/backend/memory.js';
import { Catalog } from '../src/catalog/catalog.js';
import { findVersions, selectSnapshots } from '../src/engine/finder.js';
import { encodeTree } from '../src/format/tree.js';
import { PathMatcher } from '../src/fs/glob.js';
import type { Snapshot } from '../src/model/snapshot.js';
import type { TreeNode } from '../src/model/tree.js';
import { Repository } from '../src/repository/repository.js';
import { BlobWriter } from '../src/repository/writer.js';

export interface BenchCatalogOptions {
  snapshots?: number;
  /** dirs x subdirs x files per leaf = files */
  dirs?: number;
  subdirs?: number;
  filesPerDir?: number;
  changedDirs?: number;
  changedPerDir?: number;
  /** Snapshots in the restic comparison (each is a real `restic backup`; 0 skips it). */
  resticSnapshots?: number;
}

function rng(seed: number): () => number {
  return xorshift32(seed).float;
}

const hex = (r: () => number) => Array.from({ length: 8 }, () => Math.floor(r() * 2 ** 32).toString(16).padStart(8, '0')).join('');

function fileNode(name: string, r: () => number, t: bigint): TreeNode {
  return { name: Buffer.from(name), type: 'file', mode: 0o644, uid: 1000, gid: 1000, user: 'ann', group: 'ann', mtimeNs: t, ctimeNs: t, inode: BigInt(Math.floor(r() * 1e9)), device: 2049n, size: Math.floor(r() * 1e6), nlink: 1, content: [hex(r)] };
}

function dirNode(name: string, subtree: string, t: bigint): TreeNode {
  return { name: Buffer.from(name), type: 'dir', mode: 0o755, uid: 1000, gid: 1000, user: 'ann', group: 'ann', mtimeNs: t, ctimeNs: t, inode: 1n, device: 2049n, subtree };
}

/** Writes a synthetic history; returns a function that appends one more snapshot. */
async function generate(repo: Repository, o: Required<BenchCatalogOptions>): Promise<() => Promise<void>> {
  const r = rng(0x9e3779b9);
  const t0 = Date.UTC(2024, 0, 1);
  const leaves: TreeNode[][] = [];
  for (let i = 0; i < o.dirs * o.subdirs; i++) {
    leaves.push(Array.from({ length: o.filesPerDir }, (_, j) => fileNode(`f${String(i * o.filesPerDir + j).padStart(7, '0')}.txt`, r, BigInt(t0) * 1_000_000n)));
  }
  const leafIds: string[] = [];
  const midIds: string[] = [];
  let n = 0;
  const snapshot = async (changed: Set<number>) => {
    const writer = new BlobWriter(repo, { workers: false });
    const t = BigInt(t0 + n * 86_400_000) * 1_000_000n;
    const mids = new Set<number>();
    for (const i of changed) {
      leafIds[i] = (await writer.save('tree', encodeTree({ nodes: leaves[i]! }))).id;
      mids.add(Math.floor(i / o.subdirs));
    }
    for (const d of mids) {
      const nodes = Array.from({ length: o.subdirs }, (_, s) => dirNode(`s${s}`, leafIds[d * o.subdirs + s]!, t));
      midIds[d] = (await writer.save('tree', encodeTree({ nodes }))).id;
    }
    const data = (await writer.save('tree', encodeTree({ nodes: midIds.map((id, d) => dirNode(`d${String(d).padStart(3, '0')}`, id, t)) }))).id;
    const root = (await writer.save('tree', encodeTree({ nodes: [dirNode('data', data, t)] }))).id;
    await writer.flush();
    await writer.close();
    const doc: Snapshot = {
      version: 1, time: new Date(t0 + n * 86_400_000).toISOString(), tree: root, paths: ['/data'], hostname: 'bench', username: 'ann',
      uid: 1000, gid: 1000, tags: [], excludes: [], program_version: 'snap bench',
    };
    await repo.saveMetadata('snapshot', doc);
    n++;
  };
  const next = async () => {
    const changed = new Set<number>();
    while (changed.size < o.changedDirs) changed.add(Math.floor(r() * leaves.length));
    const t = BigInt(t0 + n * 86_400_000) * 1_000_000n;
    for (const i of changed) {
      const files = leaves[i]!;
      for (let k = 0; k < o.changedPerDir; k++) {
        const j = Math.floor(r() * files.length);
        files[j] = fileNode(files[j]!.name.toString(), r, t);
      }
    }
    await snapshot(changed);
  };
  await snapshot(new Set(leaves.keys()));
  for (let i = 1; i < o.snapshots; i++) await next();
  return next;
}

function time<T>(fn: () => T): { ms: number; value: T } {
  const start = process.hrtime.bigint();
  const value = fn();
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, value };
}

/** restic on a real tree: `snapshots` backups with the same shape of change, then `restic find`. */
function benchRestic(o: Required<BenchCatalogOptions>): Record<string, number | string> {
  const dir = mkdtempSync(join(tmpdir(), 'snap-bench-restic-'));
  try {
    const env = { ...process.env, RESTIC_PASSWORD: 'pw', RESTIC_REPOSITORY: join(dir, 'repo'), RESTIC_CACHE_DIR: join(dir, 'cache') };
    const run = (args: string[]) => execFileSync('restic', args, { env, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 28 });
    run(['init']);
    const r = rng(12345);
    const root = join(dir, 'data');
    const total = o.dirs * o.subdirs;
    const leafPath = (i: number) => join(root, `d${String(Math.floor(i / o.subdirs)).padStart(3, '0')}`, `s${i % o.subdirs}`);
    for (let i = 0; i < total; i++) {
      mkdirSync(leafPath(i), { recursive: true });
      for (let j = 0; j < o.filesPerDir; j++) writeFileSync(join(leafPath(i), `f${String(i * o.filesPerDir + j).padStart(7, '0')}.txt`), `${i}.${j}`);
    }
    for (let s = 0; s < o.resticSnapshots; s++) {
      if (s > 0) {
        for (let c = 0; c < o.changedDirs; c++) {
          const i = Math.floor(r() * total);
          for (let k = 0; k < o.changedPerDir; k++) {
            const f = join(leafPath(i), `f${String(i * o.filesPerDir + Math.floor(r() * o.filesPerDir)).padStart(7, '0')}.txt`);
            writeFileSync(f, `${s}.${k}`);
            utimesSync(f, new Date(Date.UTC(2024, 0, 1 + s)), new Date(Date.UTC(2024, 0, 1 + s)));
          }
        }
      }
      run(['backup', '--quiet', '--host', 'bench', root]);
    }
    const start = process.hrtime.bigint();
    run(['find', 'f0012345*']);
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    return { restic_snapshots: o.resticSnapshots, restic_find_ms: Math.round(ms), restic_find_ms_per_snapshot: Math.round((ms / o.resticSnapshots) * 10) / 10 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchCatalog(opts: BenchCatalogOptions = {}): Promise<Record<string, number | string>> {
  const o: Required<BenchCatalogOptions> = {
    snapshots: 200, dirs: 100, subdirs: 10, filesPerDir: 100, changedDirs: 50, changedPerDir: 20, resticSnapshots: 5, ...opts,
  };
  const repo = await Repository.init(new MemoryBackend('bench'), 'pw', { kdfN: 1024 });
  const genStart = process.hrtime.bigint();
  const next = await generate(repo, o);
  const generateMs = Number(process.hrtime.bigint() - genStart) / 1e6;
  const dir = mkdtempSync(join(tmpdir(), 'snap-bench-catalog-'));
  const out: Record<string, number | string> = { files: o.dirs * o.subdirs * o.filesPerDir, snapshots: o.snapshots, changed_per_snapshot: o.changedDirs * o.changedPerDir };
  try {
    let catalog = Catalog.open(join(dir, 'catalog.db'), repo.config.id);
    let start = process.hrtime.bigint();
    await catalog.sync(repo);
    out.full_sync_ms = Math.round(Number(process.hrtime.bigint() - start) / 1e6);
    await next();
    start = process.hrtime.bigint();
    const inc = await catalog.sync(repo);
    out.incremental_sync_ms = Math.round(Number(process.hrtime.bigint() - start) / 1e6);
    out.incremental_sync_trees_read = inc.treesLoaded;
    // A fresh connection, as a query command has: no warm statement cache.
    catalog.close();
    catalog = Catalog.open(join(dir, 'catalog.db'), repo.config.id);
    const m = new PathMatcher(['f0012345*']);
    const find = time(() => findVersions(catalog, { name: (n) => m.matches(n) }, selectSnapshots(catalog, {})));
    out.find_glob_ms = Math.round(find.ms * 10) / 10;
    out.find_glob_versions = find.value.length;
    const broad = new PathMatcher(['f00123*']);
    const findBroad = time(() => findVersions(catalog, { name: (n) => broad.matches(n) }, selectSnapshots(catalog, {})));
    out.find_broad_glob_ms = Math.round(findBroad.ms * 10) / 10;
    out.find_broad_glob_versions = findBroad.value.length;
    const st = catalog.stats();
    catalog.close();
    Object.assign(out, { catalog_bytes: st.bytes, versions: st.versions, ranges: st.ranges, paths: st.paths, bytes_per_version: Math.round((st.bytes / st.versions) * 10) / 10 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  out.generate_ms = Math.round(generateMs);
  if (o.resticSnapshots > 0) {
    try {
      execFileSync('restic', ['version'], { stdio: 'ignore' });
      Object.assign(out, benchRestic(o));
      out.snap_find_vs_restic_ratio = Math.round(((out.find_glob_ms as number) / (out.restic_find_ms as number)) * 10000) / 10000;
    } catch (e) {
      out.restic = (e as { code?: string }).code === 'ENOENT' ? 'not on PATH' : `failed: ${(e as Error).message.split('\n')[0]}`;
    }
  }
  return out;
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const res = await benchCatalog({});
  for (const [k, v] of Object.entries(res)) console.log(`${k.padEnd(32)} ${v}`);
}
