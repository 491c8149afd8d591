// Shared by the check/prune/forget/lock tests: real repositories on disk, the built CLI spawned.
import { xorshift32 } from '../../bench/prng.js';
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalBackend } from '../../src/backend/local.js';
import { snapRun, type AsyncRunResult } from '../helpers/cli.js';
import { Repository } from '../../src/repository/repository.js';

export const PASSWORD = 'test-password';

export type Run = AsyncRunResult;

/** Runs the CLI without blocking this process, with the test password. */
export function snap(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return snapSpawn(args, env);
}

/** Starts the CLI without waiting (for concurrency tests); `pid` is the child's. */
export function snapSpawn(args: string[], env: Record<string, string> = {}): Promise<Run> & { pid: number } {
  return snapRun(args, { ...(process.env as Record<string, string>), SNAP_PASSWORD: PASSWORD, ...env });
}

export async function tempDir(prefix = 'snap-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** A repository with small chunks and packs, so little data makes many packs. */
export async function initRepo(dir: string, opts: { dataPackTarget?: number } = {}): Promise<Repository> {
  return Repository.init(new LocalBackend(dir), PASSWORD, {
    kdfN: 1024,
    chunker: { min: 2048, avg: 8192, max: 32768 },
    dataPackTarget: opts.dataPackTarget ?? 64 * 1024,
    metaPackTarget: 64 * 1024,
  });
}

export async function openRepo(dir: string): Promise<Repository> {
  const repo = await Repository.open(new LocalBackend(dir), PASSWORD);
  await repo.loadIndex();
  return repo;
}

/** Deterministic numbers in [0, 1). */
export function prng(seed: number): () => number {
  return xorshift32(seed).float;
}

export function randomBytesSeeded(size: number, seed: number): Buffer {
  const r = prng(seed);
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4) b.writeUInt32LE(Math.floor(r() * 4294967296), i - (i + 4 > size ? i + 4 - size : 0));
  return b;
}

/** Writes `files` files of ~size bytes under dir; version v changes some of them. */
export async function writeTree(dir: string, v: number, files = 6, size = 40_000): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < files; i++) {
    // Each version rewrites one file wholly and leaves the others, so versions share most blobs.
    const seed = i === v % files ? 1000 * v + i + 1 : i + 1;
    await writeFile(join(dir, `f${i}.bin`), randomBytesSeeded(size + i * 1000, seed));
  }
  await writeFile(join(dir, 'version.txt'), `v${v}\n`);
}

/** Reads every file under dir into a map path -> bytes (for byte-identical comparisons). */
export async function readAll(dir: string, base = dir, out = new Map<string, Buffer>()): Promise<Map<string, Buffer>> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await readAll(p, base, out);
    else if (e.isFile()) out.set(p.slice(base.length), await readFile(p));
  }
  return out;
}

export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(p);
    }
  };
  await walk(dir).catch(() => undefined);
  return out.sort();
}

/** Flips one bit in a file. */
export async function flipBit(file: string, at?: number): Promise<void> {
  const b = await readFile(file);
  const pos = at ?? Math.floor(b.length / 2);
  b[pos] = b[pos]! ^ 0x10;
  await writeFile(file, b);
}

export { rm };
