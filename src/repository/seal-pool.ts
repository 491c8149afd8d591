// A pool of seal workers (seal-worker.ts) with a bound on work in flight, so memory stays bounded
// however fast files are read.
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { compiledModuleUrl } from '../paths.js';
import type { SealResult, SealTask } from './seal-worker.js';

interface Pending {
  resolve(r: SealResult): void;
  reject(e: Error): void;
  bytes: number;
}

export class SealPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  private next = 0;
  private inFlightBytes = 0;
  private waiters: (() => void)[] = [];
  private failed: Error | undefined;

  constructor(key: Uint8Array, idKey: Uint8Array, level: number, private readonly maxInFlightBytes = 16 << 20, threads = availableParallelism()) {
    const url = compiledModuleUrl(import.meta.url, './seal-worker.js');
    for (let i = 0; i < Math.max(1, threads); i++) {
      const w = new Worker(url, { workerData: { key, idKey, level } });
      w.on('message', (r: SealResult) => this.done(r));
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
    if (this.failed) return Promise.reject(this.failed);
    const seq = this.seq++;
    const bytes = data.length;
    this.inFlightBytes += bytes;
    const p = new Promise<SealResult>((resolve, reject) => this.pending.set(seq, { resolve, reject, bytes }));
    const task: SealTask = { seq, data, compress };
    const w = this.workers[this.next++ % this.workers.length]!;
    const transferable = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
    w.postMessage(task, transferable ? [data.buffer as ArrayBuffer] : []);
    return p;
  }

  private done(r: SealResult): void {
    const p = this.pending.get(r.seq);
    if (!p) return;
    this.pending.delete(r.seq);
    this.inFlightBytes -= p.bytes;
    p.resolve({ ...r, sealed: Buffer.from(r.sealed.buffer, r.sealed.byteOffset, r.sealed.byteLength) });
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
