// The catalog against an independent answer: a naive walk of every snapshot's trees. Histories are
// real backups of temp directories with files added, changed, deleted, renamed and re-added, two
// hosts interleaved, and snapshots forgotten (including a chain's head) between syncs.
import { xorshift32 } from '../../bench/prng.js';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { Handle, LoadOptions } from '../../src/backend/backend.js';
import { MemoryBackend } from '../../src/backend/memory.js';
import { Catalog, FreshTrees } from '../../src/catalog/catalog.js';
import { backup } from '../../src/engine/archiver.js';
import { calendarDays, findVersions, parseMonth, pathVersions, selectSnapshots } from '../../src/engine/finder.js';
import { walkTree } from '../../src/engine/walk.js';
import type { TreeNode } from '../../src/model/tree.js';
import { Repository } from '../../src/repository/repository.js';
import { CountingBackend } from '../helpers/counting-backend.js';

const tmp = mkdtempSync(join(tmpdir(), 'snap-catalog-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function rng(seed: number): () => number {
  return xorshift32(seed).float;
}

/** What identifies a version, computed without the catalog's code. */
function identity(n: TreeNode): string {
  return JSON.stringify([n.type, n.content ?? null, n.subtree ?? null, n.target?.toString('hex') ?? null, n.size ?? 0, n.mtimeNs.toString(), n.mode, n.uid, n.gid, n.user ?? '', n.group ?? '']);
}

/** path -> identity -> snapshot IDs, by walking every snapshot's whole tree. */
async function naive(repo: Repository): Promise<Map<string, Map<string, string[]>>> {
  const out = new Map<string, Map<string, string[]>>();
  for (const { id, snapshot } of await repo.listSnapshots()) {
    for await (const e of walkTree(repo, snapshot.tree)) {
      const p = e.path.toString('utf8');
      let m = out.get(p);
      if (!m) out.set(p, (m = new Map()));
      const k = identity(e.node);
      m.set(k, [...(m.get(k) ?? []), id]);
    }
  }
  return out;
}

/** "path type size mtime: sorted snapshot IDs", one line per version, sorted. */
function naiveLines(n: Map<string, Map<string, string[]>>): string[] {
  const lines: string[] = [];
  for (const [p, m] of n) {
    for (const [k, ids] of m) {
      const [type, , , , size, mtime] = JSON.parse(k) as [string, unknown, unknown, unknown, number, string];
      lines.push(`${p} ${type} ${size} ${mtime}: ${[...ids].sort().join(',')}`);
    }
  }
  return lines.sort();
}

/** Every row of the version tables, in ID order. */
function tableRows(file: string): unknown[][] {
  const db = new Database(file, { readonly: true });
  try {
    return ['paths ORDER BY id', 'owners ORDER BY id', 'versions ORDER BY id', 'ranges ORDER BY version, chain, first', 'snapshots ORDER BY seq', 'chains ORDER BY id'].map((t) => db.prepare(`SELECT * FROM ${t}`).raw().all());
  } finally {
    db.close();
  }
}

function catalogLines(cat: Catalog): string[] {
  return findVersions(cat, { name: () => true }, selectSnapshots(cat, {}))
    .map((v) => `${v.pathText} ${v.type} ${v.size} ${v.mtimeNs}: ${v.snapshots.map((s) => s.id).sort().join(',')}`)
    .sort();
}

interface History {
  repo: Repository;
  backend: MemoryBackend;
  day: number;
}

async function snapshotOf(h: History, src: string, host: string): Promise<string> {
  const res = await backup(h.repo, { paths: [src], host, time: new Date(Date.UTC(2026, 0, 1 + h.day++, 12)) });
  return res.id!;
}

/** Mutates a tree: changes, adds, deletes, renames and re-adds files, makes and removes dirs. */
function mutate(root: string, r: () => number, step: number, deleted: Map<string, { data: string; mtime: number }>, live: Set<string>): void {
  const pick = () => [...live][Math.floor(r() * live.size)]!;
  const write = (rel: string, data: string, mtime: number) => {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), data);
    utimesSync(join(root, rel), mtime, mtime);
    live.add(rel);
  };
  for (let i = 0; i < 3 && live.size > 0; i++) {
    const f = pick();
    write(f, `changed ${step} ${i}`, 1_700_000_000 + step * 100 + i);
  }
  write(`dir${Math.floor(r() * 4)}/new${step}.txt`, `new ${step}`, 1_700_000_000 + step);
  if (live.size > 4) {
    const f = pick();
    deleted.set(f, { data: readFileSync(join(root, f), 'utf8'), mtime: 1_700_000_000 + step });
    rmSync(join(root, f));
    live.delete(f);
  }
  if (live.size > 4) {
    const f = pick();
    const to = f.replace(/\.txt$/, `.r${step}.txt`);
    renameSync(join(root, f), join(root, to));
    live.delete(f);
    live.add(to);
  }
  // Re-add a file deleted earlier with the same contents and mtime: the same version again.
  const back = [...deleted.keys()].find((f) => !live.has(f));
  if (back && step % 3 === 0) {
    const d = deleted.get(back)!;
    write(back, d.data, d.mtime);
    utimesSync(join(root, back), d.mtime, d.mtime);
  }
  if (step === 4) rmSync(join(root, 'dir3'), { recursive: true, force: true });
  if (step === 4) for (const f of [...live]) if (f.startsWith('dir3/')) live.delete(f);
}

