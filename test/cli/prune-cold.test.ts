// Cold-aware prune and check through the CLI, on a DEEP_ARCHIVE repository on s3rver behind the cold
// proxy (GETs of archived objects fail until a RestoreObject and a delay). The proxy cannot make an
// object old: every pack's LastModified is "now", which is exactly the "younger than 180 days" case.
// The CLI runs asynchronously: the proxy lives in this process, so a spawnSync would starve it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { S3Backend } from '../../src/backend/s3.js';
import { snapEnv, tempDir } from '../helpers/cli.js';
import { snap } from '../engine/helpers.js';
import { startColdProxy, type ColdProxy } from '../helpers/cold-proxy.js';
import { startS3Server, type S3Server } from '../helpers/s3server.js';
import { prng } from '../helpers/tree.js';

const KiB = 1024;
const THAW_MS = 400;

interface PackDetail { id: string; type: 'data' | 'meta'; size: number; storage_class: string; action: string; held: string | null; used: number; unused: number }
interface PlanDoc {
  packs: { delete: number; repack: number; unreferenced: number; keep: number };
  heldMinAge: { packs: number; bytes: number; earlyDeletionFeeAvoidedUSD: number };
  heldCold: { packs: number; bytes: number; thawCostUSD: number };
  packs_detail: PackDetail[];
}

