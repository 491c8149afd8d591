// Retries transient backend failures (BackendError with transient=true: 5xx, SlowDown, timeouts,
// connection resets) with exponential backoff and full jitter. Never retries NotFoundError, permanent
// BackendErrors (access denied, missing bucket, ...), ColdObjectError or interruptions.
//
// Every operation of the contract is safe to redo: save() writes the same bytes under the same name,
// a retried load() issues the whole request again (a partial body from a failed attempt is dropped),
// and list() restarts and skips names it already yielded.

import type { Backend, FileInfo, FileType, Handle, LoadOptions, SaveOptions } from './backend.js';
import { forwardOptional, sleep, throwIfAborted } from './common.js';
import { BackendError, NotFoundError } from '../errors.js';

export interface RetryEvent {
  /** The operation being retried: save, load, stat, list, remove, coldState, requestThaw. */
  op: string;
  /** The attempt that just failed (1 = the first try). */
  attempt: number;
  error: BackendError;
  /** How long we wait before the next attempt. */
  delayMs: number;
}

export interface RetryOptions {
  /** Total tries including the first. Default 7. */
  maxAttempts?: number;
  /** Backoff before retry n is random in [0, min(maxDelayMs, baseDelayMs * 2^(n-1))). Default 250 ms. */
  baseDelayMs?: number;
  /** Default 20 s. */
  maxDelayMs?: number;
  onRetry?: (e: RetryEvent) => void;
  /** Source of randomness for the jitter, [0, 1). For tests. */
  random?: () => number;
}

export const DEFAULT_RETRY = { maxAttempts: 7, baseDelayMs: 250, maxDelayMs: 20_000 } as const;

export class RetryBackend implements Backend {
  readonly location: string;
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly onRetry?: (e: RetryEvent) => void;
  private readonly random: () => number;

  constructor(
    private readonly inner: Backend,
    opts: RetryOptions = {},
  ) {
    this.location = inner.location;
    this.maxAttempts = Math.max(1, opts.maxAttempts ?? DEFAULT_RETRY.maxAttempts);
    this.baseDelayMs = opts.baseDelayMs ?? DEFAULT_RETRY.baseDelayMs;
    this.maxDelayMs = opts.maxDelayMs ?? DEFAULT_RETRY.maxDelayMs;
    if (opts.onRetry) this.onRetry = opts.onRetry;
    this.random = opts.random ?? Math.random;
    forwardOptional(this, inner, (op, fn) => this.retry(op, fn));
  }

  create(): Promise<void> {
    return this.retry('create', () => this.inner.create());
  }

  save(h: Handle, data: Uint8Array, opts?: SaveOptions): Promise<void> {
    return this.retry('save', () => this.inner.save(h, data, opts), opts?.signal);
  }

  load(h: Handle, opts?: LoadOptions): Promise<Buffer> {
    return this.retry('load', () => this.inner.load(h, opts), opts?.signal);
  }

  stat(h: Handle): Promise<FileInfo> {
    return this.retry('stat', () => this.inner.stat(h));
  }

  async remove(h: Handle): Promise<void> {
    let tries = 0;
    await this.retry('remove', async () => {
      tries++;
      try {
        await this.inner.remove(h);
      } catch (err) {
        // An earlier attempt may have deleted it and then lost the response.
        if (tries > 1 && err instanceof NotFoundError) return;
        throw err;
      }
    });
  }

  async *list(type: FileType, opts?: { signal?: AbortSignal }): AsyncIterable<FileInfo> {
    const seen = new Set<string>();
    for (let attempt = 1; ; attempt++) {
      try {
        for await (const fi of this.inner.list(type, opts)) {
          if (seen.has(fi.name)) continue;
          seen.add(fi.name);
          yield fi;
        }
        return;
      } catch (err) {
        await this.backoff('list', attempt, err, opts?.signal);
      }
    }
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private async retry<T>(op: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      throwIfAborted(signal);
      try {
        return await fn();
      } catch (err) {
        await this.backoff(op, attempt, err, signal);
      }
    }
  }

  /** Rethrows `err` unless it is transient and attempts remain; otherwise waits the backoff. */
  private async backoff(op: string, attempt: number, err: unknown, signal?: AbortSignal): Promise<void> {
    if (!(err instanceof BackendError) || !err.transient) throw err;
    if (attempt >= this.maxAttempts) {
      throw new BackendError(`${err.message} (gave up after ${attempt} attempts)`, {
        transient: true,
        cause: err,
        ...(err.hint ? { hint: err.hint } : {}),
      });
    }
    const cap = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
    const delayMs = Math.floor(this.random() * cap);
    this.onRetry?.({ op, attempt, error: err, delayMs });
    await sleep(delayMs, signal);
  }
}
