// Bounds what a backend is asked to do at once: a semaphore over concurrent operations
// (`connections`), and token buckets over bytes saved / loaded (`--limit-upload` /
// `--limit-download`, in KiB/s).
//
// Bodies are whole in-memory buffers, so shaping is "pay before (upload) or after (download)": a save
// of n bytes waits until the upload bucket can cover n, then goes out at full speed. Averaged over
// more than a few objects the rate is the one asked for; a single object larger than a second's
// worth of budget goes out as one burst after a proportionally longer wait.

import type { Backend, FileInfo, FileType, Handle, LoadOptions, SaveOptions } from './backend.js';
import { Semaphore } from '../util/concurrency.js';
import { forwardOptional, sleep, throwIfAborted } from './common.js';
import { UsageError } from '../errors.js';

export interface LimitOptions {
  /** Maximum operations in flight on the inner backend. */
  connections: number;
  uploadKiBps?: number;
  downloadKiBps?: number;
}

/**
 * Token bucket over bytes: `rate` bytes per second, holding at most one second's worth. take(n)
 * may drive the balance negative (an object larger than the burst) and then waits the debt off, so
 * the long-run rate holds for any object size.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private tail: Promise<void> = Promise.resolve();

  constructor(
    readonly bytesPerSecond: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = bytesPerSecond;
    this.last = now();
  }

  /** Resolves when `n` bytes may be (or could have been) transferred. Callers queue in order. */
  take(n: number, signal?: AbortSignal): Promise<void> {
    const turn = this.tail.then(async () => {
      throwIfAborted(signal);
      this.refill();
      this.tokens -= n;
      if (this.tokens < 0) await sleep((-this.tokens / this.bytesPerSecond) * 1000, signal);
    });
    // A waiter that gives up (abort) must not block the ones behind it.
    this.tail = turn.catch(() => {});
    return turn;
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.bytesPerSecond, this.tokens + ((t - this.last) / 1000) * this.bytesPerSecond);
    this.last = t;
  }
}

export class LimitBackend implements Backend {
  readonly location: string;
  private readonly sem: Semaphore;
  private readonly up?: TokenBucket;
  private readonly down?: TokenBucket;

  constructor(
    private readonly inner: Backend,
    opts: LimitOptions,
  ) {
    if (!Number.isInteger(opts.connections) || opts.connections < 1) {
      throw new UsageError(`connections must be a positive integer, got ${opts.connections}`);
    }
    for (const [flag, v] of [
      ['--limit-upload', opts.uploadKiBps],
      ['--limit-download', opts.downloadKiBps],
    ] as const) {
      if (v !== undefined && !(Number.isFinite(v) && v > 0)) {
        throw new UsageError(`${flag} must be a positive number of KiB/s, got ${v}`);
      }
    }
    this.location = inner.location;
    this.sem = new Semaphore(opts.connections);
    if (opts.uploadKiBps) this.up = new TokenBucket(opts.uploadKiBps * 1024);
    if (opts.downloadKiBps) this.down = new TokenBucket(opts.downloadKiBps * 1024);
    forwardOptional(this, inner, (_op, fn) => this.sem.run(fn));
  }

  create(): Promise<void> {
    return this.sem.run(() => this.inner.create());
  }

  async save(h: Handle, data: Uint8Array, opts?: SaveOptions): Promise<void> {
    // Wait for bandwidth before taking a connection slot, so waiting does not hold one.
    await this.up?.take(data.length, opts?.signal);
    await this.sem.run(() => this.inner.save(h, data, opts), opts?.signal);
  }

  async load(h: Handle, opts?: LoadOptions): Promise<Buffer> {
    const buf = await this.sem.run(() => this.inner.load(h, opts), opts?.signal);
    await this.down?.take(buf.length, opts?.signal);
    return buf;
  }

  stat(h: Handle): Promise<FileInfo> {
    return this.sem.run(() => this.inner.stat(h));
  }

  remove(h: Handle): Promise<void> {
    return this.sem.run(() => this.inner.remove(h));
  }

  /**
   * Holds a slot only while fetching the next entry, not for the whole iteration: a caller that
   * loads objects while listing must not deadlock against its own listing.
   */
  async *list(type: FileType, opts?: { signal?: AbortSignal }): AsyncIterable<FileInfo> {
    const it = this.inner.list(type, opts)[Symbol.asyncIterator]();
    let finished = false;
    try {
      for (;;) {
        const r = await this.sem.run(() => it.next(), opts?.signal);
        if (r.done) {
          finished = true;
          return;
        }
        yield r.value;
      }
    } finally {
      if (!finished) await it.return?.();
    }
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
