// forget through the compiled CLI: --dry-run lists every snapshot with keep/remove and reasons (text
// and --json), a policy removes exactly the snapshots it should, bad input removes nothing, --prune
// frees space and leaves a repository check passes, --group-by host with two --host filters, and the
// catalog follows forget (and prune).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { initRepo, listFiles, randomBytesSeeded, snap, tempDir } from '../engine/helpers.js';

// Calendar buckets are local time: pin the zone so the expected sets below hold everywhere.
const ENV = { TZ: 'UTC' };

let root: string;
let template: string;
const src = () => join(root, 'src');
const src2 = () => join(root, 'src2');

/** name -> snapshot ID, in creation order. */
const ids = new Map<string, string>();

// alpha/src: a1..a6 (two on Jan 1), alpha/src2: a7, beta/src: b1, b2, gamma/src: g1.
const BACKUPS: { name: string; host: string; dir: 'src' | 'src2'; time: string }[] = [
  { name: 'a1', host: 'alpha', dir: 'src', time: '2024-01-01T10:00:00Z' },
  { name: 'a2', host: 'alpha', dir: 'src', time: '2024-01-01T18:00:00Z' },
  { name: 'a3', host: 'alpha', dir: 'src', time: '2024-01-02T10:00:00Z' },
  { name: 'a4', host: 'alpha', dir: 'src', time: '2024-01-03T10:00:00Z' },
  { name: 'a5', host: 'alpha', dir: 'src', time: '2024-01-10T10:00:00Z' },
  { name: 'a6', host: 'alpha', dir: 'src', time: '2024-02-01T10:00:00Z' },
  { name: 'a7', host: 'alpha', dir: 'src2', time: '2024-01-20T10:00:00Z' },
  { name: 'b1', host: 'beta', dir: 'src', time: '2024-01-05T10:00:00Z' },
  { name: 'b2', host: 'beta', dir: 'src', time: '2024-01-06T10:00:00Z' },
  { name: 'g1', host: 'gamma', dir: 'src', time: '2024-01-07T10:00:00Z' },
];
const nameOf = (id: string) => [...ids].find(([, v]) => v === id)?.[0] ?? `?${id.slice(0, 8)}`;

async function remaining(dir: string): Promise<string[]> {
  return (await readdir(join(dir, 'snapshots')).catch(() => [] as string[])).map(nameOf).sort();
}

async function bytesUnder(dir: string): Promise<number> {
  let n = 0;
  for (const f of await listFiles(dir)) n += (await stat(f)).size;
  return n;
}

/** A fresh copy of the template repository (each test changes its own). */
async function copy(name: string): Promise<string> {
  const dir = join(root, name);
  await cp(template, dir, { recursive: true });
  return dir;
}

const json = (stdout: string) => stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

