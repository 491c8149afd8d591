// Selective restore from DEEP_ARCHIVE through the CLI, on s3rver behind the cold proxy (which
// answers GETs of archived objects with InvalidObjectState until a RestoreObject and a delay).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/cli.js';
import type { ColdProxy } from '../helpers/cold-proxy.js';
import { startS3Cli, type S3Cli } from './s3-cli.js';
import { describeTree, prng } from '../helpers/tree.js';

const KiB = 1024;
const THAW_MS = 1500;
const SLOW_THAW_MS = 5000;
const DIRS = ['d0', 'd1', 'd2', 'd3', 'd4', 'd5'];
const PACK = 256 * KiB;

interface Plan {
  total: { packs: number; bytes: number };
  readable: { packs: number; bytes: number };
  ongoing: { packs: number; bytes: number };
  toThaw: { packs: number; bytes: number };
  classes: { storageClass: string; total: { packs: number } }[];
  tiers: { tier: string; costUSD: number; hoursMax: number }[];
}

describe('restore from DEEP_ARCHIVE through the cold proxy', () => {
  const tmp = tempDir();
  const src = join(tmp.path, 'src');
  const cache = join(tmp.path, 'cache');
  const dirBytes = new Map<string, number>();
  let d2Keys: string[] = [];
  let cli: S3Cli;
  let proxy: ColdProxy;
  const run = (args: string[]) => cli.run(args);
  const planOf = async (path: string): Promise<Plan> => {
    const r = await run(['restore', `latest:${path}`, '--plan', '--json']);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as Plan;
  };
  const requested = () => proxy.keys({ method: 'POST', query: 'restore', okOnly: true });
  const dataGets = () => proxy.count({ method: 'GET', keyPrefix: 'repo/data/' });
  const sizeOf = async (key: string) => (await cli.direct.stat({ type: 'data', name: key.split('/').pop()! })).size;

  beforeAll(async () => {
    cli = await startS3Cli('cold', cache, { thawDelayMs: THAW_MS, seed: 5 });
    proxy = cli.proxy;
    const r = prng(11);
    for (const d of DIRS) {
      mkdirSync(join(src, d, 'sub'), { recursive: true });
      let total = 0;
      for (const [i, size] of [300, 700, 150, 9].map((k) => k * KiB).entries()) {
        writeFileSync(join(src, d, i === 3 ? 'sub/small' : `f${i}`), r.bytes(size));
        total += size;
      }
      dirBytes.set(d, total);
    }
    const init = await run(['init', '--kdf-n', '1024', '--data-storage-class', 'DEEP_ARCHIVE', '--chunk-min', '16K', '--chunk-avg', '64K', '--chunk-max', '256K', '--pack-size', '256K']);
    expect(init.code, init.stderr).toBe(0);
    const b = await run(['backup', src]);
    expect(b.code, b.stderr).toBe(0);
  }, 30_000);

  afterAll(async () => {
    await cli?.stop();
    tmp.cleanup();
  });

  it('backup puts data packs in DEEP_ARCHIVE and everything else in STANDARD', () => {
    const data = proxy.keys({ method: 'PUT', keyPrefix: 'repo/data/', okOnly: true });
    const meta = proxy.keys({ method: 'PUT', keyPrefix: 'repo/meta/', okOnly: true });
    expect(data.length).toBeGreaterThan(DIRS.length * 2);
    expect(meta.length).toBeGreaterThan(0);
    expect(data.every((k) => proxy.storageClassOf('cold', k) === 'DEEP_ARCHIVE')).toBe(true);
    expect(meta.every((k) => proxy.storageClassOf('cold', k) !== 'DEEP_ARCHIVE')).toBe(true);
  });

  it('snapshots, ls, find, versions and restore --plan read no data pack and request no thaw', async () => {
    proxy.resetCounters();
    const snaps = await run(['snapshots', '--json']);
    expect(snaps.code, snaps.stderr).toBe(0);
    const ls = await run(['ls', 'latest', '--recursive']);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toContain('/d3/sub/small');
    if (existsSync(join(import.meta.dirname, '../../src/cli/commands/find.ts'))) {
      const find = await run(['find', 'small', '--json']);
      expect(find.code, find.stderr).toBe(0);
      expect(find.stdout.trim().split('\n')).toHaveLength(DIRS.length);
      const versions = await run(['versions', join(src, 'd1', 'f1'), '--json']);
      expect(versions.code, versions.stderr).toBe(0);
      expect(versions.stdout.trim().split('\n')).toHaveLength(1);
    }
    const plan = await planOf('/');
    expect(plan.toThaw.packs).toBe(plan.total.packs);
    expect(plan.classes.map((c) => c.storageClass)).toEqual(['DEEP_ARCHIVE']);
    // Deep Archive offers Standard and Bulk only.
    expect(plan.tiers.map((t) => t.tier)).toEqual(['Standard', 'Bulk']);
    expect(proxy.count({ method: 'GET' })).toBeGreaterThan(0); // metadata was read through the proxy
    expect(dataGets()).toBe(0);
    expect(proxy.count({ method: 'POST', query: 'restore' })).toBe(0);
    expect(proxy.stats.coldRejections).toBe(0);
  }, 20_000);

  it('pack placement: a single-directory restore needs few packs (thaw amplification <= 1.5)', async () => {
    const total = (await planOf('/')).total;
    for (const d of DIRS) {
      const plan = await planOf(`${src}/${d}`);
      const amplification = plan.total.bytes / dirBytes.get(d)!;
      expect(amplification, d).toBeLessThanOrEqual(1.5);
      expect(plan.total.packs, d).toBeLessThanOrEqual(Math.ceil(dirBytes.get(d)! / PACK) + 2);
      expect(plan.total.packs).toBeLessThan(total.packs / 3);
    }
  }, 30_000);

  it('--no-wait requests the planned thaws and exits 4; the same command later completes byte-identical', async () => {
    const path = `${src}/d2`;
    const plan = await planOf(path);
    proxy.resetCounters();
    // Long enough for the runs below to see the thaw still ongoing.
    proxy.setThawDelay(SLOW_THAW_MS);
    const started = Date.now();
    const target = join(tmp.path, 'out-d2');
    const first = await run(['restore', `latest:${path}`, '--target', target, '--no-wait']);
    expect(first.code, first.stderr).toBe(4);
    expect(first.stderr).toMatch(/packs \(.*\) are still thawing, expected readable by .*\n.*run the same command again/);
    // The plan's figures are what was requested.
    const keys = requested();
    d2Keys = keys;
    expect(keys.length).toBe(plan.toThaw.packs);
    const sizes = await Promise.all(keys.map(sizeOf));
    expect(sizes.reduce((s, n) => s + n, 0)).toBe(plan.toThaw.bytes);
    const cost = (plan.toThaw.bytes / 2 ** 30) * 0.02 + (keys.length / 1000) * 0.1;
    expect(plan.tiers.find((t) => t.tier === 'Standard')!.costUSD).toBeCloseTo(cost, 12);
    expect(dataGets()).toBe(0); // nothing readable yet, nothing read
    const state = JSON.parse(readFileSync(join(cache, readState(cache), 'thaw.json'), 'utf8')) as { requests: Record<string, { tier: string; days: number }> };
    expect(Object.keys(state.requests).sort()).toEqual(keys.map((k) => k.split('/').pop()).sort());
    expect(Object.values(state.requests).every((r) => r.tier === 'Standard' && r.days === 7)).toBe(true);
    expect(existsSync(join(target, 'f1'))).toBe(false);

    // Run again before the thaw is done: still pending, nothing re-requested.
    const early = await run(['restore', `latest:${path}`, '--target', target, '--no-wait']);
    expect(early.code, early.stderr).toBe(4);
    expect(proxy.count({ method: 'POST', query: 'restore' })).toBe(keys.length);
    // The ongoing state shows in the plan too.
    expect((await planOf(path)).ongoing.packs).toBe(keys.length);

    await new Promise((r) => setTimeout(r, started + SLOW_THAW_MS + 200 - Date.now()));
    proxy.setThawDelay(THAW_MS);
    const second = await run(['restore', `latest:${path}`, '--target', target, '--no-wait']);
    expect(second.code, second.stderr).toBe(0);
    expect(proxy.count({ method: 'POST', query: 'restore' })).toBe(keys.length);
    // Only the thawed packs were read, and the result is the directory as backed up.
    expect(proxy.keys({ method: 'GET', keyPrefix: 'repo/data/', okOnly: true }).sort()).toEqual([...keys].sort());
    expect(describeTree(target)).toEqual(describeTree(join(src, 'd2')));
    const after = JSON.parse(readFileSync(join(cache, readState(cache), 'thaw.json'), 'utf8')) as { requests: Record<string, unknown> };
    expect(Object.keys(after.requests)).toHaveLength(0);
    // Another directory's packs were not thawed.
    expect((await planOf(`${src}/d3`)).toThaw.packs).toBeGreaterThan(0);
  }, 20_000);

  it('dump of an archived file says to restore it, and requests no thaw', async () => {
    proxy.resetCounters();
    const cold = await run(['dump', `latest:${src}/d3/f1`]);
    expect(cold.code).toBe(1);
    expect(cold.stderr).toMatch(/data\/.*: archived and not thawed; `snap restore SNAPSHOT:PATH --target DIR` requests the thaw/);
    expect(cold.stdout).toBe('');
    expect(proxy.count({ method: 'POST', query: 'restore' })).toBe(0);
  }, 20_000);

  it('--wait reads thawed packs at once, requests the cold ones, and polls until they thaw', async () => {
    // d2's packs are thawed (previous test), d4's are cold: one restore of both.
    proxy.resetCounters();
    const target = join(tmp.path, 'out-both');
    const r = await run(['restore', `latest:${src}`, '--include', 'd2/**', '--include', 'd4/**', '--target', target, '--wait', '--thaw-tier', 'Bulk', '--thaw-days', '2', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!) as { packs_pending: number; thaw_requested: number; packs_read: number };
    const cold = requested();
    expect(summary.packs_pending).toBe(0);
    expect(summary.thaw_requested).toBe(cold.length);
    expect(cold.some((k) => d2Keys.includes(k))).toBe(false);
    expect(summary.packs_read).toBe(cold.length + d2Keys.length);
    expect(r.stdout).toContain('"message_type":"thaw_wait"');
    // Log order: d2's packs were read before any d4 pack was readable, with polling in between.
    const idx = (pred: (k: string, m: string) => boolean) => proxy.log.flatMap((l, i) => (pred(l.key, l.method) ? [i] : []));
    const d2Reads = idx((k, m) => m === 'GET' && d2Keys.includes(k));
    const coldReads = idx((k, m) => m === 'GET' && cold.includes(k));
    expect(d2Reads).toHaveLength(d2Keys.length);
    expect(Math.max(...d2Reads)).toBeLessThan(Math.min(...coldReads));
    const polls = idx((k, m) => m === 'HEAD' && cold.includes(k)).filter((i) => i > Math.max(...d2Reads));
    expect(polls.length).toBeGreaterThanOrEqual(cold.length);
    expect(describeTree(join(target, 'd2'))).toEqual(describeTree(join(src, 'd2')));
    expect(describeTree(join(target, 'd4'))).toEqual(describeTree(join(src, 'd4')));
    expect(existsSync(join(target, 'd3'))).toBe(false);
  }, 20_000);

  it('--price-table replaces the built-in prices; a bad table is a usage error naming the field', async () => {
    const table = {
      date: '2030-01-01', source: 'test', region: 'test-1', currency: 'USD',
      classes: { DEEP_ARCHIVE: { tiers: { Bulk: { perGB: 1, per1000Requests: 1000, hoursMin: 1, hoursMax: 2 } } } },
    };
    const file = join(tmp.path, 'prices.json');
    writeFileSync(file, JSON.stringify(table));
    const r = await run(['restore', `latest:${src}/d5`, '--plan', '--json', '--price-table', file]);
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout.trim().split('\n').pop()!) as Plan & { prices: { date: string } };
    expect(plan.prices.date).toBe('2030-01-01');
    expect(plan.tiers.map((t) => t.tier)).toEqual(['Bulk']);
    expect(plan.tiers[0]!.costUSD).toBeCloseTo(plan.toThaw.bytes / 2 ** 30 + plan.toThaw.packs, 9);
    writeFileSync(file, JSON.stringify({ ...table, classes: { DEEP_ARCHIVE: { tiers: { Bulk: { perGB: -1 } } } } }));
    const bad = await run(['restore', `latest:${src}/d5`, '--plan', '--price-table', file]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('classes.DEEP_ARCHIVE.tiers.Bulk.perGB must be a number >= 0');
  }, 10_000);

  it('refuses a tier the class does not offer before requesting anything', async () => {
    proxy.resetCounters();
    const r = await run(['restore', `latest:${src}/d5`, '--target', join(tmp.path, 'out-d5'), '--thaw-tier', 'Expedited']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--thaw-tier Expedited is not available for DEEP_ARCHIVE');
    expect(proxy.count({ method: 'POST', query: 'restore' })).toBe(0);
  }, 10_000);
});

/** The one repository directory under the cache (its name is the repository ID). */
function readState(cache: string): string {
  const dirs = readdirSync(cache).filter((n) => !n.startsWith('.'));
  expect(dirs).toHaveLength(1);
  return dirs[0]!;
}

