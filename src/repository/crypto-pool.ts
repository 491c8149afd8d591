// A pool of crypto workers (crypto-worker.ts). Sealing has a bound on bytes in flight, so memory
// stays bounded however fast files are read; restores are bounded by their callers' parallel reads.
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { compiledModuleUrl } from '../paths.js';
import type { FileBatch, FileBatchResult, RestoreResult, RestoreTask, SealResult, SealTask } from './crypto-worker.js';

type WorkerResult = SealResult | FileBatchResult | RestoreResult;

type RestoreJob = Omit<RestoreTask, 'seq' | 'kind'>;

interface QueuedRestore {
  task: RestoreJob;
  key: string;
  resolve(r: RestoreResult): void;
  reject(e: Error): void;
}

/** Restore tasks posted to one worker at a time at most: one running, one waiting behind it. */
const RESTORE_DEPTH = 2;

interface Pending {
  resolve(r: WorkerResult): void;
  reject(e: Error): void;
  bytes: number;
  worker: number;
}

export interface CryptoPoolOptions {
  /** Caps each worker's young generation (V8 lets it grow to 16 MiB semispaces). */
  youngGenerationMiB?: number;
}

/** Bytes of seal tasks in flight before reserve() waits. */
const MAX_IN_FLIGHT_BYTES = 16 << 20;

export class CryptoPool {
  private readonly workers: Worker[] = [];
  /** Tasks posted to each worker and not answered yet. */
  private readonly queued: number[] = [];
  private readonly pending = new Map<number, Pending>();
  /** Restore tasks not posted yet, in order. */
  private readonly restoreQueue: QueuedRestore[] = [];
  /** Per worker, the keys of its posted restore tasks (with counts). */
  private readonly restoreKeys: Map<string, number>[] = [];
  private seq = 0;
  private next = 0;
  private inFlightBytes = 0;
  private waiters: (() => void)[] = [];
  private failed: Error | undefined;

  constructor(key: Uint8Array, idKey: Uint8Array, level: number, opts: CryptoPoolOptions = {}) {
    const url = compiledModuleUrl(import.meta.url, './crypto-worker.js');
    const resourceLimits = opts.youngGenerationMiB ? { maxYoungGenerationSizeMb: opts.youngGenerationMiB } : undefined;
    for (let i = 0; i < availableParallelism(); i++) {
      const w = new Worker(url, { workerData: { key, idKey, level }, ...(resourceLimits ? { resourceLimits } : {}) });
      w.on('message', (r: WorkerResult) => this.done(r));
      w.on('error', (e) => this.fail(e));
      this.workers.push(w);
      this.queued.push(0);
      this.restoreKeys.push(new Map());
    }
  }

  /** Resolves once there is room for `bytes` more in flight. */
  async reserve(bytes: number): Promise<void> {
    while (this.inFlightBytes > 0 && this.inFlightBytes + bytes > MAX_IN_FLIGHT_BYTES) {
      if (this.failed) throw this.failed;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /**
   * Hashes, compresses (if asked) and seals `data`. A buffer that owns its memory is transferred
   * to the worker (unusable after). A view of shared memory is read in place and left to the
   * worker until the result is back; the worker writes the ciphertext over it (see SealResult).
   */
  seal(data: Uint8Array, compress: boolean): Promise<SealResult> {
    const bytes = data.length;
    this.inFlightBytes += bytes;
    return this.post<SealResult>((seq) => ({ kind: 'seal', seq, data, compress }), data, bytes);
  }

  /**
   * Reads small files in a worker (each at most maxBytes; `bytes` expected in all), then hashes,
   * compresses and seals each (see FileBatch). Paths are raw bytes.
   */
  sealFiles(paths: Buffer[], bytes: number, maxBytes: number): Promise<FileBatchResult> {
    this.inFlightBytes += bytes;
    const task = (seq: number): FileBatch => ({ kind: 'files', seq, paths: paths.map((p) => p.toString('latin1')), maxBytes, bytes });
    return this.post<FileBatchResult>(task, undefined, bytes);
  }

  /**
   * Opens the blobs of a pack region, writes them into their files and finishes the files whose
   * last blob the task has (restore-task.ts). `region` is transferred to the worker when it owns its
   * memory.
   *
   * Tasks wait here until a worker has room (a queue posted ahead left one worker idle while the
   * other had several), and tasks with the same `key` (the directory their files are in) go to one
   * worker at a time: creating files takes the directory's lock, and two workers creating files in
   * one directory spent their time spinning on it (9% of a restore's CPU on ext4 without journal).
   * An idle worker still takes such a task when there is no other.
   */
  restore(task: RestoreJob, key = ''): Promise<RestoreResult> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise<RestoreResult>((resolve, reject) => {
      this.restoreQueue.push({ task, key, resolve, reject });
      this.postRestores();
    });
  }

  private postRestores(): void {
    const busyElsewhere = (key: string, w: number) => key !== '' && this.restoreKeys.some((keys, j) => j !== w && keys.has(key));
    for (let posted = true; posted && this.restoreQueue.length > 0; ) {
      posted = false;
      const order = this.workers.map((_, i) => i).sort((a, b) => this.queued[a]! - this.queued[b]!);
      for (const w of order) {
        if (this.queued[w]! >= RESTORE_DEPTH || this.restoreQueue.length === 0) continue;
        let k = this.restoreQueue.findIndex((q) => !busyElsewhere(q.key, w));
        if (k < 0 && this.queued[w] === 0) k = 0;
        if (k < 0) continue;
        const q = this.restoreQueue.splice(k, 1)[0]!;
        const keys = this.restoreKeys[w]!;
        keys.set(q.key, (keys.get(q.key) ?? 0) + 1);
        const release = () => {
          const n = keys.get(q.key)! - 1;
          if (n === 0) keys.delete(q.key);
          else keys.set(q.key, n);
        };
        this.post<RestoreResult>((seq) => ({ kind: 'restore', seq, ...q.task }), q.task.region, 0, w).then(
          (r) => {
            release();
            q.resolve(r);
            this.postRestores();
          },
          (e: Error) => {
            release();
            q.reject(e);
          },
        );
        posted = true;
      }
    }
  }

  private post<R extends WorkerResult>(task: (seq: number) => SealTask | FileBatch | RestoreTask, payload: Uint8Array | undefined, bytes: number, worker?: number): Promise<R> {
    if (this.failed) return Promise.reject(this.failed);
    const i = worker ?? this.next++ % this.workers.length;
    const { seq, result } = this.expect<R>(i, bytes);
    const transferable = payload !== undefined && payload.buffer instanceof ArrayBuffer && payload.byteOffset === 0 && payload.byteLength === payload.buffer.byteLength;
    this.workers[i]!.postMessage(task(seq), transferable ? [payload.buffer as ArrayBuffer] : []);
    return result;
  }

  /** A new task's number, and its result to come from worker `worker` (see done()). */
  private expect<R extends WorkerResult>(worker: number, bytes: number): { seq: number; result: Promise<R> } {
    const seq = this.seq++;
    this.queued[worker]!++;
    const result = new Promise<R>((resolve, reject) => this.pending.set(seq, { resolve: resolve as Pending['resolve'], reject, bytes, worker }));
    return { seq, result };
  }

  private done(r: WorkerResult): void {
    const p = this.pending.get(r.seq);
    if (!p) return;
    this.pending.delete(r.seq);
    this.queued[p.worker]!--;
    this.inFlightBytes -= p.bytes;
    p.resolve(r);
    this.wake();
  }

  private fail(e: Error): void {
    this.failed = e;
    for (const q of this.restoreQueue.splice(0)) q.reject(e);
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
