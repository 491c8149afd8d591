// A pool of crypto workers (crypto-worker.ts). Sealing has a bound on bytes in flight, so memory
// stays bounded however fast files are read; restores are bounded by their callers' parallel reads.
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { compiledModuleUrl } from '../paths.js';
import type { FileTask, ReadError, RegionBlob, RestoreResult, RestoreTask, SealResult, SealTask } from './crypto-worker.js';

type WorkerResult = SealResult | ReadError | RestoreResult;

interface Pending {
  resolve(r: WorkerResult): void;
  reject(e: Error): void;
  bytes: number;
}

export class CryptoPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  private next = 0;
  private inFlightBytes = 0;
  private waiters: (() => void)[] = [];
  private failed: Error | undefined;

  constructor(key: Uint8Array, idKey: Uint8Array, level: number, private readonly maxInFlightBytes = 16 << 20, threads = availableParallelism()) {
    const url = compiledModuleUrl(import.meta.url, './crypto-worker.js');
    for (let i = 0; i < Math.max(1, threads); i++) {
      const w = new Worker(url, { workerData: { key, idKey, level } });
      w.on('message', (r: WorkerResult) => this.done(r));
      w.on('error', (e) => this.fail(e));
      this.workers.push(w);
    }
  }

  /** Resolves once there is room for `bytes` more in flight. */
  async reserve(bytes: number): Promise<void> {
    while (this.inFlightBytes > 0 && this.inFlightBytes + bytes > this.maxInFlightBytes) {
      if (this.failed) throw this.failed;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** Hashes, compresses (if asked) and seals `data`, which is transferred to the worker (unusable after). */
  seal(data: Uint8Array, compress: boolean): Promise<SealResult> {
    const bytes = data.length;
    this.inFlightBytes += bytes;
    return this.post<SealResult>((seq) => ({ kind: 'seal', seq, data, compress }), data, bytes);
  }

  /** Reads a small file in a worker (at most maxBytes), then hashes, compresses and seals it. */
  sealFile(path: Buffer, sizeHint: number, maxBytes: number): Promise<SealResult | ReadError> {
    this.inFlightBytes += sizeHint;
    return this.post<SealResult | ReadError>((seq) => ({ kind: 'file', seq, path, maxBytes }), undefined, sizeHint);
  }

  /**
   * Opens blobs of a pack region and writes each at its positions (pwrite on descriptors the caller
   * keeps open until this resolves). `region` is transferred to the worker when it owns its memory.
   */
  restore(region: Uint8Array, blobs: RegionBlob[], sparse: boolean): Promise<RestoreResult> {
    return this.post<RestoreResult>((seq) => ({ kind: 'restore', seq, region, blobs, sparse }), region, 0);
  }

  private post<R extends WorkerResult>(task: (seq: number) => SealTask | FileTask | RestoreTask, payload: Uint8Array | undefined, bytes: number): Promise<R> {
    if (this.failed) return Promise.reject(this.failed);
    const seq = this.seq++;
    const p = new Promise<R>((resolve, reject) => this.pending.set(seq, { resolve: resolve as Pending['resolve'], reject, bytes }));
    const w = this.workers[this.next++ % this.workers.length]!;
    const transferable = payload !== undefined && payload.byteOffset === 0 && payload.byteLength === payload.buffer.byteLength;
    w.postMessage(task(seq), transferable ? [payload.buffer as ArrayBuffer] : []);
    return p;
  }

  private done(r: WorkerResult): void {
    const p = this.pending.get(r.seq);
    if (!p) return;
    this.pending.delete(r.seq);
    this.inFlightBytes -= p.bytes;
    p.resolve(r);
    this.wake();
  }

  private fail(e: Error): void {
    this.failed = e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
