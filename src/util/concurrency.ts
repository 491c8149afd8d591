import { InterruptedError } from '../errors.js';

/**
 * `fn` on the first call only, and its result for every call: a release callback that more than
 * one path may call, or a promise started only when first asked for.
 */
export function once<T>(fn: () => T): () => T {
  let called = false;
  let value: T;
  return () => {
    if (!called) {
      called = true;
      value = fn();
    }
    return value;
  };
}

/** Runs fn over items with at most `limit` in flight; rejects with the first error. */
export async function mapLimit<T>(items: Iterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const it = items[Symbol.iterator]();
  let failed = false;
  const run = async (): Promise<void> => {
    for (;;) {
      if (failed) return;
      const n = it.next();
      if (n.done) return;
      try {
        await fn(n.value);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, run));
}

/** Counting semaphore; waiters are served in FIFO order; waiting can be aborted. */
export class Semaphore {
  private available: number;
  private readonly waiters: Array<() => void> = [];

  constructor(readonly size: number) {
    this.available = size;
  }

  async acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw new InterruptedError();
    if (this.available > 0) {
      this.available--;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(grant);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new InterruptedError());
      };
      this.waiters.push(grant);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.available++;
  }

  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.acquire(signal);
    try {
      return await fn();
    } finally {
      this.release();
    }
  }
}

/**
 * Starts fn(i) for i in [0, n) up to `ahead` indexes before the one being consumed, so that
 * latency-bound work (stat, small reads through the thread pool) overlaps. get(i) must be called in
 * increasing order; each result is handed out once.
 */
export class Lookahead<T> {
  private readonly started = new Map<number, Promise<T>>();
  private next = 0;

  constructor(private readonly n: number, private readonly ahead: number, private readonly fn: (i: number) => Promise<T>) {}

  get(i: number): Promise<T> {
    for (const end = Math.min(this.n, i + this.ahead); this.next < Math.max(end, i + 1); this.next++) {
      const p = this.fn(this.next);
      // Rejections are seen by whoever consumes the result; an unconsumed one must not crash.
      p.catch(() => undefined);
      this.started.set(this.next, p);
    }
    const p = this.started.get(i)!;
    this.started.delete(i);
    return p;
  }
}
