import { describe, expect, it } from 'vitest';

import { isColdStorage, hasStorageClasses, type Backend, type FileInfo, type FileType, type Handle } from '../../src/backend/backend.js';
import { MemoryBackend } from '../../src/backend/memory.js';
import { RetryBackend, type RetryEvent } from '../../src/backend/retry.js';
import { BackendError, ColdObjectError, InterruptedError, NotFoundError } from '../../src/errors.js';

const h = (c: string, type: FileType = 'data'): Handle => ({ type, name: c.repeat(64).slice(0, 64) });
const transient = (m = 'S3 SlowDown') => new BackendError(m, { transient: true });
const permanent = (m = 'access denied') => new BackendError(m, { transient: false });

/** Wraps a MemoryBackend; each call first consumes one scripted failure for its operation, if any. */
class Scripted extends MemoryBackend {
  readonly failures = new Map<string, Error[]>();
  readonly calls = new Map<string, number>();
  /** list(): fail after yielding this many entries (once per scripted failure). */
  listFailAfter = 0;

  fail(op: string, ...errors: Error[]): this {
    this.failures.set(op, [...(this.failures.get(op) ?? []), ...errors]);
    return this;
  }
  private hit(op: string): void {
    this.calls.set(op, (this.calls.get(op) ?? 0) + 1);
    const next = this.failures.get(op)?.shift();
    if (next) throw next;
  }
  override async save(hd: Handle, d: Uint8Array): Promise<void> {
    this.hit('save');
    return super.save(hd, d);
  }
  override async load(hd: Handle, o?: { offset?: number; length?: number }): Promise<Buffer> {
    this.hit('load');
    return super.load(hd, o);
  }
  override async stat(hd: Handle): Promise<FileInfo> {
    this.hit('stat');
    return super.stat(hd);
  }
  override async remove(hd: Handle): Promise<void> {
    this.calls.set('remove', (this.calls.get('remove') ?? 0) + 1);
    await super.remove(hd); // really removes, then maybe "loses the response"
    const next = this.failures.get('remove')?.shift();
    if (next) throw next;
  }
  override async *list(type: FileType): AsyncIterable<FileInfo> {
    this.calls.set('list', (this.calls.get('list') ?? 0) + 1);
    const err = this.failures.get('list')?.shift();
    let n = 0;
    for await (const fi of super.list(type)) {
      if (err && n++ === this.listFailAfter) throw err;
      yield fi;
    }
  }
}

const fast = { baseDelayMs: 1, maxDelayMs: 2 };

