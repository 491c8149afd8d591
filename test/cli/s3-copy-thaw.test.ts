// snap copy out of DEEP_ARCHIVE, through the CLI, on s3rver behind the cold proxy (GETs of archived
// objects fail until a RestoreObject and a delay): --plan prices the packs the copy needs and
// requests nothing; a copy requests every thaw at once, saves no snapshot whose packs still thaw
// and exits 4; the same command after the thaw finishes the copy; --wait polls and finishes in one
// run. What is copied restores byte-identical from the destination.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { snapRun, tempDir } from '../helpers/cli.js';
import type { ColdProxy } from '../helpers/cold-proxy.js';
import { startS3Cli, type S3Cli } from './s3-cli.js';
import { describeTree, prng } from '../helpers/tree.js';

const KiB = 1024;
const THAW_MS = 1500;
/** Long enough for the runs between a request and the thaw to see it still ongoing, on a slow machine too. */
const SLOW_THAW_MS = 6000;

interface Plan {
  total: { packs: number; bytes: number };
  toThaw: { packs: number; bytes: number };
  tiers: { tier: string; costUSD: number }[];
}

describe('copy out of DEEP_ARCHIVE through the cold proxy', () => {
  const tmp = tempDir();
  const src = join(tmp.path, 'src');
  const local = join(tmp.path, 'dest');
  const copyCache = join(tmp.path, 'copy-cache');
  let cli: S3Cli;
  let proxy: ColdProxy;
  let copyEnv: Record<string, string>;
  const copy = (args: string[]) => snapRun(['--cache-dir', copyCache, 'copy', ...args], copyEnv);
  const requested = () => proxy.keys({ method: 'POST', query: 'restore', okOnly: true });
  const dataGets = () => proxy.count({ method: 'GET', keyPrefix: 'repo/data/' });
  const destSnapshots = () => readdirSync(join(local, 'snapshots'));
  const thawState = () => {
    const [repoDir] = readdirSync(copyCache).filter((d) => readdirSync(join(copyCache, d)).includes('thaw.json'));
    return JSON.parse(readFileSync(join(copyCache, repoDir!, 'thaw.json'), 'utf8')) as { requests: Record<string, unknown> };
  };
  /** Restores the destination's latest snapshot and compares it with the source directory. */
  const restoresLikeSource = async (name: string) => {
    const target = join(tmp.path, name);
    const r = await snapRun(['--cache-dir', copyCache, 'restore', 'latest', '--target', target], { ...cli.env, SNAP_REPOSITORY: local });
    expect(r.code, r.stderr).toBe(0);
    expect(describeTree(join(target, src))).toEqual(describeTree(src));
  };

  beforeAll(async () => {
    cli = await startS3Cli('coldcopy', join(tmp.path, 'cache'), { thawDelayMs: THAW_MS, seed: 9 });
    proxy = cli.proxy;
    const r = prng(31);
    mkdirSync(join(src, 'a'), { recursive: true });
    for (let i = 0; i < 4; i++) writeFileSync(join(src, 'a', `f${i}`), r.bytes(200 * KiB + i));
    const init = await cli.run(['init', '--kdf-n', '1024', '--data-storage-class', 'DEEP_ARCHIVE', '--chunk-min', '16K', '--chunk-avg', '64K', '--chunk-max', '256K', '--pack-size', '256K']);
    expect(init.code, init.stderr).toBe(0);
    const b = await cli.run(['backup', src]);
    expect(b.code, b.stderr).toBe(0);
    copyEnv = { ...cli.env, SNAP_REPOSITORY: local, SNAP_FROM_REPOSITORY: cli.env.SNAP_REPOSITORY!, SNAP_FROM_PASSWORD: cli.env.SNAP_PASSWORD! };
    const dest = await snapRun(['init', '--kdf-n', '1024'], { ...cli.env, SNAP_REPOSITORY: local });
    expect(dest.code, dest.stderr).toBe(0);
  }, 30_000);

  afterAll(async () => {
    await cli?.stop();
    tmp.cleanup();
  });

  it('--plan prices every data pack the copy needs, and requests and reads none', async () => {
    proxy.resetCounters();
    const r = await copy(['--plan', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout.trim().split('\n').pop()!) as Plan;
    let stored = 0;
    for await (const _ of cli.direct.list('data')) stored++;
    expect(plan.total.packs).toBe(stored);
    expect(stored).toBeGreaterThan(1);
    expect(plan.toThaw.packs).toBe(plan.total.packs);
    expect(plan.tiers.map((t) => t.tier)).toContain('Bulk');
    expect(requested()).toEqual([]);
    expect(dataGets()).toBe(0);
    expect(destSnapshots()).toEqual([]);
  });

  it('requests every thaw at once and exits 4 without a snapshot; the same command after the thaw copies', async () => {
    proxy.resetCounters();
    proxy.setThawDelay(SLOW_THAW_MS);
    const started = Date.now();
    const first = await copy([]);
    expect(first.code, first.stderr).toBe(4);
    expect(first.stderr).toMatch(/packs \(.*\) are still thawing, expected readable by .*; 1 snapshots are not copied yet\n.*run the same command again/);
    expect(first.stdout).toMatch(/requested Standard thaw of \d+ packs/);
    const keys = requested();
    const plan = JSON.parse((await copy(['--plan', '--json'])).stdout.trim().split('\n').pop()!) as Plan & { ongoing: { packs: number } };
    expect(keys.length).toBe(plan.total.packs);
    expect(plan.ongoing.packs).toBe(keys.length);
    expect(dataGets()).toBe(0);
    expect(destSnapshots()).toEqual([]);
    expect(Object.keys(thawState().requests)).toHaveLength(keys.length);

    await new Promise((r) => setTimeout(r, started + SLOW_THAW_MS + 300 - Date.now()));
    proxy.setThawDelay(THAW_MS);
    const second = await copy([]);
    expect(second.code, second.stderr).toBe(0);
    // Nothing requested again; each thawed pack read; the thaw records gone.
    expect(proxy.count({ method: 'POST', query: 'restore' })).toBe(keys.length);
    expect(new Set(proxy.keys({ method: 'GET', keyPrefix: 'repo/data/', okOnly: true }))).toEqual(new Set(keys));
    expect(destSnapshots()).toHaveLength(1);
    expect(thawState().requests).toEqual({});
    await restoresLikeSource('out-1');
  }, 30_000);

  it('--wait requests the new packs, polls until they thaw, and copies in one run', async () => {
    const r = prng(32);
    mkdirSync(join(src, 'b'));
    for (let i = 0; i < 3; i++) writeFileSync(join(src, 'b', `g${i}`), r.bytes(150 * KiB + i));
    const b = await cli.run(['backup', src]);
    expect(b.code, b.stderr).toBe(0);
    proxy.resetCounters();
    const res = await copy(['--wait', '--thaw-tier', 'Bulk', '--json']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('"message_type":"thaw_wait"');
    const summary = JSON.parse(res.stdout.trim().split('\n').pop()!) as { copied: number; skipped: number; waiting: number; thaw_requested: number; packs_pending: number };
    expect(summary).toMatchObject({ copied: 1, skipped: 1, waiting: 0, packs_pending: 0 });
    // Only the packs of the new data: the first snapshot's are thawed still, or not needed.
    expect(summary.thaw_requested).toBe(requested().length);
    expect(summary.thaw_requested).toBeGreaterThan(0);
    expect(destSnapshots()).toHaveLength(2);
    await restoresLikeSource('out-2');
  }, 20_000);
});
