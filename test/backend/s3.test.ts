// S3 backend against s3rver on 127.0.0.1: the shared suite directly on s3rver, then the archive-tier
// and failure behaviour through the cold proxy (test/helpers/cold-proxy.ts), which emulates what AWS
// does and s3rver does not.

import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { hasStorageClasses, isColdStorage, type Backend, type Handle } from '../../src/backend/backend.js';
import { LimitBackend } from '../../src/backend/limit.js';
import { openBackend } from '../../src/backend/location.js';
import { RetryBackend, type RetryEvent } from '../../src/backend/retry.js';
import { S3Backend, type S3BackendOptions } from '../../src/backend/s3.js';
import { BackendError, ColdObjectError, InterruptedError, NotFoundError, UsageError } from '../../src/errors.js';
import { runBackendSuite } from '../backend-suite/suite.js';
import { startColdProxy, type ColdProxy } from '../helpers/cold-proxy.js';
import { startS3Server, type S3Server } from '../helpers/s3server.js';

const MiB = 1024 * 1024;
let s3: S3Server;
let bucketSeq = 0;

beforeAll(async () => {
  s3 = await startS3Server();
});
afterAll(async () => {
  await s3?.stop();
});

runBackendSuite('s3 (s3rver)', async () => {
  const backend = new S3Backend({
    endpoint: s3.endpoint,
    bucket: `suite-${++bucketSeq}`,
    prefix: 'team/repo',
    credentials: s3.credentials,
    region: s3.region,
  });
  return { backend, cleanup: async () => {} };
});

const hex = () => randomBytes(32).toString('hex');
const h = (type: Handle['type']): Handle => ({ type, name: type === 'config' ? '' : hex() });

