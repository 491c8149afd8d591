// Wraps any Backend and counts load() calls by object type, to prove which objects a command reads.
import type { Backend, FileInfo, FileType, Handle, LoadOptions, SaveOptions } from '../../src/backend/backend.js';

export class CountingBackend implements Backend {
  readonly loads = new Map<FileType, number>();
  /** Every load, in order. */
  readonly loaded: Handle[] = [];

  constructor(private readonly inner: Backend) {}

  get location(): string {
    return this.inner.location;
  }

  count(type: FileType): number {
    return this.loads.get(type) ?? 0;
  }

  reset(): void {
    this.loads.clear();
    this.loaded.length = 0;
  }

  create(): Promise<void> {
    return this.inner.create();
  }

  save(h: Handle, data: Uint8Array, opts?: SaveOptions): Promise<void> {
    return this.inner.save(h, data, opts);
  }

  load(h: Handle, opts?: LoadOptions): Promise<Buffer> {
    this.loads.set(h.type, this.count(h.type) + 1);
    this.loaded.push(h);
    return this.inner.load(h, opts);
  }

  stat(h: Handle): Promise<FileInfo> {
    return this.inner.stat(h);
  }

  list(type: FileType, opts?: { signal?: AbortSignal }): AsyncIterable<FileInfo> {
    return this.inner.list(type, opts);
  }

  remove(h: Handle): Promise<void> {
    return this.inner.remove(h);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