describe('RetryBackend', () => {
  it('retries transient failures and then succeeds', async () => {
    const inner = new Scripted();
    await inner.save(h('a'), Buffer.from('data'));
    inner.fail('load', transient(), transient());
    const events: RetryEvent[] = [];
    const b = new RetryBackend(inner, { ...fast, onRetry: (e) => events.push(e) });
    expect((await b.load(h('a'))).toString()).toBe('data');
    expect(inner.calls.get('load')).toBe(3);
    expect(events.map((e) => [e.op, e.attempt])).toEqual([
      ['load', 1],
      ['load', 2],
    ]);
  });

  it('never retries permanent errors, NotFoundError or ColdObjectError', async () => {
    for (const err of [permanent(), new NotFoundError('x'), new ColdObjectError('data/aa/aa')]) {
      const inner = new Scripted().fail('stat', err);
      const events: RetryEvent[] = [];
      const b = new RetryBackend(inner, { ...fast, onRetry: (e) => events.push(e) });
      await expect(b.stat(h('b'))).rejects.toBe(err);
      expect(inner.calls.get('stat')).toBe(1);
      expect(events).toEqual([]);
    }
  });

  it('gives up after maxAttempts with the last error, saying so', async () => {
    const inner = new Scripted().fail('save', transient('one'), transient('two'), transient('three'), transient('four'));
    const b = new RetryBackend(inner, { ...fast, maxAttempts: 3 });
    const err = (await b.save(h('c'), Buffer.from('x')).catch((e: unknown) => e)) as BackendError;
    expect(err).toBeInstanceOf(BackendError);
    expect(err.message).toBe('three (gave up after 3 attempts)');
    expect(err.transient).toBe(true);
    expect(inner.calls.get('save')).toBe(3);
  });

  it('backs off exponentially with full jitter, capped', async () => {
    const inner = new Scripted().fail('stat', ...Array.from({ length: 6 }, () => transient()));
    await inner.save(h('d'), Buffer.from('x'));
    const delays: number[] = [];
    const b = new RetryBackend(inner, {
      baseDelayMs: 2,
      maxDelayMs: 20,
      maxAttempts: 10,
      random: () => 0.999,
      onRetry: (e) => delays.push(e.delayMs),
    });
    await b.stat(h('d'));
    expect(delays).toEqual([1, 3, 7, 15, 19, 19]);
    const zero: number[] = [];
    const inner2 = new Scripted().fail('stat', transient(), transient());
    await inner2.save(h('d'), Buffer.from('x'));
    await new RetryBackend(inner2, { baseDelayMs: 1000, random: () => 0, onRetry: (e) => zero.push(e.delayMs) }).stat(h('d'));
    expect(zero).toEqual([0, 0]);
  });

  it('stops waiting as soon as the signal aborts', async () => {
    const inner = new Scripted().fail('load', transient(), transient());
    await inner.save(h('e'), Buffer.from('x'));
    const b = new RetryBackend(inner, { baseDelayMs: 60_000, maxDelayMs: 60_000, random: () => 0.9 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 30);
    const t0 = Date.now();
    await expect(b.load(h('e'), { signal: ac.signal })).rejects.toBeInstanceOf(InterruptedError);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(inner.calls.get('load')).toBe(1);
  });

  it('a retried remove whose first attempt deleted the object succeeds', async () => {
    const inner = new Scripted();
    await inner.save(h('f'), Buffer.from('x'));
    inner.fail('remove', transient('connection lost'));
    const b = new RetryBackend(inner, fast);
    await b.remove(h('f'));
    expect(inner.calls.get('remove')).toBe(2);
    await expect(b.stat(h('f'))).rejects.toBeInstanceOf(NotFoundError);
    // ... but removing something that was never there is still NotFoundError.
    await expect(b.remove(h('0'))).rejects.toBeInstanceOf(NotFoundError);
  });

  it('a listing that fails midway restarts and yields every object once', async () => {
    const inner = new Scripted();
    const names = '0123456789abcdef'.split('').map((c) => h(c, 'index'));
    for (const n of names) await inner.save(n, Buffer.from('x'));
    inner.listFailAfter = 5;
    inner.fail('list', transient(), transient());
    const b = new RetryBackend(inner, fast);
    const got: string[] = [];
    for await (const fi of b.list('index')) got.push(fi.name);
    expect(got.length).toBe(16);
    expect(new Set(got).size).toBe(16);
    expect(inner.calls.get('list')).toBe(3);
  });

  it('forwards ColdStorage and StorageClasses only when the inner backend has them', async () => {
    const plain = new RetryBackend(new MemoryBackend());
    expect(isColdStorage(plain)).toBe(false);
    expect(hasStorageClasses(plain)).toBe(false);

    let thawCalls = 0;
    const coldInner = Object.assign(new MemoryBackend(), {
      coldState: async () => ({ storageClass: 'GLACIER', archived: true, restore: 'none' as const }),
      requestThaw: async () => {
        if (++thawCalls === 1) throw transient();
      },
      setStorageClass: (_t: FileType, _c: string) => {},
    });
    const wrapped: Backend = new RetryBackend(coldInner, fast);
    expect(isColdStorage(wrapped)).toBe(true);
    expect(hasStorageClasses(wrapped)).toBe(true);
    if (!isColdStorage(wrapped)) return;
    expect((await wrapped.coldState(h('1'))).storageClass).toBe('GLACIER');
    await wrapped.requestThaw(h('1'), { days: 1, tier: 'Bulk' });
    expect(thawCalls).toBe(2); // retried through the wrapper
  });
});