describe('prune and check on DEEP_ARCHIVE through the cold proxy', () => {
  const tmp = tempDir();
  const src = join(tmp.path, 'src');
  const cache = join(tmp.path, 'cache');
  let s3: S3Server;
  let proxy: ColdProxy;
  let env: Record<string, string>;
  let direct: S3Backend;
  const ids: string[] = [];
  const run = (args: string[]) => snap(['--cache-dir', cache, ...args], env);
  const last = (stdout: string) => JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>;
  const dataPacks = async () => {
    const out: string[] = [];
    for await (const f of direct.list('data')) out.push(f.name);
    return out.sort();
  };
  const dryRun = async (extra: string[] = []) => {
    const r = await run(['--json', 'prune', '--dry-run', '--max-unused', '0%', ...extra]);
    expect(r.code, r.stderr).toBe(0);
    return last(r.stdout) as unknown as PlanDoc;
  };
  const dataRequests = (method: string, query?: string) => proxy.count({ method, keyPrefix: 'repo/data/', ...(query ? { query } : {}) });

  beforeAll(async () => {
    s3 = await startS3Server();
    proxy = await startColdProxy({ upstream: s3.endpoint, credentials: { S3RVER: 'S3RVER' }, thawDelayMs: THAW_MS, seed: 3 });
    direct = new S3Backend({ endpoint: s3.endpoint, bucket: 'cold', prefix: 'repo', credentials: s3.credentials, region: s3.region });
    env = snapEnv(`s3:${proxy.endpoint}/cold/repo`, {
      AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
      AWS_REGION: s3.region,
      NODE_NO_WARNINGS: '1',
    });
    // `snap init` expects the bucket to exist (init refuses to guess about a missing one).
    await direct.create();
    const init = await run(['init', '--kdf-n', '1024', '--data-storage-class', 'DEEP_ARCHIVE', '--chunk-min', '16K', '--chunk-avg', '32K', '--chunk-max', '64K', '--pack-size', '512K']);
    expect(init.code, init.stderr).toBe(0);
    const r = prng(21);
    mkdirSync(src, { recursive: true });
    const backup = async (time: string) => {
      const b = await run(['--json', 'backup', src, '--time', time]);
      expect(b.code, b.stderr).toBe(0);
      ids.push(last(b.stdout).snapshot_id as string);
    };
    // 1: x alone -> a pack only x fills (fully unused once 1 is forgotten).
    writeFileSync(join(src, 'x.bin'), r.bytes(400 * KiB));
    await backup('2024-01-01T00:00:00Z');
    // 2: y and z in one pack (400 KiB < the 512 KiB pack size, so the layout does not depend on the
    // random chunker seed); 3: y alone -> that pack is partly used once 2 is forgotten.
    rmSync(join(src, 'x.bin'));
    writeFileSync(join(src, 'y.bin'), r.bytes(300 * KiB));
    writeFileSync(join(src, 'z.bin'), r.bytes(100 * KiB));
    await backup('2024-01-02T00:00:00Z');
    rmSync(join(src, 'z.bin'));
    await backup('2024-01-03T00:00:00Z');
    const f = await run(['forget', ids[0]!, ids[1]!]);
    expect(f.code, f.stderr).toBe(0);
    expect(proxy.keys({ method: 'PUT', keyPrefix: 'repo/data/', okOnly: true }).every((k) => proxy.storageClassOf('cold', k) === 'DEEP_ARCHIVE')).toBe(true);
  }, 40_000);

  afterAll(async () => {
    await direct?.close();
    await proxy?.close();
    await s3?.stop();
    tmp.cleanup();
  });

  it('young archived packs are neither deleted nor rewritten; the dry run reports the early-deletion fee avoided', async () => {
    const plan = await dryRun();
    const data = plan.packs_detail.filter((p) => p.type === 'data');
    const unusedData = data.filter((p) => p.unused > 0);
    // The setup made both kinds: wholly unused packs (x) and partly used ones (z next to y).
    expect(unusedData.some((p) => p.used === 0)).toBe(true);
    expect(unusedData.some((p) => p.used > 0)).toBe(true);
    for (const p of unusedData) expect([p.storage_class, p.action, p.held], p.id).toEqual(['DEEP_ARCHIVE', 'keep', 'min-age']);
    expect(plan.heldMinAge.packs).toBe(unusedData.length);
    const bytes = unusedData.reduce((n, p) => n + p.size, 0);
    expect(plan.heldMinAge.bytes).toBe(bytes);
    // size x $0.00099/GB-month x (180 - age ~0 days) / 30: six months of Deep Archive storage.
    const fee = (bytes / 1e9) * 0.00099 * 6;
    expect(plan.heldMinAge.earlyDeletionFeeAvoidedUSD).toBeGreaterThan(fee * 0.999);
    expect(plan.heldMinAge.earlyDeletionFeeAvoidedUSD).toBeLessThanOrEqual(fee);
    expect(plan.packs_detail.filter((p) => p.type === 'data' && p.action !== 'keep')).toEqual([]);
    const text = await run(['prune', '--dry-run', '--max-unused', '0%']);
    expect(text.stdout).toMatch(new RegExp(`kept ${unusedData.length} packs .* younger than their storage class's minimum duration: early-deletion fees avoided`));

    const before = await dataPacks();
    proxy.resetCounters();
    const r = await run(['prune', '--max-unused', '0%']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await dataPacks()).toEqual(before);
    expect(dataRequests('DELETE')).toBe(0);
    expect(dataRequests('PUT')).toBe(0);
    expect(dataRequests('GET')).toBe(0);
    expect(proxy.restoreRequests.size).toBe(0);
  }, 20_000);

  it('--keep-pack-min-age 0: wholly unused archived packs are deleted without a thaw; partly used ones are not repacked without --allow-thaw', async () => {
    const plan = await dryRun(['--keep-pack-min-age', '0']);
    const data = plan.packs_detail.filter((p) => p.type === 'data');
    const unused = data.filter((p) => p.used === 0 && p.unused > 0).map((p) => p.id).sort();
    const partly = data.filter((p) => p.used > 0 && p.unused > 0);
    expect(unused.length).toBeGreaterThan(0);
    expect(partly.length).toBeGreaterThan(0);
    for (const p of data.filter((d) => d.used === 0)) expect(p.action, p.id).toBe('delete');
    for (const p of partly) expect([p.action, p.held], p.id).toEqual(['keep', 'cold']);
    expect(plan.heldCold.packs).toBe(partly.length);
    expect(plan.heldCold.thawCostUSD).toBeCloseTo((partly.reduce((n, p) => n + p.size, 0) / 1e9) * 0.02, 12);
    expect(plan.heldMinAge.packs).toBe(0);

    const before = await dataPacks();
    proxy.resetCounters();
    const r = await run(['prune', '--max-unused', '0%', '--keep-pack-min-age', '0']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/kept \d+ partly used archived packs .*needs a thaw.*\(--allow-thaw\)/);
    // Exactly the wholly unused packs went, with no thaw and no read of any data pack.
    expect(proxy.keys({ method: 'DELETE', keyPrefix: 'repo/data/', okOnly: true }).map((k) => k.split('/').pop()).sort()).toEqual(unused);
    expect(await dataPacks()).toEqual(before.filter((id) => !unused.includes(id)));
    expect(proxy.restoreRequests.size).toBe(0);
    expect(dataRequests('POST', 'restore')).toBe(0);
    expect(dataRequests('GET')).toBe(0);
    expect(dataRequests('PUT')).toBe(0);
    for (const p of partly) expect(await dataPacks()).toContain(p.id);
  }, 20_000);

  it('check skips the archived data packs with a count and reads none of them without --read-data', async () => {
    const packs = await dataPacks();
    proxy.resetCounters();
    const r = await run(['--json', 'check']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const doc = last(r.stdout) as { ok: boolean; coldSkipped: number; snapshots: number; problems: unknown[] };
    expect(doc.ok).toBe(true);
    expect(doc.snapshots).toBe(1);
    expect(doc.coldSkipped).toBe(packs.length);
    expect(dataRequests('GET')).toBe(0);
    expect(proxy.restoreRequests.size).toBe(0);
    const t = await run(['check']);
    expect(t.code).toBe(0);
    expect(t.stdout).toContain(`info: ${packs.length} archived data packs not thawed were skipped`);
    // --read-data does not thaw either (no --allow-thaw): still skipped, still no restore request.
    const rd = await run(['--json', 'check', '--read-data']);
    expect(rd.code, rd.stdout + rd.stderr).toBe(0);
    expect((last(rd.stdout) as { coldSkipped: number }).coldSkipped).toBe(packs.length);
    expect(proxy.restoreRequests.size).toBe(0);
  }, 20_000);

  it('--allow-thaw requests thaws of the partly used packs only (exit 4); once thawed, the next prune repacks them', async () => {
    const partly = (await dryRun(['--keep-pack-min-age', '0'])).packs_detail.filter((p) => p.type === 'data' && p.used > 0 && p.unused > 0).map((p) => p.id).sort();
    expect(partly.length).toBeGreaterThan(0);
    const before = await dataPacks();
    proxy.resetCounters();
    const r = await run(['prune', '--max-unused', '0%', '--keep-pack-min-age', '0', '--allow-thaw']);
    expect(r.code, r.stdout + r.stderr).toBe(4);
    expect([...proxy.restoreRequests.keys()].map((k) => k.split('/').pop()).sort()).toEqual(partly);
    expect(await dataPacks()).toEqual(before);
    expect(dataRequests('DELETE')).toBe(0);

    await new Promise((res) => setTimeout(res, THAW_MS + 200));
    const again = await run(['--json', 'prune', '--max-unused', '0%', '--keep-pack-min-age', '0', '--allow-thaw']);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    const after = await dataPacks();
    for (const id of partly) expect(after).not.toContain(id);
    expect(proxy.keys({ method: 'PUT', keyPrefix: 'repo/data/', okOnly: true }).length).toBeGreaterThan(0);
    const c = await run(['check']);
    expect(c.code, c.stdout + c.stderr).toBe(0);
    const plan = await dryRun(['--keep-pack-min-age', '0']);
    expect(plan.packs.delete + plan.packs.repack + plan.packs.unreferenced).toBe(0);
  }, 20_000);
});