/** The backend with `before` run, and awaited, ahead of each load: to fail a load, or to race it. */
function beforeLoads(backend: MemoryBackend, before: (handle: Handle) => void | Promise<void>): MemoryBackend {
  return new Proxy(backend, {
    get(target, key) {
      const value = Reflect.get(target, key) as unknown;
      if (key === 'load') {
        return async (handle: Handle, opts?: LoadOptions) => {
          await before(handle);
          return target.load(handle, opts);
        };
      }
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

async function buildHistory(name: string, steps: number, opts: { sync?: (repo: Repository) => Promise<void>; forgetAt?: number[] } = {}): Promise<History & { srcA: string }> {
  const backend = new MemoryBackend(name);
  const repo = await Repository.init(backend, 'pw', { kdfN: 1024 });
  const h: History = { repo, backend, day: 0 };
  const srcA = join(tmp, name, 'a');
  const srcB = join(tmp, name, 'b');
  const r = rng(7 + name.length);
  const liveA = new Set<string>();
  const liveB = new Set<string>();
  for (let i = 0; i < 12; i++) {
    const rel = `dir${i % 4}/f${i}.txt`;
    mkdirSync(join(srcA, `dir${i % 4}`), { recursive: true });
    writeFileSync(join(srcA, rel), `file ${i}`);
    utimesSync(join(srcA, rel), 1_600_000_000, 1_600_000_000);
    liveA.add(rel);
  }
  mkdirSync(join(srcB, 'etc'), { recursive: true });
  writeFileSync(join(srcB, 'etc', 'hosts'), 'h');
  liveB.add('etc/hosts');
  const ids: string[] = [];
  const delA = new Map<string, { data: string; mtime: number }>();
  const delB = new Map<string, { data: string; mtime: number }>();
  for (let step = 0; step < steps; step++) {
    if (step > 0) mutate(srcA, r, step, delA, liveA);
    ids.push(await snapshotOf(h, srcA, 'alpha'));
    if (step % 2 === 0) {
      mutate(srcB, r, step, delB, liveB);
      ids.push(await snapshotOf(h, srcB, 'beta'));
    }
    if (opts.forgetAt?.includes(step)) {
      // Forget the newest snapshot (a chain's head) and one from the middle.
      await backend.remove({ type: 'snapshot', name: ids.pop()! });
      await backend.remove({ type: 'snapshot', name: ids.splice(Math.floor(ids.length / 2), 1)[0]! });
    }
    if (opts.sync && step % 3 === 2) await opts.sync(repo);
  }
  return { ...h, srcA };
}

describe('catalog equals a naive walk of every snapshot', () => {
  it('incremental syncs with forgotten snapshots, then a rebuild, give the naive answer', async () => {
    const file = join(tmp, 'inc', 'catalog.db');
    let cat: Catalog | undefined;
    const h = await buildHistory('inc', 14, {
      forgetAt: [5, 9],
      sync: async (repo) => {
        cat ??= Catalog.open(file, repo.config.id);
        await cat.sync(repo);
      },
    });
    expect(cat).toBeDefined();
    await cat!.sync(h.repo);
    const expected = naiveLines(await naive(h.repo));
    expect(expected.length).toBeGreaterThan(40);
    expect(catalogLines(cat!)).toEqual(expected);

    // Forget more (the alpha head), add after it: the chain continues from a forgotten head.
    const snaps = await h.repo.listSnapshots();
    const alphaHead = snaps.filter((s) => s.snapshot.hostname === 'alpha').pop()!;
    await h.backend.remove({ type: 'snapshot', name: alphaHead.id });
    writeFileSync(join(h.srcA, 'dir0', 'after.txt'), 'after');
    await snapshotOf(h, h.srcA, 'alpha');
    const res = await cat!.sync(h.repo);
    expect(res).toMatchObject({ added: 1, removed: 1 });
    expect(catalogLines(cat!)).toEqual(naiveLines(await naive(h.repo)));

    // Unchanged subtrees are not walked: a snapshot of an unchanged tree reads only its root.
    await snapshotOf(h, h.srcA, 'alpha');
    expect((await cat!.sync(h.repo)).treesLoaded).toBe(1);
    expect(catalogLines(cat!)).toEqual(naiveLines(await naive(h.repo)));

    const rebuilt = cat!.reset();
    await rebuilt.sync(h.repo);
    expect(catalogLines(rebuilt)).toEqual(naiveLines(await naive(h.repo)));
    rebuilt.close();
  }, 30_000);

  it('plans applied as they grow (snapshots of millions of files) give the same catalog, row for row', async () => {
    const h = await buildHistory('spill', 9, { forgetAt: [5] });
    const whole = Catalog.open(join(tmp, 'spill-whole', 'catalog.db'), h.repo.config.id);
    const parts = Catalog.open(join(tmp, 'spill-parts', 'catalog.db'), h.repo.config.id);
    await whole.sync(h.repo);
    // Three rows at a time: every directory's rows are applied before its subdirectories are read.
    await parts.sync(h.repo, { planRows: 3 });
    expect(catalogLines(parts)).toEqual(naiveLines(await naive(h.repo)));
    whole.close();
    parts.close();
    const [a, b] = [tableRows(whole.file), tableRows(parts.file)];
    expect(a[3]!.filter((r) => (r as unknown[])[3] !== null).length).toBeGreaterThan(0); // closed ranges
    expect(b).toEqual(a);
  }, 30_000);

  it('a sync that fails while a large plan is being applied leaves no part of that snapshot', async () => {
    const h = await buildHistory('spill-fail', 2);
    let metaLoads = 0;
    const failing = beforeLoads(h.backend, (handle) => {
      if (handle.type === 'meta' && ++metaLoads > 3) throw new Error('disk gone');
    });
    const repo = await Repository.open(failing, 'pw');
    const cat = Catalog.open(join(tmp, 'spill-fail-cache', 'catalog.db'), repo.config.id);
    await expect(cat.sync(repo, { planRows: 1 })).rejects.toThrow(/disk gone/);
    expect(metaLoads).toBeGreaterThan(3);
    cat.close();
    const [paths, owners, versions, ranges, snapshots, chains] = tableRows(cat.file);
    expect({ paths, owners, versions, ranges, snapshots, chains }).toEqual({ paths: [], owners: [], versions: [], ranges: [], snapshots: [], chains: [] });
    // The next sync starts over and completes.
    const again = Catalog.open(cat.file, h.repo.config.id);
    await again.sync(h.repo, { planRows: 1 });
    expect(catalogLines(again)).toEqual(naiveLines(await naive(h.repo)));
    again.close();
  }, 30_000);

  it('a sync that gives up on a catalog another process is writing leaves no interrupted-sync marker', async () => {
    const h = await buildHistory('busy', 2);
    const file = join(tmp, 'busy', 'catalog.db');
    let other: Database.Database | undefined;
    // Another process starts a long write just after this sync has listed the snapshots.
    const racing = beforeLoads(h.backend, (handle) => {
      if (handle.type === 'snapshot' && !other) {
        other = new Database(file);
        other.exec('BEGIN IMMEDIATE');
      }
    });
    const repo = await Repository.open(racing, 'pw');
    const cat = Catalog.open(file, repo.config.id, { busyTimeoutMs: 50 });
    await expect(cat.sync(repo)).rejects.toMatchObject({ code: 'SQLITE_BUSY' });
    cat.close();
    other!.exec('ROLLBACK');
    other!.close();
    // The next command would find this (exited) process's marker and report an interrupted sync.
    const db = new Database(file, { readonly: true });
    expect(db.prepare("SELECT value FROM meta WHERE key = 'sync_pid'").pluck().get()).toBeUndefined();
    db.close();
    const again = Catalog.open(file, h.repo.config.id);
    expect(again.notes).toEqual([]);
    await again.sync(h.repo);
    expect(catalogLines(again)).toEqual(naiveLines(await naive(h.repo)));
    again.close();
  }, 30_000);

  it('snapshots another process adds while this sync compares them are left to it, not retried until it gives up', async () => {
    const h = await buildHistory('twice', 3);
    const file = join(tmp, 'twice', 'catalog.db');
    const other = Catalog.open(file, h.repo.config.id);
    // The other process syncs everything, and commits, once this sync has listed the snapshots and
    // reads the first tree.
    let raced = false;
    const racing = beforeLoads(h.backend, async (handle) => {
      if (handle.type === 'meta' && !raced) {
        raced = true;
        await other.sync(h.repo);
      }
    });
    const repo = await Repository.open(racing, 'pw');
    const cat = Catalog.open(file, repo.config.id);
    const progress: number[] = [];
    const res = await cat.sync(repo, { onProgress: (done) => progress.push(done) });
    expect(raced).toBe(true);
    const ids = (await h.repo.listSnapshots()).map((e) => e.id);
    expect(res.added).toBe(0);
    expect(progress).toEqual(ids.map((_, i) => i + 1));
    expect(cat.snapshots().map((s) => s.id).sort()).toEqual(ids.sort());
    expect(catalogLines(cat)).toEqual(naiveLines(await naive(h.repo)));
    cat.close();
    other.close();
  }, 30_000);

  it('a sync limited to one chain (as after a backup) adds only its snapshots; a full sync adds the rest', async () => {
    const file = join(tmp, 'chain', 'catalog.db');
    let cat: Catalog | undefined;
    const h = await buildHistory('chain', 9, {
      sync: async (repo) => {
        cat ??= Catalog.open(file, repo.config.id);
        const alpha = (await repo.listSnapshots()).find((e) => e.snapshot.hostname === 'alpha')!.snapshot;
        await cat.sync(repo, { chain: alpha });
      },
    });
    const all = await h.repo.listSnapshots();
    const ids = (host: string) => all.filter((e) => e.snapshot.hostname === host).map((e) => e.id).sort();
    expect(ids('beta').length).toBeGreaterThan(0);
    expect(cat!.snapshots().map((s) => s.id).sort()).toEqual(ids('alpha'));
    const res = await cat!.sync(h.repo);
    expect(res.added).toBe(ids('beta').length);
    expect(catalogLines(cat!)).toEqual(naiveLines(await naive(h.repo)));
    cat!.close();
  }, 30_000);

  it('versions and calendar of one path equal the naive history; nothing reads a data pack', async () => {
    const h = await buildHistory('paths', 10);
    const counting = new CountingBackend(h.backend);
    const repo = await Repository.open(counting, 'pw');
    const cat = Catalog.open(join(tmp, 'paths', 'catalog.db'), repo.config.id);
    await cat.sync(repo);
    expect(counting.count('meta')).toBeGreaterThan(0);
    const truth = await naive(h.repo);
    const all = selectSnapshots(cat, {});
    for (const p of [...truth.keys()].filter((_, i) => i % 3 === 0)) {
      const got = pathVersions(cat, p, all).map((v) => v.snapshots.map((s) => s.id).sort().join(',')).sort();
      expect(got).toEqual([...truth.get(p)!.values()].map((ids) => [...ids].sort().join(',')).sort());
    }
    const f = findVersions(cat, { name: (n) => n === 'f1.txt' }, all);
    expect(f.length).toBeGreaterThan(0);
    expect(f.every((v) => v.pathText.endsWith('/f1.txt'))).toBe(true);
    const days = calendarDays(cat, all, parseMonth('2026-01'));
    expect(days.reduce((n, d) => n + d.count, 0)).toBe((await h.repo.listSnapshots()).length);
    const someFile = [...truth.keys()].find((p) => p.endsWith('/f0.txt'))!;
    const changes = calendarDays(cat, all, parseMonth('2026-01'), someFile);
    expect(changes.length).toBe(truth.get(someFile)!.size);
    expect(counting.count('data')).toBe(0);
    cat.close();
  }, 30_000);
});

/** A version's content and vkey as format-spec ch. 13.2 defines them, computed from its text. */
function specVersion(n: TreeNode): { content: Buffer; vkey: bigint } {
  const sha = (b: Buffer) => createHash('sha256').update(b).digest();
  const ids = n.content ?? [];
  let content = Buffer.alloc(0);
  if (n.type === 'file') content = ids.length === 1 ? Buffer.from(ids[0]!, 'hex').subarray(0, 16) : sha(Buffer.concat(ids.map((id) => Buffer.from(id, 'hex')))).subarray(0, 16);
  else if (n.type === 'dir') content = Buffer.from(n.subtree!, 'hex').subarray(0, 16);
  else if (n.type === 'symlink') content = sha(n.target!).subarray(0, 16);
  const f64 = (x: number) => { const b = Buffer.alloc(8); b.writeDoubleLE(x); return b; };
  const str = (x: string) => { const b = Buffer.from(x, 'utf8'); const l = Buffer.alloc(4); l.writeUInt32LE(b.length); return Buffer.concat([l, b]); };
  const mtime = Buffer.alloc(8);
  mtime.writeBigInt64LE(n.mtimeNs);
  const input = Buffer.concat([
    Buffer.from([['file', 'dir', 'symlink', 'fifo', 'socket', 'chardev', 'blockdev'].indexOf(n.type), content.length]),
    content, f64(n.size ?? 0), mtime, f64(n.mode), f64(n.uid), f64(n.gid), str(n.user ?? ''), str(n.group ?? ''),
  ]);
  return { content, vkey: sha(input).readBigInt64LE(0) };
}

describe('catalog rows', () => {
  it('hold content and vkey exactly as ch. 13.2 defines them, for fresh and read-back trees', async () => {
    const repo = await Repository.init(new MemoryBackend(), 'pw', { kdfN: 1024, chunker: { min: 4096, avg: 16384, max: 65536 } });
    const src = join(tmp, 'rows');
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'one-chunk'), 'hello');
    writeFileSync(join(src, 'empty'), '');
    writeFileSync(join(src, 'sub', 'many-chunks'), Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251)));
    symlinkSync('one-chunk', join(src, 'link'));
    // Distinct uid and gid (as root), so that the two fields cannot trade places unseen.
    if (process.getuid?.() === 0) chownSync(join(src, 'one-chunk'), 1234, 5678);
    const nodes: { path: string; node: TreeNode }[] = [];
    for (const fresh of [new FreshTrees(), undefined]) {
      const res = await backup(repo, { paths: [src], ...(fresh ? { onTree: (id: string, n: readonly TreeNode[]) => fresh.add(id, n) } : {}) });
      const cat = Catalog.open(join(tmp, `rows-${fresh ? 'fresh' : 'read'}.db`), repo.config.id);
      await cat.sync(repo, fresh ? { fresh } : {});
      cat.close();
      nodes.length = 0;
      for await (const e of walkTree(repo, (await repo.loadSnapshot(res.id!)).tree)) nodes.push({ path: e.path.toString('utf8'), node: e.node });
      const db = new Database(join(tmp, `rows-${fresh ? 'fresh' : 'read'}.db`));
      const rows = db
        .prepare('SELECT p.name AS name, v.content AS content, v.vkey AS vkey, o.uid AS uid, o.gid AS gid, o.user AS user, o.grp AS grp FROM versions v JOIN paths p ON p.id = v.path JOIN owners o ON o.id = v.owner')
        .safeIntegers(true)
        .all() as { name: string; content: Buffer; vkey: bigint; uid: bigint; gid: bigint; user: string; grp: string }[];
      db.close();
      const byName = new Map(rows.map((r) => [r.name, r]));
      for (const name of ['one-chunk', 'empty', 'many-chunks', 'link', 'sub']) {
        const n = nodes.find((x) => x.path.endsWith(`/${name}`))!.node;
        const want = specVersion(n);
        const owner = { uid: BigInt(n.uid), gid: BigInt(n.gid), user: n.user ?? '', grp: n.group ?? '' };
        expect(byName.get(name), name).toEqual({ name, content: want.content, vkey: want.vkey, ...owner });
      }
      expect(nodes.find((x) => x.path.endsWith('/many-chunks'))!.node.content!.length).toBeGreaterThan(1);
    }
  });
});

