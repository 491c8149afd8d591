// Restores whose packs become readable in rounds (cold storage): what each round restores, that
// every pack is read once, and what a later run finishes. The readablePacks/awaitPacks hooks are the
// ones the CLI gives a cold S3 repository (s3-thaw.test.ts drives them through the cold proxy).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { LocalBackend } from '../../src/backend/local.js';
import { backup } from '../../src/engine/archiver.js';
import { restore, type RestoreProgress, type RestoreResult } from '../../src/engine/restorer.js';
import { walkTree } from '../../src/engine/walk.js';
import { mkfifo } from '../../src/native/binding.js';
import { Repository } from '../../src/repository/repository.js';
import { CountingBackend } from '../helpers/counting-backend.js';
import { PASSWORD, initRepo, randomBytesSeeded, readAll, snap, tempDir } from './helpers.js';

interface FilePacks {
  /** Path relative to the backed-up directory. */
  rel: string;
  packs: Set<string>;
}

describe('a restore in rounds, as packs become readable', () => {
  let dir: string;
  let src: string;
  let root: string;
  let files: FilePacks[];
  let big: FilePacks;

  beforeAll(async () => {
    dir = await tempDir();
    src = join(dir, 'src');
    mkdirSync(join(src, 'a'), { recursive: true });
    mkdirSync(join(src, 'b'), { recursive: true });
    // 64 KiB packs: the big file spans several, the small files share some.
    writeFileSync(join(src, 'big.bin'), randomBytesSeeded(400_000, 1));
    for (let i = 0; i < 12; i++) writeFileSync(join(src, i < 6 ? 'a' : 'b', `f${i}`), randomBytesSeeded(3000 + i * 4000, 100 + i));
    writeFileSync(join(src, 'a', 'empty'), '');
    const repo = await initRepo(join(dir, 'repo'));
    const res = await backup(repo, { paths: [src] });
    root = res.snapshot.tree;
    files = [];
    const prefix = Buffer.from(src + '/');
    for await (const e of walkTree(repo, root)) {
      if (e.node.type !== 'file') continue;
      const rel = e.path.toString().slice(prefix.length);
      files.push({ rel, packs: new Set((e.node.content ?? []).map((id) => repo.locate(id, 'data').pack)) });
    }
    big = files.find((f) => f.rel === 'big.bin')!;
    expect(big.packs.size).toBeGreaterThanOrEqual(3);
  }, 30_000);

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const open = async () => {
    const counting = new CountingBackend(new LocalBackend(join(dir, 'repo')));
    const repo = await Repository.open(counting, PASSWORD);
    await repo.loadIndex();
    counting.reset();
    return { repo, counting };
  };
  const dataLoads = (c: CountingBackend) => c.loaded.filter((h) => h.type === 'data').map((h) => h.name);
  /** The packs readable at first: the big file's first one, so that it spans readable and cold packs. */
  const firstReadable = () => new Set([[...big.packs][0]!]);
  const complete = (readable: Set<string>) => files.filter((f) => [...f.packs].every((p) => readable.has(p)));
  /** Nothing left pending, every file byte-identical, and no pack read twice. */
  const expectWholeReadOnce = async (res: RestoreResult, counting: CountingBackend, target: string) => {
    expect(res.packsPending).toEqual([]);
    const loads = dataLoads(counting);
    expect(loads.length).toBe(new Set(loads).size);
    expect(await readAll(target)).toEqual(await readAll(src));
  };

  it('a file is restored in the round its last pack is readable; each pack is read once', async () => {
    const { repo, counting } = await open();
    const target = join(dir, 'out-wait');
    const readable = firstReadable();
    const whole = complete(readable).map((f) => f.rel);
    // Round 1 can finish the empty file and the files wholly in the readable pack, not the big file.
    expect(whole).toContain('a/empty');
    expect(whole).not.toContain('big.bin');
    expect(files.length - whole.length).toBeGreaterThan(1);
    let rounds = 0;
    const progress: RestoreProgress[] = [];
    const res = await restore(repo, {
      tree: root,
      subpath: src,
      target,
      onProgress: (p) => progress.push(p),
      readablePacks: async (needed) => {
        // The survey has shown its totals (a large restore's trees take minutes to read).
        expect(progress.at(-1)).toMatchObject({ filesTotal: files.length, filesDone: 0, bytesDone: 0 });
        expect(needed.map((p) => p.id).sort()).toEqual([...new Set(files.flatMap((f) => [...f.packs]))].sort());
        // The plan is made before anything is read or written.
        expect(dataLoads(counting)).toEqual([]);
        expect(existsSync(join(target, 'a', 'empty'))).toBe(false);
        return readable;
      },
      awaitPacks: async (pending) => {
        rounds++;
        // After round 1: exactly the files whose packs were all readable are in place.
        for (const f of files) expect(existsSync(join(target, f.rel)), f.rel).toBe(whole.includes(f.rel));
        expect(new Set(dataLoads(counting))).toEqual(readable);
        expect(pending.map((p) => p.id).sort()).toEqual([...new Set(files.flatMap((f) => [...f.packs]))].filter((p) => !readable.has(p)).sort());
        return new Set(pending.map((p) => p.id));
      },
    });
    expect(rounds).toBe(1);
    expect(res.filesRestored).toBe(files.length);
    // The big file's first pack was read in round 1 only: its blobs waited in the temporary file.
    await expectWholeReadOnce(res, counting, target);
  }, 30_000);

  it('packs that thaw one by one soon after a round wait for each other: one more round, not one per pack', async () => {
    const { repo, counting } = await open();
    const target = join(dir, 'out-trickle');
    const readable = firstReadable();
    // Data packs read by the time of each awaitPacks call.
    const readAtCall: number[] = [];
    const res = await restore(repo, {
      tree: root,
      subpath: src,
      target,
      readablePacks: async () => readable,
      awaitPacks: async (pending) => {
        readAtCall.push(dataLoads(counting).length);
        return new Set([pending[0]!.id]);
      },
    });
    const cold = new Set(files.flatMap((f) => [...f.packs])).size - readable.size;
    expect(cold).toBeGreaterThan(2);
    // Every cold pack was waited for before the next round read any of them.
    expect(readAtCall).toEqual(Array(cold).fill(readable.size));
    await expectWholeReadOnce(res, counting, target);
  }, 30_000);

  it('Ctrl-C during the survey stops it before any thaw is asked for or pack read', async () => {
    const { repo, counting } = await open();
    const target = join(dir, 'out-interrupted');
    const abort = new AbortController();
    let asked = false;
    const run = restore(repo, {
      tree: root,
      subpath: src,
      target,
      signal: abort.signal,
      onProgress: () => abort.abort(),
      readablePacks: async (needed) => {
        asked = true;
        return new Set(needed.map((p) => p.id));
      },
    });
    await expect(run).rejects.toThrow(/restore interrupted; run the same command again/);
    expect(asked).toBe(false);
    expect(dataLoads(counting)).toEqual([]);
    expect(files.some((f) => existsSync(join(target, f.rel)))).toBe(false);
  }, 30_000);

  it('without waiting, the cold packs stay pending; the next run reads only those and finishes', async () => {
    const target = join(dir, 'out-nowait');
    const readable = firstReadable();
    const first = await open();
    const r1 = await restore(first.repo, { tree: root, subpath: src, target, readablePacks: async () => readable });
    const cold = [...new Set(files.flatMap((f) => [...f.packs]))].filter((p) => !readable.has(p));
    expect(r1.packsPending.sort()).toEqual(cold.sort());
    expect(r1.filesRestored).toBe(complete(readable).length);
    expect(existsSync(join(target, 'big.bin'))).toBe(false);

    const second = await open();
    const r2 = await restore(second.repo, { tree: root, subpath: src, target, readablePacks: async (needed) => new Set(needed.map((p) => p.id)) });
    expect(r2.packsPending).toEqual([]);
    // The big file's readable blobs are kept from the first run; done files are not rewritten.
    expect(r2.packsNeeded.map((p) => p.id).sort()).toEqual(cold.sort());
    expect(dataLoads(second.counting).sort()).toEqual(cold.sort());
    expect(r2.filesSkipped).toBe(complete(readable).length);
    expect(await readAll(target)).toEqual(await readAll(src));
    expect(readFileSync(join(target, 'big.bin')).equals(readFileSync(join(src, 'big.bin')))).toBe(true);
  }, 30_000);
});