beforeAll(async () => {
  root = await tempDir();
  template = join(root, 'template');
  await (await initRepo(template)).close();
  for (const [i, b] of BACKUPS.entries()) {
    const dir = b.dir === 'src' ? src() : src2();
    await mkdir(dir, { recursive: true });
    // A shared file, and one whose content is unique to this snapshot (what forget + prune frees).
    await writeFile(join(dir, 'shared.bin'), randomBytesSeeded(30_000, 7));
    await writeFile(join(dir, 'report.txt'), randomBytesSeeded(50_000, 100 + i));
    const r = await snap(['-r', template, '--cache-dir', join(root, 'cache-template'), '--json', 'backup', dir, '--host', b.host, '--time', b.time], ENV);
    expect(r.code, r.stderr).toBe(0);
    const summary = json(r.stdout).find((d) => d.message_type === 'summary')!;
    ids.set(b.name, summary.snapshot_id as string);
  }
  expect(await remaining(template)).toEqual(BACKUPS.map((b) => b.name).sort());
}, 60_000);
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('forget CLI', () => {
  it('--dry-run lists every snapshot with keep/remove and its reasons, in text and --json, and removes nothing', async () => {
    const args = ['-r', template, '--cache-dir', join(root, 'cache-dry'), 'forget', '--keep-daily', '3', '--dry-run'];
    const t = await snap(args, ENV);
    expect(t.code, t.stderr).toBe(0);
    const lines = t.stdout.split('\n');
    const row = (n: string) => {
      const found = lines.filter((l) => l.includes(ids.get(n)!.slice(0, 8)));
      expect(found, `rows for ${n}`).toHaveLength(1);
      return found[0]!;
    };
    // alpha/src: newest per day for the 3 newest days (a6, a5, a4); a2 is Jan 1's newest but beyond 3 days.
    for (const n of ['a6', 'a5', 'a4']) expect(row(n)).toMatch(/\bkeep\b.*daily snapshot/);
    for (const n of ['a1', 'a2', 'a3']) expect(row(n)).toMatch(/\bremove\s*$/);
    // Groups of one or two (one per day) are kept whole.
    for (const n of ['a7', 'b1', 'b2', 'g1']) expect(row(n)).toMatch(/\bkeep\b.*daily snapshot/);
    expect(t.stdout).toMatch(/snapshots for host alpha, paths \[.*src\]:/);
    expect(t.stdout).toMatch(/dry run: 3 snapshots would be removed/);

    const j = await snap(['--json', ...args], ENV);
    expect(j.code, j.stderr).toBe(0);
    const doc = json(j.stdout).find((d) => d.message_type === 'forget')! as { dry_run: boolean; groups: { host: string; paths: string[]; keep: string[]; remove: string[]; reasons: { snapshot: string; matches: string[] }[] }[] };
    expect(doc.dry_run).toBe(true);
    expect(doc.groups).toHaveLength(4);
    const all = doc.groups.flatMap((g) => [...g.keep, ...g.remove]).map(nameOf).sort();
    expect(all).toEqual(BACKUPS.map((b) => b.name).sort());
    expect(doc.groups.flatMap((g) => g.remove).map(nameOf).sort()).toEqual(['a1', 'a2', 'a3']);
    const alpha = doc.groups.find((g) => g.host === 'alpha' && g.paths[0] === src())!;
    expect(alpha.reasons.map((r) => [nameOf(r.snapshot), r.matches])).toEqual(
      [['a6', ['daily snapshot']], ['a5', ['daily snapshot']], ['a4', ['daily snapshot']]],
    );
    expect(await remaining(template)).toHaveLength(BACKUPS.length);
  }, 20_000);

  it('a policy removes exactly the snapshots it does not keep', async () => {
    const dir = await copy('policy');
    // Per host+paths group: the newest 2, plus anything within 3 days of the group's latest.
    const r = await snap(['-r', dir, '--cache-dir', join(root, 'cache-policy'), 'forget', '--keep-last', '2', '--keep-within', '3d'], ENV);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/removed 4 snapshots/);
    expect(await remaining(dir)).toEqual(['a5', 'a6', 'a7', 'b1', 'b2', 'g1']);
    // Applying the same policy again removes nothing more.
    const again = await snap(['-r', dir, '--cache-dir', join(root, 'cache-policy'), 'forget', '--keep-last', '2', '--keep-within', '3d'], ENV);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/removed 0 snapshots/);
    expect(await remaining(dir)).toEqual(['a5', 'a6', 'a7', 'b1', 'b2', 'g1']);
  }, 20_000);

  it('bad input is refused and removes nothing: no policy, IDs with a policy, unknown IDs, bad durations and numbers', async () => {
    const dir = await copy('bad');
    const cases: [string[], number, RegExp][] = [
      [[], 2, /no policy given/],
      [['--host', 'alpha'], 2, /no policy given/],
      [[ids.get('a1')!.slice(0, 8), '--keep-last', '1'], 2, /not both/],
      [[ids.get('a1')!.slice(0, 8), 'deadbeef'], 1, /deadbeef/],
      [['--keep-within', '3x'], 2, /--keep-within/],
      [['--keep-within', ''], 2, /--keep-within/],
      [['--keep-within-daily', 'lots'], 2, /--keep-within-daily/],
      [['--keep-last', 'many'], 2, /--keep-last/],
      [['--keep-last', '1', '--prune', '--max-unused', 'half'], 2, /--max-unused/],
      [['--keep-last', '1', '--group-by', 'planet'], 2, /planet/],
    ];
    for (const [args, code, msg] of cases) {
      const r = await snap(['-r', dir, '--cache-dir', join(root, 'cache-bad'), 'forget', ...args], ENV);
      expect(r.code, `forget ${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(code);
      expect(r.stderr, `forget ${args.join(' ')}`).toMatch(msg);
      expect(await remaining(dir), `forget ${args.join(' ')}`).toHaveLength(BACKUPS.length);
    }
    // Known IDs alone do remove (so the unknown-ID case above is not vacuous).
    const ok = await snap(['-r', dir, '--cache-dir', join(root, 'cache-bad'), 'forget', ids.get('a1')!.slice(0, 8), ids.get('a2')!], ENV);
    expect(ok.code, ok.stderr).toBe(0);
    expect(await remaining(dir)).not.toContain('a1');
    expect(await remaining(dir)).not.toContain('a2');
    expect(await remaining(dir)).toHaveLength(BACKUPS.length - 2);
  }, 30_000);

  it('--group-by host with two --host values: one group per host, other hosts untouched', async () => {
    const dir = await copy('group');
    const r = await snap(['-r', dir, '--cache-dir', join(root, 'cache-group'), '--json', 'forget', '--keep-last', '1', '--group-by', 'host', '--host', 'alpha', '--host', 'beta'], ENV);
    expect(r.code, r.stderr).toBe(0);
    const doc = json(r.stdout).find((d) => d.message_type === 'forget')! as { groups: { host: string; paths: unknown; keep: string[] }[] };
    expect(doc.groups.map((g) => [g.host, g.paths, g.keep.map(nameOf)])).toEqual([
      ['alpha', null, ['a6']],
      ['beta', null, ['b2']],
    ]);
    // alpha's src2 snapshot is in alpha's one group (by host+paths it would have been kept); gamma is filtered out.
    expect(await remaining(dir)).toEqual(['a6', 'b2', 'g1']);
  }, 20_000);

  it('--prune frees space on disk, and check (with --read-data) passes afterwards', async () => {
    const dir = await copy('prune');
    const before = await bytesUnder(join(dir, 'data'));
    const r = await snap(['-r', dir, '--cache-dir', join(root, 'cache-prune'), '--json', 'forget', '--keep-last', '1', '--prune', '--max-unused', '0%'], ENV);
    expect(r.code, r.stderr).toBe(0);
    const res = json(r.stdout).find((d) => d.message_type === 'prune')! as { bytesFreed: number; packsDeleted: number };
    expect(res.packsDeleted).toBeGreaterThan(0);
    expect(await remaining(dir)).toEqual(['a6', 'a7', 'b2', 'g1']);
    const after = await bytesUnder(join(dir, 'data'));
    // Six forgotten snapshots each held ~50 kB of unique data.
    expect(before - after).toBeGreaterThan(200_000);
    expect(res.bytesFreed).toBeGreaterThan(200_000);
    expect(await listFiles(join(dir, 'locks'))).toEqual([]);
    const c = await snap(['-r', dir, 'check', '--read-data'], ENV);
    expect(c.code, c.stdout + c.stderr).toBe(0);
    // Nothing left for another prune.
    const p = await snap(['-r', dir, '--json', 'prune', '--dry-run', '--max-unused', '0%'], ENV);
    const plan = json(p.stdout).find((d) => d.message_type === 'prune_plan')! as { packs: { delete: number; repack: number; unreferenced: number } };
    expect(plan.packs.delete + plan.packs.repack + plan.packs.unreferenced).toBe(0);
  }, 30_000);

  it('the catalog follows forget: forgotten snapshots leave it at once, and find no longer lists versions only they held', async () => {
    const dir = await copy('catalog');
    const cache = join(root, 'cache-catalog');
    const run = (args: string[]) => snap(['-r', dir, '--cache-dir', cache, ...args], ENV);
    const found = async () => {
      const r = await run(['--json', 'find', 'report.txt']);
      expect(r.code, r.stderr).toBe(0);
      return json(r.stdout) as { count: number; first: { time: string } }[];
    };
    const before = await found();
    // Every snapshot has its own report.txt.
    expect(before).toHaveLength(BACKUPS.length);
    expect(before.reduce((n, d) => n + d.count, 0)).toBe(BACKUPS.length);
    const db = (await readdir(cache))[0]!;
    const catalogSnapshots = () => {
      const d = new Database(join(cache, db, 'catalog.db'), { readonly: true });
      try {
        return (d.prepare('SELECT id FROM snapshots').pluck().all() as string[]).map(nameOf).sort();
      } finally {
        d.close();
      }
    };
    expect(catalogSnapshots()).toHaveLength(BACKUPS.length);

    const r = await run(['forget', '--keep-last', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    // forget itself synced the catalog (find would sync too, so look before running it).
    expect(catalogSnapshots()).toEqual(['a6', 'a7', 'b2', 'g1']);
    const after = await found();
    expect(after).toHaveLength(4);
    expect(after.reduce((n, d) => n + d.count, 0)).toBe(4);
    const kept = new Set(['a6', 'a7', 'b2', 'g1'].map((n) => BACKUPS.find((b) => b.name === n)!.time.replace('Z', '.000Z')));
    for (const d of after) expect(kept.has(d.first.time), d.first.time).toBe(true);

    // Forgetting by ID follows too.
    expect((await run(['forget', ids.get('a7')!])).code).toBe(0);
    expect(catalogSnapshots()).toEqual(['a6', 'b2', 'g1']);
    // A snapshot removed behind the catalog's back (as another host's forget would): prune syncs.
    await rm(join(dir, 'snapshots', ids.get('g1')!));
    const p = await run(['prune', '--max-unused', '0%']);
    expect(p.code, p.stderr).toBe(0);
    expect(catalogSnapshots()).toEqual(['a6', 'b2']);
    expect(await found()).toHaveLength(2);
  }, 30_000);

  it('a catalog that cannot be written does not fail forget: a warning, and the snapshots are removed', async () => {
    const dir = await copy('catalog-broken');
    const cache = join(root, 'cache-is-a-file');
    await writeFile(cache, 'not a directory');
    const r = await snap(['-r', dir, '--cache-dir', cache, 'forget', '--keep-last', '1'], ENV);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/catalog was not updated/);
    expect(await remaining(dir)).toEqual(['a6', 'a7', 'b2', 'g1']);
  }, 20_000);
});