describe('catalog trust', () => {
  it('rebuilds a catalog of another repository, a newer schema and a corrupt file', async () => {
    const a = await Repository.init(new MemoryBackend('a'), 'pw', { kdfN: 1024 });
    const b = await Repository.init(new MemoryBackend('b'), 'pw', { kdfN: 1024 });
    const src = join(tmp, 'trust');
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'only-in-a'), 'a');
    await backup(a, { paths: [src] });
    const file = join(tmp, 'trust-cache', 'catalog.db');
    const ca = Catalog.open(file, a.config.id);
    await ca.sync(a);
    ca.close();

    const cb = Catalog.open(file, b.config.id);
    expect(cb.notes.join()).toMatch(/another repository/);
    await cb.sync(b);
    expect(cb.snapshots()).toEqual([]);
    cb.close();

    const db = new Database(file);
    db.prepare("UPDATE meta SET value = '99' WHERE key = 'schema_version'").run();
    db.close();
    const cn = Catalog.open(file, b.config.id);
    expect(cn.notes.join()).toMatch(/newer schema \(99\)/);
    cn.close();

    writeFileSync(file, Buffer.alloc(8192, 0x5a));
    rmSync(file + '-wal', { force: true });
    rmSync(file + '-shm', { force: true });
    const cc = Catalog.open(file, a.config.id);
    expect(cc.notes.join()).toMatch(/unreadable/);
    await cc.sync(a);
    expect(findVersions(cc, { name: (n) => n === 'only-in-a' }, selectSnapshots(cc, {}))).toHaveLength(1);
    cc.close();
  });
});

