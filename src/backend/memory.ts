// In-memory backend: the reference implementation of the Backend contract, used by tests.
// Data is copied in on save and out on load, so callers can never mutate stored bytes.

import {
  objectPath,
  type Backend,
  type FileInfo,
  type FileType,
  type Handle,
  type LoadOptions,
  type SaveOptions,
} from './backend.js';
import { checkHandle, resolveRange, throwIfAborted } from './common.js';
import { NotFoundError } from '../errors.js';

interface Stored {
  data: Buffer;
  modified: Date;
}

export class MemoryBackend implements Backend {
  readonly location: string;
  private readonly objects = new Map<FileType, Map<string, Stored>>();

  constructor(name = '') {
    this.location = `memory:${name}`;
  }

  async create(): Promise<void> {}

  async save(h: Handle, data: Uint8Array, opts?: SaveOptions): Promise<void> {
    checkHandle(h);
    throwIfAborted(opts?.signal);
    let byName = this.objects.get(h.type);
    if (!byName) this.objects.set(h.type, (byName = new Map()));
    byName.set(h.name, { data: Buffer.from(data), modified: new Date() });
  }

  async load(h: Handle, opts?: LoadOptions): Promise<Buffer> {
    checkHandle(h);
    throwIfAborted(opts?.signal);
    const o = this.get(h);
    const { start, end } = resolveRange(h, o.data.length, opts);
    return Buffer.from(o.data.subarray(start, end));
  }

  async stat(h: Handle): Promise<FileInfo> {
    checkHandle(h);
    const o = this.get(h);
    return { name: h.name, size: o.data.length, modified: o.modified };
  }

  async *list(type: FileType, opts?: { signal?: AbortSignal }): AsyncIterable<FileInfo> {
    const snapshot = [...(this.objects.get(type) ?? new Map<string, Stored>()).entries()];
    for (const [name, o] of snapshot) {
      throwIfAborted(opts?.signal);
      yield { name, size: o.data.length, modified: o.modified };
    }
  }

  async remove(h: Handle): Promise<void> {
    checkHandle(h);
    this.get(h);
    this.objects.get(h.type)?.delete(h.name);
  }

  async close(): Promise<void> {}

  private get(h: Handle): Stored {
    const o = this.objects.get(h.type)?.get(h.name);
    if (!o) throw new NotFoundError(`${objectPath(h)} not found in ${this.location}`);
    return o;
  }
}
