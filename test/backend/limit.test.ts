import { describe, expect, it } from 'vitest';

import { hasStorageClasses, isColdStorage, type FileInfo, type Handle } from '../../src/backend/backend.js';
import { LimitBackend, TokenBucket } from '../../src/backend/limit.js';
import { Semaphore } from '../../src/util/concurrency.js';
import { MemoryBackend } from '../../src/backend/memory.js';
import { InterruptedError, UsageError } from '../../src/errors.js';

const h = (i: number): Handle => ({ type: 'data', name: i.toString(16).padStart(64, '0') });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Records how many operations run at once. */
class Slow extends MemoryBackend {
  active = 0;
  peak = 0;
  private async track<T>(fn: () => Promise<T>): Promise<T> {
    this.peak = Math.max(this.peak, ++this.active);
    try {
      await sleep(10);
      return await fn();
    } finally {
      this.active--;
    }
  }
  override save(hd: Handle, d: Uint8Array) {
    return this.track(() => super.save(hd, d));
  }
  override load(hd: Handle, o?: { offset?: number; length?: number }) {
    return this.track(() => super.load(hd, o));
  }
  override stat(hd: Handle): Promise<FileInfo> {
    return this.track(() => super.stat(hd));
  }
}

describe('LimitBackend', () => {
  it('never runs more than `connections` operations at once', async () => {
    const inner = new Slow();
    const b = new LimitBackend(inner, { connections: 3 });
    await Promise.all(Array.from({ length: 20 }, (_, i) => b.save(h(i), Buffer.from([i]))));
    expect(inner.peak).toBe(3);
    inner.peak = 0;
    const got = await Promise.all(Array.from({ length: 20 }, (_, i) => b.load(h(i))));
    expect(got.map((x) => x[0])).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(inner.peak).toBe(3);
  });

  it('does not hold a slot for a whole listing (no self-deadlock with one connection)', async () => {
    const inner = new Slow();
    for (let i = 0; i < 5; i++) await inner.save(h(i), Buffer.from('x'));
    const b = new LimitBackend(inner, { connections: 1 });
    let n = 0;
    for await (const fi of b.list('data')) {
      await b.stat({ type: 'data', name: fi.name }); // would deadlock if list held the only slot
      n++;
    }
    expect(n).toBe(5);
  });

  it('limits upload bandwidth', async () => {
    const b = new LimitBackend(new MemoryBackend(), { connections: 4, uploadKiBps: 256 });
    const t0 = performance.now();
    // 256 KiB burst is free; the next 128 KiB cost 0.5 s.
    for (let i = 0; i < 6; i++) await b.save(h(i), Buffer.alloc(64 * 1024));
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThan(400);
    expect(ms).toBeLessThan(1200);
  });

  it('limits download bandwidth', async () => {
    const inner = new MemoryBackend();
    await inner.save(h(1), Buffer.alloc(100 * 1024));
    const b = new LimitBackend(inner, { connections: 4, downloadKiBps: 200 });
    const t0 = performance.now();
    for (let i = 0; i < 4; i++) await b.load(h(1)); // 400 KiB at 200 KiB/s with a 200 KiB burst: ~1 s
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThan(800);
    expect(ms).toBeLessThan(1600);
    const unlimited = new LimitBackend(inner, { connections: 4 });
    const t1 = performance.now();
    for (let i = 0; i < 20; i++) await unlimited.load(h(1));
    expect(performance.now() - t1).toBeLessThan(200);
  });

  it('validates its settings', () => {
    expect(() => new LimitBackend(new MemoryBackend(), { connections: 0 })).toThrow(UsageError);
    expect(() => new LimitBackend(new MemoryBackend(), { connections: 1, uploadKiBps: -5 })).toThrow(/--limit-upload/);
    expect(() => new LimitBackend(new MemoryBackend(), { connections: 1, downloadKiBps: Number.NaN })).toThrow(/--limit-download/);
  });

  it('forwards ColdStorage and StorageClasses only when the inner backend has them', () => {
    expect(isColdStorage(new LimitBackend(new MemoryBackend(), { connections: 1 }))).toBe(false);
    const cold = Object.assign(new MemoryBackend(), {
      coldState: async () => ({ storageClass: 'GLACIER', archived: true, restore: 'none' as const }),
      requestThaw: async () => {},
      setStorageClass: () => {},
    });
    const b = new LimitBackend(cold, { connections: 1 });
    expect(isColdStorage(b)).toBe(true);
    expect(hasStorageClasses(b)).toBe(true);
  });
});

describe('Semaphore and TokenBucket', () => {
  it('a waiting acquire can be aborted and does not consume a slot', async () => {
    const s = new Semaphore(1);
    await s.acquire();
    const ac = new AbortController();
    const waiting = s.acquire(ac.signal);
    ac.abort();
    await expect(waiting).rejects.toBeInstanceOf(InterruptedError);
    s.release();
    await s.acquire(); // the slot went back, not to the aborted waiter
    let second = false;
    void s.acquire().then(() => (second = true));
    await sleep(5);
    expect(second).toBe(false);
  });

  it('the token bucket charges debt for objects larger than the burst', async () => {
    let now = 0;
    const tb = new TokenBucket(1000, () => now);
    const t0 = performance.now();
    await tb.take(1000); // the initial burst
    await tb.take(50); // 50 bytes of debt at 1000 B/s: ~50 ms
    expect(performance.now() - t0).toBeGreaterThan(40);
    now += 10_000; // long idle: refills only up to one second's worth
    const t1 = performance.now();
    await tb.take(900);
    expect(performance.now() - t1).toBeLessThan(30);
  });
});