describe('S3Backend through the cold proxy', () => {
  let proxy: ColdProxy;
  let bucket: string;
  const open: Backend[] = [];

  const make = (o: Partial<S3BackendOptions> = {}): S3Backend => {
    const b = new S3Backend({
      endpoint: proxy.endpoint,
      bucket,
      prefix: 'repo',
      credentials: s3.credentials,
      region: s3.region,
      ...o,
    });
    open.push(b);
    return b;
  };

  beforeAll(async () => {
    proxy = await startColdProxy({ upstream: s3.endpoint, credentials: { S3RVER: 'S3RVER' }, thawDelayMs: 300, seed: 42 });
  });
  afterAll(async () => {
    await proxy?.close();
  });
  beforeEach(async () => {
    bucket = `cold-${++bucketSeq}`;
    proxy.setFaultRate(0, ['internal', 'slowdown', 'reset', 'latency'], null);
    proxy.setStall(false);
    proxy.setThawDelay(300);
    await make().create();
    proxy.resetCounters();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((b) => b.close()));
  });

  it('sends Content-MD5 on every upload, parts included, with signatures that verify', async () => {
    const b = make({ partSize: 5 * MiB });
    await b.save(h('index'), randomBytes(1000));
    const big = randomBytes(11 * MiB);
    const bigH = h('data');
    await b.save(bigH, big);
    expect(proxy.count({ method: 'PUT', query: 'partNumber=' })).toBe(3);
    expect(proxy.count({ method: 'POST', query: 'uploads' })).toBe(1);
    // 1 PutObject + 3 UploadPart, each checked against its Content-MD5.
    expect(proxy.stats.md5Checked).toBe(4);
    expect(proxy.stats.signaturesChecked).toBe(proxy.log.length);
    expect(proxy.log.every((r) => r.status < 300)).toBe(true);
    expect((await b.load(bigH)).equals(big)).toBe(true);
  });

  it('a failed multipart upload is aborted and leaves no object', async () => {
    const b = make({ partSize: 5 * MiB, connections: 1 });
    const target = h('data');
    proxy.setFaultRate(1, ['internal'], (r) => r.method === 'PUT' && r.query.includes('partNumber=2'));
    const err = (await b.save(target, randomBytes(16 * MiB)).catch((e: unknown) => e)) as BackendError;
    expect(err).toBeInstanceOf(BackendError);
    expect(err.transient).toBe(true);
    expect(err.message).toMatch(/InternalError while trying to save s3:\/\/cold-\d+\/repo\/data\//);
    // Part 1 went up, part 2 failed, parts 3 and 4 were never sent; then AbortMultipartUpload.
    expect(proxy.count({ method: 'PUT', query: 'partNumber=' })).toBe(2);
    expect(proxy.count({ method: 'DELETE', query: 'uploadId=' })).toBe(1);
    expect(proxy.count({ method: 'POST', query: 'uploadId=' })).toBe(0); // never completed
    proxy.setFaultRate(0, undefined, null);
    await expect(b.stat(target)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('a body damaged in transit is refused (BadDigest, transient) and a retry stores the right bytes', async () => {
    const b = make();
    const data = randomBytes(4096);
    const target = h('meta');
    proxy.setFaultRate(1, ['corrupt']);
    const err = await b.save(target, data).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect((err as BackendError).transient).toBe(true);
    expect((err as Error).message).toMatch(/BadDigest/);
    proxy.setFaultRate(0.5, ['corrupt']);
    await new RetryBackend(b, { baseDelayMs: 1, maxAttempts: 20 }).save(target, data);
    proxy.setFaultRate(0);
    expect((await b.load(target)).equals(data)).toBe(true);
  });

  it('DEEP_ARCHIVE data: cold until thawed, only the thawed object is read; metadata stays STANDARD', async () => {
    const b = make({ partSize: 5 * MiB });
    b.setStorageClass('data', 'DEEP_ARCHIVE');
    expect(b.storageClassOf('data')).toBe('DEEP_ARCHIVE');
    const packs = [h('data'), h('data'), h('data')];
    const contents = [randomBytes(2000), randomBytes(3000), randomBytes(11 * MiB)]; // the last one is multipart
    for (let i = 0; i < packs.length; i++) await b.save(packs[i]!, contents[i]!);
    const others = [h('meta'), h('index'), h('snapshot'), h('key'), h('lock'), h('config')];
    for (const o of others) await b.save(o, Buffer.from(`hot ${o.type}`));

    // Storage classes as AWS would record and report them.
    for (const p of packs) {
      expect(proxy.storageClassOf(bucket, `repo/data/${p.name.slice(0, 2)}/${p.name}`)).toBe('DEEP_ARCHIVE');
      expect((await b.stat(p)).storageClass).toBe('DEEP_ARCHIVE');
    }
    for (const o of others) {
      expect((await b.stat(o)).storageClass, o.type).toBe('STANDARD');
      expect((await b.coldState(o)).archived, o.type).toBe(false);
      expect((await b.load(o)).toString()).toBe(`hot ${o.type}`);
    }
    const listed: string[] = [];
    for await (const fi of b.list('data')) listed.push(fi.storageClass ?? '?');
    expect(listed).toEqual(['DEEP_ARCHIVE', 'DEEP_ARCHIVE', 'DEEP_ARCHIVE']);
    for await (const fi of b.list('meta')) expect(fi.storageClass).toBe('STANDARD');

    // Cold: reads fail with ColdObjectError, whole or ranged.
    for (const p of packs) {
      await expect(b.load(p)).rejects.toBeInstanceOf(ColdObjectError);
      await expect(b.load(p, { offset: 10, length: 10 })).rejects.toBeInstanceOf(ColdObjectError);
    }
    const coldErr = await b.load(packs[0]!).catch((e: unknown) => e);
    expect((coldErr as ColdObjectError).object).toBe(`data/${packs[0]!.name.slice(0, 2)}/${packs[0]!.name}`);
    expect(await b.coldState(packs[0]!)).toEqual({ storageClass: 'DEEP_ARCHIVE', archived: true, restore: 'none' });

    // Thaw the first and the multipart one only.
    const thawed = [packs[0]!, packs[2]!];
    proxy.resetCounters();
    for (const p of thawed) await b.requestThaw(p, { days: 3, tier: 'Bulk' });
    expect((await b.coldState(packs[0]!)).restore).toBe('ongoing');
    await b.requestThaw(packs[0]!, { days: 3, tier: 'Bulk' }); // 409 RestoreAlreadyInProgress counts as success
    await expect(b.load(packs[0]!)).rejects.toBeInstanceOf(ColdObjectError);
    await sleep(350);
    const done = await b.coldState(packs[0]!);
    expect(done.restore).toBe('done');
    expect(done.archived).toBe(true);
    const days = (done.expiry!.getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(2.9);
    expect(days).toBeLessThan(3.1);
    expect((await b.coldState(packs[1]!)).restore).toBe('none');

    expect((await b.load(packs[0]!)).equals(contents[0]!)).toBe(true);
    expect((await b.load(packs[2]!)).equals(contents[2]!)).toBe(true);
    expect((await b.load(packs[2]!, { offset: 5 * MiB - 3, length: 6 })).equals(contents[2]!.subarray(5 * MiB - 3, 5 * MiB + 3))).toBe(true);
    await expect(b.load(packs[1]!)).rejects.toBeInstanceOf(ColdObjectError);
    await b.requestThaw(packs[0]!, { days: 3, tier: 'Bulk' }); // already restored: 200

    const keyOf = (p: Handle) => `repo/data/${p.name.slice(0, 2)}/${p.name}`;
    expect(new Map(proxy.restoreRequests)).toEqual(
      new Map([
        [`${bucket}/${keyOf(packs[0]!)}`, 3],
        [`${bucket}/${keyOf(packs[2]!)}`, 1],
      ]),
    );
    expect(proxy.keys({ method: 'GET', keyPrefix: 'repo/data/', okOnly: true })).toEqual(thawed.map(keyOf).sort());
  });

  it('only data may leave STANDARD; unknown classes are usage errors; GLACIER_IR needs no thaw', async () => {
    const b = make();
    expect(() => b.setStorageClass('meta', 'GLACIER')).toThrow(UsageError);
    expect(() => b.setStorageClass('index', 'DEEP_ARCHIVE')).toThrow(UsageError);
    expect(() => b.setStorageClass('data', 'COLD_AS_ICE')).toThrow(UsageError);
    expect(() => b.setStorageClass('meta', 'STANDARD')).not.toThrow();
    b.setStorageClass('data', 'glacier_ir');
    const p = h('data');
    await b.save(p, Buffer.from('instant'));
    expect(await b.coldState(p)).toEqual({ storageClass: 'GLACIER_IR', archived: false, restore: 'none' });
    expect((await b.load(p)).toString()).toBe('instant');
    const err = await b.requestThaw(p, { days: 1, tier: 'Standard' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect((err as BackendError).transient).toBe(false);
    expect((err as Error).message).toMatch(/not in an archive storage class/);
    await expect(b.coldState(h('data'))).rejects.toBeInstanceOf(NotFoundError);
  });

  it('pages through listings and reports each object’s storage class on every page', async () => {
    const b = make({ listPageSize: 7 });
    b.setStorageClass('data', 'GLACIER');
    const cold = Array.from({ length: 12 }, () => h('data'));
    for (const p of cold) await b.save(p, Buffer.from('c'));
    b.setStorageClass('data', 'STANDARD');
    const hot = Array.from({ length: 9 }, () => h('data'));
    for (const p of hot) await b.save(p, Buffer.from('hh'));
    const got = new Map<string, string>();
    for await (const fi of b.list('data')) got.set(fi.name, `${fi.storageClass}:${fi.size}`);
    expect(got.size).toBe(21);
    for (const p of cold) expect(got.get(p.name)).toBe('GLACIER:1');
    for (const p of hot) expect(got.get(p.name)).toBe('STANDARD:2');
    expect(proxy.count({ method: 'GET', query: 'list-type=2' })).toBe(3);
  });

  it('RetryBackend completes a workload under 5% faults of every kind, byte-identical', { timeout: 40_000 }, async () => {
    const events: RetryEvent[] = [];
    const inner = make({ partSize: 5 * MiB });
    const b = new RetryBackend(inner, { baseDelayMs: 5, maxDelayMs: 100, maxAttempts: 12, onRetry: (e) => events.push(e) });
    proxy.setFaultRate(0.05, ['internal', 'slowdown', 'reset', 'latency']);
    const objs = Array.from({ length: 160 }, (_, i) => ({
      h: h(i % 3 === 0 ? 'meta' : 'data'),
      data: randomBytes(1 + ((i * 7919) % 90_000)),
    }));
    objs.push({ h: h('data'), data: randomBytes(11 * MiB) });
    await inParallel(objs, 8, (o) => b.save(o.h, o.data));
    await inParallel(objs, 8, async (o) => {
      expect((await b.load(o.h)).equals(o.data)).toBe(true);
      const off = Math.floor(o.data.length / 3);
      const len = Math.floor(o.data.length / 3);
      expect((await b.load(o.h, { offset: off, length: len })).equals(o.data.subarray(off, off + len))).toBe(true);
      expect((await b.stat(o.h)).size).toBe(o.data.length);
    });
    const listed = new Set<string>();
    for await (const fi of b.list('data')) listed.add(fi.name);
    expect(listed.size).toBe(objs.filter((o) => o.h.type === 'data').length);
    for (const o of objs.slice(0, 20)) await b.remove(o.h);
    proxy.setFaultRate(0);
    for (const o of objs.slice(0, 20)) await expect(inner.stat(o.h)).rejects.toBeInstanceOf(NotFoundError);

    expect(proxy.faults.internal).toBeGreaterThan(0);
    expect(proxy.faults.slowdown).toBeGreaterThan(0);
    expect(proxy.faults.reset).toBeGreaterThan(0);
    expect(proxy.faults.latency).toBeGreaterThan(0);
    // Every fault except added latency costs exactly one retry.
    const failed = proxy.faults.internal + proxy.faults.slowdown + proxy.faults.reset;
    expect(events.length).toBeGreaterThanOrEqual(failed - 4); // multipart: one failed part may cancel in-flight siblings
    expect(events.every((e) => e.error.transient)).toBe(true);
    expect(events.some((e) => /SlowDown/.test(e.error.message))).toBe(true);
    expect(events.some((e) => /InternalError/.test(e.error.message))).toBe(true);
    expect(events.some((e) => /ECONNRESET/.test(e.error.message))).toBe(true);
  });

  it('a missing bucket is a permanent, clear error and is not retried', async () => {
    const events: RetryEvent[] = [];
    const b = new RetryBackend(make({ bucket: 'no-such-bucket' }), { baseDelayMs: 1, onRetry: (e) => events.push(e) });
    for (const op of [() => b.save(h('data'), Buffer.from('x')), () => b.load(h('data')), () => b.stat(h('index'))]) {
      const err = await op().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BackendError);
      expect((err as BackendError).transient).toBe(false);
      expect((err as Error).message).toBe(`S3 bucket "no-such-bucket" does not exist at ${proxy.endpoint}`);
    }
    expect(events).toEqual([]);
    // save: PUT; load: GET; stat: HEAD object + HEAD bucket to tell "no bucket" from "no key".
    expect(proxy.count({ bucket: 'no-such-bucket' })).toBe(4);
  });

  it('rejected credentials give a credentials hint, are not retried, and never show the secret', async () => {
    const events: RetryEvent[] = [];
    const secret = 'wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY';
    for (const credentials of [
      { accessKeyId: 'S3RVER', secretAccessKey: secret }, // bad signature
      { accessKeyId: 'AKIDONTEXIST', secretAccessKey: secret }, // unknown key
    ]) {
      const b = new RetryBackend(make({ credentials }), { baseDelayMs: 1, onRetry: (e) => events.push(e) });
      const err = (await b.load(h('index')).catch((e: unknown) => e)) as BackendError;
      expect(err).toBeInstanceOf(BackendError);
      expect(err.transient).toBe(false);
      expect(err.message).toMatch(/S3 rejected the credentials \((SignatureDoesNotMatch|InvalidAccessKeyId)\) for bucket "cold-\d+"/);
      expect(err.hint).toMatch(/AWS_ACCESS_KEY_ID/);
      expect(`${err.message} ${err.hint} ${err.stack}`).not.toContain(secret);
    }
    expect(events).toEqual([]);
  });

  it('an unreachable endpoint fails fast: transient errors, then a final one, no hang', async () => {
    const port = await closedPort();
    const events: RetryEvent[] = [];
    const b = new RetryBackend(
      new S3Backend({ endpoint: `http://127.0.0.1:${port}`, bucket: 'b', credentials: s3.credentials, connectTimeoutMs: 1000 }),
      { maxAttempts: 3, baseDelayMs: 20, onRetry: (e) => events.push(e) },
    );
    const t0 = Date.now();
    const err = (await b.stat(h('config')).catch((e: unknown) => e)) as BackendError;
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(err).toBeInstanceOf(BackendError);
    expect(err.transient).toBe(true);
    expect(err.message).toBe(
      `S3 endpoint http://127.0.0.1:${port} unreachable (ECONNREFUSED) while trying to stat s3://b/config (gave up after 3 attempts)`,
    );
    expect(events.map((e) => [e.op, e.attempt, e.error.transient])).toEqual([
      ['stat', 1, true],
      ['stat', 2, true],
    ]);
    await b.close();
  });

  it('a server that never answers times out (transient) instead of hanging', async () => {
    const b = make({ requestTimeoutMs: 300 });
    proxy.setStall(true);
    const t0 = Date.now();
    const err = (await b.load(h('index')).catch((e: unknown) => e)) as BackendError;
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(err).toBeInstanceOf(BackendError);
    expect(err.transient).toBe(true);
    expect(err.message).toMatch(/timed out while trying to load s3:\/\/cold-\d+\/repo\/index\//);
  });

  it('an abort signal interrupts a request in flight and during retry backoff', async () => {
    const b = make();
    proxy.setStall(true);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const t0 = Date.now();
    await expect(b.load(h('index'), { signal: ac.signal })).rejects.toBeInstanceOf(InterruptedError);
    expect(Date.now() - t0).toBeLessThan(1500);
    proxy.setStall(false);

    proxy.setFaultRate(1, ['slowdown']);
    const slow = new RetryBackend(b, { baseDelayMs: 10_000, maxDelayMs: 10_000, random: () => 0.99 });
    const ac2 = new AbortController();
    setTimeout(() => ac2.abort(), 150);
    const t1 = Date.now();
    await expect(slow.save(h('index'), Buffer.from('x'), { signal: ac2.signal })).rejects.toBeInstanceOf(InterruptedError);
    expect(Date.now() - t1).toBeLessThan(1500);
  });

  it('wrappers and openBackend keep ColdStorage/StorageClasses and work end to end', async () => {
    const plain = make();
    const wrapped = new LimitBackend(new RetryBackend(plain), { connections: 2 });
    expect(isColdStorage(wrapped)).toBe(true);
    expect(hasStorageClasses(wrapped)).toBe(true);

    const repo = await openBackend(`s3:${proxy.endpoint}/${bucket}/via-open`, {
      s3Credentials: s3.credentials,
      connections: 3,
      retry: { baseDelayMs: 1 },
    });
    open.push(repo);
    expect(repo.location).toBe(`s3:${proxy.endpoint}/${bucket}/via-open`);
    expect(isColdStorage(repo) && hasStorageClasses(repo)).toBe(true);
    if (!isColdStorage(repo) || !hasStorageClasses(repo)) return;
    repo.setStorageClass('data', 'DEEP_ARCHIVE');
    expect(() => repo.setStorageClass('meta', 'DEEP_ARCHIVE')).toThrow(UsageError);
    const p = h('data');
    await repo.save(p, Buffer.from('through every layer'));
    expect(proxy.storageClassOf(bucket, `via-open/data/${p.name.slice(0, 2)}/${p.name}`)).toBe('DEEP_ARCHIVE');
    await expect(repo.load(p)).rejects.toBeInstanceOf(ColdObjectError);
    proxy.setThawDelay(0);
    await repo.requestThaw(p, { days: 1, tier: 'Expedited' });
    expect((await repo.coldState(p)).restore).toBe('done');
    expect((await repo.load(p)).toString()).toBe('through every layer');
  });
});

// --- helpers ---------------------------------------------------------------------------------

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function inParallel<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}
