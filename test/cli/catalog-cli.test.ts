// find / versions / calendar / catalog through the compiled CLI: backup updates the catalog, a
// deleted catalog or one left by a sync killed with SIGKILL is repaired by the next command, and bad
// input gets one line and a documented exit code.
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, utimesSync, writeFileSync, cpSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRepo, snap, tempDir } from '../helpers/cli.js';

const CHILD = resolve(import.meta.dirname, '../catalog/fixtures/interrupt-child.mjs');

function oneLineError(stderr: string): void {
  expect(stderr).not.toMatch(/\n\s+at /);
  expect(stderr.trim().split('\n')[0]).toMatch(/^snap: /);
}

const lines = (s: string) => s.trim().split('\n').filter(Boolean);

describe('catalog CLI', () => {
  const tmp = tempDir();
  const repo = join(tmp.path, 'repo');
  const src = join(tmp.path, 'src');
  const cache = join(tmp.path, 'cache');
  let env: Record<string, string>;
  const run = (args: string[], cacheDir = cache) => snap(['--cache-dir', cacheDir, ...args], env);
  const catalogDb = (cacheDir = cache) => join(cacheDir, readdirSync(cacheDir)[0]!, 'catalog.db');

  beforeAll(() => {
    mkdirSync(join(src, 'docs'), { recursive: true });
    env = initRepo(repo);
    const write = (rel: string, data: string, t: number) => {
      writeFileSync(join(src, rel), data);
      utimesSync(join(src, rel), t, t);
    };
    write('docs/report.txt', 'v1', 1_700_000_000);
    write('docs/Notes.MD', 'n', 1_700_000_000);
    expect(run(['backup', src, '--time', '2026-03-02T10:00:00Z', '--tag', 'daily']).code).toBe(0);
    write('docs/report.txt', 'version 2', 1_700_100_000);
    expect(run(['backup', src, '--time', '2026-03-03T10:00:00Z', '--tag', 'daily,db']).code).toBe(0);
    expect(run(['backup', src, '--time', '2026-03-03T18:00:00Z', '--tag', 'weekly']).code).toBe(0);
    write('docs/report.txt', 'v3', 1_700_200_000);
    expect(run(['backup', src, '--time', '2026-03-09T10:00:00Z']).code).toBe(0);
  }, 40_000);
  afterAll(() => tmp.cleanup());

  it('backup updates the catalog as it finishes', () => {
    const db = new Database(catalogDb(), { readonly: true });
    expect(db.prepare('SELECT count(*) FROM snapshots').pluck().get()).toBe(4);
    db.close();
  });

  it('find: one line per distinct version with first/last snapshot and count; --iname, --all, filters', () => {
    const r = run(['find', 'report.txt', '--json']);
    expect(r.code).toBe(0);
    const docs = lines(r.stdout).map((l) => JSON.parse(l) as { path: string; size: number; count: number; first: { time: string }; last: { time: string }; snapshots?: unknown[] });
    expect(docs.map((d) => [d.path, d.size, d.count, d.first.time, d.last.time])).toEqual([
      [join(src, 'docs/report.txt'), 2, 1, '2026-03-02T10:00:00.000Z', '2026-03-02T10:00:00.000Z'],
      [join(src, 'docs/report.txt'), 9, 2, '2026-03-03T10:00:00.000Z', '2026-03-03T18:00:00.000Z'],
      [join(src, 'docs/report.txt'), 2, 1, '2026-03-09T10:00:00.000Z', '2026-03-09T10:00:00.000Z'],
    ]);
    expect(docs[0]!.snapshots).toBeUndefined();
    expect(lines(run(['find', 'report.txt', '--json', '--all']).stdout).map((l) => (JSON.parse(l) as { snapshots: unknown[] }).snapshots.length)).toEqual([1, 2, 1]);
    expect(lines(run(['find', 'notes.md', '--json']).stdout)).toHaveLength(0);
    expect(lines(run(['find', 'notes.md', '--iname', '--json']).stdout)).toHaveLength(1);
    expect(lines(run(['find', '*', '--type', 'dir', '--json']).stdout).every((l) => (JSON.parse(l) as { type: string }).type === 'dir')).toBe(true);
    expect(lines(run(['find', 'report.txt', '--larger', '5', '--json']).stdout)).toHaveLength(1);
    expect(lines(run(['find', 'report.txt', '--since', '2026-03-05', '--json']).stdout)).toHaveLength(1);
    expect(lines(run(['find', '--path', '/**/docs/*.txt', '--json']).stdout)).toHaveLength(3);
    // --tag and --host as in snapshots, forget and tag: comma = all of them, repeated = any.
    const sizes = (args: string[]) => lines(run(['find', 'report.txt', '--json', '--all', ...args]).stdout).map((l) => JSON.parse(l) as { size: number; snapshots: unknown[] }).map((d) => [d.size, d.snapshots.length]);
    expect(sizes(['--tag', 'daily'])).toEqual([[2, 1], [9, 1]]);
    expect(sizes(['--tag', 'daily,db'])).toEqual([[9, 1]]);
    expect(sizes(['--tag', 'db', '--tag', 'weekly'])).toEqual([[9, 2]]);
    expect(sizes(['--tag', 'daily,weekly'])).toEqual([]);
    expect(sizes(['--host', 'nope'])).toEqual([]);
    expect(sizes(['--host', 'nope', '--host', hostname()])).toHaveLength(3);
    const text = run(['find', 'report.txt']);
    expect(text.stdout).toMatch(/3 versions of 1 paths/);
  }, 30_000);

  it('versions and calendar', () => {
    const v = run(['versions', join(src, 'docs/report.txt'), '--json']);
    expect(v.code).toBe(0);
    expect(lines(v.stdout).map((l) => (JSON.parse(l) as { snapshots: unknown[] }).snapshots.length)).toEqual([1, 2, 1]);
    const c = run(['calendar', '--month', '2026-03', '--json']);
    expect(JSON.parse(c.stdout).days.map((d: { date: string; count: number }) => [d.date, d.count])).toEqual([
      ['2026-03-02', 1], ['2026-03-03', 2], ['2026-03-09', 1],
    ]);
    const p = run(['calendar', '--path', join(src, 'docs/report.txt'), '--json']);
    expect(JSON.parse(p.stdout).days.map((d: { date: string }) => d.date)).toEqual(['2026-03-02', '2026-03-03', '2026-03-09']);
    expect(run(['calendar', '--month', '2026-03']).stdout).toMatch(/ 3\[2\]/);
  }, 30_000);

  it('bad input: one line and a documented exit code', () => {
    const cases: [string[], number, RegExp][] = [
      [['find', '[abc'], 2, /unclosed \[/],
      [['find'], 2, /PATTERN or --path/],
      [['find', 'a/b'], 2, /--path/],
      [['find', 'x', '--snapshot', 'ffffffff'], 1, /no snapshot with ID ffffffff/],
      [['find', 'x', '--snapshot', 'nothex'], 2, /not a snapshot ID/],
      [['find', 'x', '--newer', 'yesterdayish'], 2, /--newer: "yesterdayish" is not a date/],
      [['find', 'x', '--larger', 'lots'], 2, /not a size/],
      [['versions', '/never/backed/up'], 1, /no snapshot holds this path/],
      [['calendar', '--month', '2026-13'], 2, /not a month/],
      [['calendar', '--path', '/never/backed/up'], 1, /no snapshot holds this path/],
    ];
    for (const [args, code, msg] of cases) {
      const r = run(args);
      expect([args, r.code]).toEqual([args, code]);
      oneLineError(r.stderr);
      expect(r.stderr).toMatch(msg);
    }
    const empty = join(tmp.path, 'empty');
    const emptyEnv = initRepo(empty);
    const r = snap(['--cache-dir', cache, 'find', 'x'], emptyEnv);
    expect(r.code).toBe(1);
    oneLineError(r.stderr);
    expect(r.stderr).toMatch(/the repository has no snapshots/);
  }, 30_000);

  it('a deleted catalog is rebuilt by the next query', () => {
    const before = run(['find', '*', '--json']).stdout;
    rmSync(join(cache, readdirSync(cache)[0]!), { recursive: true });
    const after = run(['find', '*', '--json']);
    expect(after.code).toBe(0);
    expect(lines(after.stdout).length).toBeGreaterThan(3);
    expect(after.stdout).toBe(before);
  }, 30_000);

  it('a sync killed with SIGKILL is detected and repaired by the next command', async () => {
    const reference = run(['find', '*', '--json']).stdout;
    const cache2 = join(tmp.path, 'cache-killed');
    const child = spawn(process.execPath, [CHILD, repo, cache2, env.SNAP_PASSWORD!, '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    await new Promise<void>((res, rej) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('frozen')) res();
      });
      child.on('exit', () => rej(new Error(`child exited before freezing: ${out}`)));
    });
    child.kill('SIGKILL');
    await new Promise((res) => child.once('exit', res));
    expect(out).not.toMatch(/finished/);
    // Copy while nothing has it open: the WAL is part of the state the kill left.
    const db = new Database(catalogDb(cache2), { readonly: true });
    expect(db.prepare('SELECT count(*) FROM snapshots').pluck().get()).toBe(2);
    expect(db.prepare("SELECT value FROM meta WHERE key = 'sync_pid'").pluck().get()).toBe(String(child.pid));
    db.close();
    const r = run(['find', '*', '--json'], cache2);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/interrupted/);
    expect(r.stdout).toBe(reference);
    // Repaired: the next command has nothing to report.
    expect(run(['find', '*', '--json'], cache2).stderr).toBe('');
  }, 20_000);

  it('a catalog copied from another repository is not trusted', () => {
    const other = join(tmp.path, 'other');
    const otherEnv = initRepo(other);
    expect(snap(['--cache-dir', join(tmp.path, 'cache-other'), 'backup', join(src, 'docs')], otherEnv).code).toBe(0);
    const otherDir = readdirSync(join(tmp.path, 'cache-other'))[0]!;
    // Put this repository's catalog where the other repository's belongs.
    cpSync(join(cache, readdirSync(cache)[0]!), join(tmp.path, 'cache-other', otherDir), { recursive: true });
    const r = snap(['--cache-dir', join(tmp.path, 'cache-other'), 'find', 'report.txt', '--json'], otherEnv);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/another repository/);
    expect(lines(r.stdout)).toHaveLength(1);
  }, 30_000);

  it('find answers from the catalog as it is while another process holds it past the busy timeout', () => {
    // A snapshot this catalog does not have yet: backed up with another cache directory.
    expect(run(['backup', src, '--time', '2026-03-10T10:00:00Z'], join(tmp.path, 'cache-elsewhere')).code).toBe(0);
    const counts = (stdout: string) => lines(stdout).map((l) => (JSON.parse(l) as { count: number }).count);
    const db = new Database(catalogDb());
    db.exec('BEGIN IMMEDIATE'); // as a sync adding a snapshot of millions of files holds it
    try {
      const r = run(['find', 'report.txt', '--json']);
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(/another snap process is updating the catalog/);
      expect(counts(r.stdout)).toEqual([1, 2, 1]);
    } finally {
      db.exec('ROLLBACK');
      db.close();
    }
    // Released, the next find adds the new snapshot: the last version is held by two now.
    expect(counts(run(['find', 'report.txt', '--json']).stdout)).toEqual([1, 2, 2]);
  }, 60_000);
});