describe('a restore from cold storage of many files', () => {
  const DIRS = 50;
  const PER_DIR = 1000;
  let dir: string;

  beforeAll(async () => {
    dir = await tempDir();
    for (let d = 0; d < DIRS; d++) {
      mkdirSync(join(dir, 'src', `d${d}`), { recursive: true });
      for (let i = 0; i < PER_DIR; i++) writeFileSync(join(dir, 'src', `d${d}`, `file-${i}`), `file ${d}/${i}\n`);
    }
    await initRepo(join(dir, 'repo'));
    const b = await snap(['backup', '-r', join(dir, 'repo'), '--no-cache', join(dir, 'src')]);
    expect(b.code, b.stderr).toBe(0);
  }, 60_000);

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('holds no plan per file: 50,000 files restore in a 40 MB heap', () => {
    // Thaw planning needs every pack before the first read. Planning every file up front held
    // ~1.2 KB of heap per file (50,000 files: out of memory in 48 MB). The survey keeps the packs,
    // and a restore needs 20-24 MB of heap whatever the number of files (work in flight).
    const dist = resolve(import.meta.dirname, '../../dist/src');
    const script = `
      const { LocalBackend } = await import(${JSON.stringify(join(dist, 'backend/local.js'))});
      const { Repository } = await import(${JSON.stringify(join(dist, 'repository/repository.js'))});
      const { restore } = await import(${JSON.stringify(join(dist, 'engine/restorer.js'))});
      const repo = await Repository.open(new LocalBackend(${JSON.stringify(join(dir, 'repo'))}), ${JSON.stringify(PASSWORD)});
      await repo.loadIndex();
      const { snapshot } = await repo.findSnapshot('latest');
      const res = await restore(repo, { tree: snapshot.tree, subpath: ${JSON.stringify(join(dir, 'src'))}, target: ${JSON.stringify(join(dir, 'out'))},
        readablePacks: async (packs) => new Set(packs.map((p) => p.id)) });
      console.log(JSON.stringify(res));`;
    writeFileSync(join(dir, 'restore.mjs'), script);
    const r = spawnSync(process.execPath, ['--max-old-space-size=40', join(dir, 'restore.mjs')], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as { filesRestored: number; packsPending: string[] };
    expect(res.filesRestored).toBe(DIRS * PER_DIR);
    expect(res.packsPending).toEqual([]);
    expect(readdirSync(join(dir, 'out'))).toHaveLength(DIRS);
    for (const [d, i] of [[0, 0], [17, 523], [DIRS - 1, PER_DIR - 1]]) {
      expect(readFileSync(join(dir, 'out', `d${d}`, `file-${i}`), 'utf8')).toBe(`file ${d}/${i}\n`);
    }
  }, 60_000);
});

describe('restore options', () => {
  const dirs: string[] = [];

  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  /** A tree made by `make` in a new directory, backed up into a new repository. */
  const backedUp = async (make: (src: string) => void) => {
    const dir = await tempDir();
    dirs.push(dir);
    const src = join(dir, 'src');
    mkdirSync(src);
    make(src);
    const repo = await initRepo(join(dir, 'repo'));
    const { snapshot } = await backup(repo, { paths: [src] });
    return { dir, src, repo, tree: snapshot.tree };
  };

  it('--verify reads back every file it leaves in place, hard links included, and names the ones that differ', async () => {
    const { dir, src, repo, tree } = await backedUp((src) => {
      mkdirSync(join(src, 'sub'));
      writeFileSync(join(src, 'a.txt'), 'a as backed up\n');
      writeFileSync(join(src, 'sub', 'b.bin'), randomBytesSeeded(50_000, 7));
      writeFileSync(join(src, 'sub', 'linked'), 'linked as backed up\n');
      linkSync(join(src, 'sub', 'linked'), join(src, 'sub', 'z-link'));
    });
    // --overwrite never keeps what is there: a.txt and the first path of the linked inode differ.
    const target = join(dir, 'out');
    mkdirSync(join(target, 'sub'), { recursive: true });
    writeFileSync(join(target, 'a.txt'), 'changed\n');
    writeFileSync(join(target, 'sub', 'linked'), 'changed too\n');
    const warnings: string[] = [];
    const res = await restore(repo, { tree, subpath: src, target, overwrite: 'never', verify: true, onWarning: (m) => warnings.push(m) });
    expect(res.filesSkipped).toBe(2);
    expect(res.verifyErrors).toBe(3);
    expect(warnings.map((w) => w.replace(target, ''))).toEqual([
      '/a.txt: verification failed: restored content differs from the snapshot',
      '/sub/linked: verification failed: restored content differs from the snapshot',
      '/sub/z-link: verification failed: restored content differs from the snapshot',
    ]);
    expect(readFileSync(join(target, 'sub', 'b.bin')).equals(readFileSync(join(src, 'sub', 'b.bin')))).toBe(true);
  }, 30_000);

  it('gives each directory its own mtime after everything in it is made, special files included', async () => {
    const dirs = ['a', 'a/b', 'a/b/c', 'a/d'];
    const { dir, src, repo, tree } = await backedUp((src) => {
      for (const d of dirs) mkdirSync(join(src, d), { recursive: true });
      writeFileSync(join(src, 'a/b/c/file'), 'file');
      symlinkSync('c/file', join(src, 'a/b/link'));
      mkfifo(join(src, 'a/b/c/fifo'), 0o644);
      symlinkSync('../b', join(src, 'a/d/up'));
      // Each directory an hour apart, in the past: creating anything in one would show.
      dirs.forEach((d, i) => utimesSync(join(src, d), 1_000_000_000 + i * 3600, 1_000_000_000 + i * 3600));
    });
    // Kept from the first walk, and (past the bound: none kept) found by a last walk.
    for (const keptEntries of [undefined, 0]) {
      const target = join(dir, `out-${keptEntries ?? 'kept'}`);
      const res = await restore(repo, { tree, subpath: src, target, ...(keptEntries === undefined ? {} : { keptEntries }) });
      expect(res.dirs).toBe(dirs.length);
      expect(res.otherNodes).toBe(3);
      for (const d of dirs) expect(lstatSync(join(target, d)).mtimeMs, `${d} (${keptEntries})`).toBe(lstatSync(join(src, d)).mtimeMs);
    }
  }, 30_000);

  it('--include restores what is included with the directories above it, and no directory that holds none of it', async () => {
    const { dir, src, repo, tree } = await backedUp((src) => {
      for (const d of ['a/b/c', 'a/x', 'empty-kept', 'other/deep']) mkdirSync(join(src, d), { recursive: true });
      for (const f of ['a/b/c/keep-1', 'a/b/drop', 'a/x/drop', 'keep-top', 'other/deep/drop', 'other/drop']) writeFileSync(join(src, f), f);
    });
    const target = join(dir, 'out');
    const res = await restore(repo, { tree, subpath: src, target, include: ['**/keep-*', '**/empty-kept'] });
    expect(res.filesRestored).toBe(2);
    const found: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        found.push(join(d, e.name).slice(target.length) + (e.isDirectory() ? '/' : ''));
        if (e.isDirectory()) walk(join(d, e.name));
      }
    };
    walk(target);
    expect(found.sort()).toEqual(['/a/', '/a/b/', '/a/b/c/', '/a/b/c/keep-1', '/empty-kept/', '/keep-top']);
  }, 30_000);
});