/** Tree packs answer after a delay, like a remote repository; counts the loads running at once. */
class SlowTrees extends CountingBackend {
  running = 0;
  most = 0;

  override async load(...args: Parameters<CountingBackend['load']>): Promise<Buffer> {
    if (args[0].type !== 'meta') return super.load(...args);
    this.most = Math.max(this.most, ++this.running);
    try {
      await new Promise((r) => setTimeout(r, 20));
      return await super.load(...args);
    } finally {
      this.running--;
    }
  }
}

describe('catalog sync of a remote repository', () => {
  it('loads subdirectory trees ahead, several at once, and still equals the naive walk', async () => {
    const backend = new MemoryBackend('wide');
    const repo = await Repository.init(backend, 'pw', { kdfN: 1024 });
    const src = join(tmp, 'wide');
    for (let i = 0; i < 24; i++) {
      mkdirSync(join(src, `d${i}`, 'sub'), { recursive: true });
      writeFileSync(join(src, `d${i}`, 'sub', 'f'), `file ${i}`);
    }
    await backup(repo, { paths: [src] });
    const slow = new SlowTrees(backend);
    const remote = await Repository.open(slow, 'pw');
    const cat = Catalog.open(join(tmp, 'wide-cache', 'catalog.db'), remote.config.id);
    const res = await cat.sync(remote);
    expect(res.treesLoaded).toBeGreaterThan(48);
    expect(slow.most).toBeGreaterThan(4);
    expect(catalogLines(cat)).toEqual(naiveLines(await naive(repo)));
    cat.close();
  }, 30_000);

  it('after a backup, syncs the new snapshot without reading a tree back from the repository', async () => {
    const counting = new CountingBackend(new MemoryBackend('after-backup'));
    const repo = await Repository.init(counting, 'pw', { kdfN: 1024 });
    const src = join(tmp, 'after-backup');
    for (let i = 0; i < 5; i++) {
      mkdirSync(join(src, `d${i}`, 'sub'), { recursive: true });
      writeFileSync(join(src, `d${i}`, 'f'), `file ${i}`);
      writeFileSync(join(src, `d${i}`, 'sub', 'empty'), '');
      // More rows than a plan of fresh trees holds (1000): applied in parts as the trees are walked.
      for (let k = 0; k < 250; k++) writeFileSync(join(src, `d${i}`, `many-${k}`), `${i}.${k}`);
    }
    // Every kind of value the backup's trees hand over: a name that is not UTF-8, a symlink, odd
    // modes and an mtime before 1970.
    writeFileSync(Buffer.concat([Buffer.from(join(src, 'd1') + '/'), Buffer.from([0x66, 0xff, 0xfe])]), 'latin');
    symlinkSync('d0/f', join(src, 'link'));
    chmodSync(join(src, 'd2', 'f'), 0o4751);
    utimesSync(join(src, 'd3', 'f'), -86_400.5, -86_400.5);
    const fresh = new FreshTrees();
    await backup(repo, { paths: [src], onTree: (id, nodes) => fresh.add(id, nodes) });
    counting.reset();
    const cat = Catalog.open(join(tmp, 'after-backup-cache', 'catalog.db'), repo.config.id);
    const res = await cat.sync(repo, { fresh });
    expect(res.treesLoaded).toBeGreaterThan(6);
    expect(counting.count('meta')).toBe(0);
    expect(catalogLines(cat)).toEqual(naiveLines(await naive(repo)));
    // Without the backup's trees, the sync reads them from the repository, to the same catalog.
    const other = await Repository.open(counting, 'pw');
    const cat2 = Catalog.open(join(tmp, 'after-backup-cache2', 'catalog.db'), other.config.id);
    await cat2.sync(other);
    expect(counting.count('meta')).toBeGreaterThan(0);
    expect(catalogLines(cat2)).toEqual(catalogLines(cat));
    cat.close();
    cat2.close();
    // Row for row the same, every column: the trees kept packed lose nothing.
    const [fromFresh, fromRepo] = [tableRows(cat.file), tableRows(cat2.file)];
    expect(fromFresh[2]!.length).toBeGreaterThan(15);
    expect(fromFresh).toEqual(fromRepo);
  }, 30_000);
});
