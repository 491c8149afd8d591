// Small helpers shared by the backends and wrappers: name checks, range resolution, abort handling,
// and the one place where wrappers forward the optional ColdStorage / StorageClasses methods.

import {
  hasStorageClasses,
  isColdStorage,
  objectPath,
  type Backend,
  type ColdState,
  type FileInfo,
  type FileType,
  type Handle,
  type LoadOptions,
  type ThawTier,
} from './backend.js';
import { BackendError, InterruptedError, NotFoundError } from '../errors.js';

const NAME_RE = /^[0-9A-Za-z_-][0-9A-Za-z._-]*$/;

/**
 * Rejects handles whose name could escape the type's directory or collide with temporary files.
 * Names are normally 64 hex digits ('' for config); anything path-like is a caller bug.
 */
export function checkHandle(h: Handle): void {
  if (h.type === 'config') {
    if (h.name !== '') throw new BackendError(`config: handle name must be empty, got "${h.name}"`, { transient: false });
    return;
  }
  if (!NAME_RE.test(h.name) || ((h.type === 'data' || h.type === 'meta') && h.name.length < 2)) {
    throw new BackendError(`${h.type}: invalid object name "${h.name}"`, { transient: false });
  }
}

/** The byte range [start, end) a load asks for, checked against the object size. */
export interface ByteRange {
  start: number;
  end: number;
}

export function checkRangeArgs(h: Handle, opts: LoadOptions | undefined): void {
  const { offset, length } = opts ?? {};
  if (offset !== undefined && (!Number.isSafeInteger(offset) || offset < 0)) {
    throw new BackendError(`${objectPath(h)}: invalid load offset ${offset}`, { transient: false });
  }
  if (length !== undefined && (!Number.isSafeInteger(length) || length < 0)) {
    throw new BackendError(`${objectPath(h)}: invalid load length ${length}`, { transient: false });
  }
}

/** Resolves offset/length against `size`; a range past the end is a permanent error. */
export function resolveRange(h: Handle, size: number, opts: LoadOptions | undefined): ByteRange {
  checkRangeArgs(h, opts);
  const start = opts?.offset ?? 0;
  const end = opts?.length === undefined ? size : start + opts.length;
  if (start > size) {
    throw new BackendError(`${objectPath(h)}: offset ${start} is past the end of the ${size}-byte object`, {
      transient: false,
    });
  }
  if (end > size) {
    throw new BackendError(
      `${objectPath(h)}: range ${start}-${end} is past the end of the ${size}-byte object`,
      { transient: false },
    );
  }
  return { start, end };
}

/** Throws InterruptedError (exit code 130, not the signal's AbortError) once `signal` aborts. */
export function throwIfAborted(signal: AbortSignal | undefined, message?: string): void {
  if (signal?.aborted) throw new InterruptedError(message);
}

/** Resolves after `ms`, or rejects with InterruptedError as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  throwIfAborted(signal);
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(new InterruptedError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** How a wrapper runs a forwarded async call (through its retries, its semaphore, ...). */
export type RunWrapped = <T>(op: string, fn: () => Promise<T>) => Promise<T>;

/**
 * Gives `wrapper` the ColdStorage and StorageClasses methods of `inner` when (and only when) inner
 * has them, so isColdStorage() / hasStorageClasses() answer the same for the wrapper as for the
 * backend it wraps. Async calls go through `run`; setStorageClass is forwarded as is.
 */
export function forwardOptional(wrapper: Backend, inner: Backend, run: RunWrapped): void {
  const target = wrapper as unknown as Record<string, unknown>;
  if (isColdStorage(inner)) {
    target.coldState = (h: Handle): Promise<ColdState> => run('coldState', () => inner.coldState(h));
    target.requestThaw = (h: Handle, opts: { days: number; tier: ThawTier }): Promise<void> =>
      run('requestThaw', () => inner.requestThaw(h, opts));
  }
  if (hasStorageClasses(inner)) {
    target.setStorageClass = (type: FileType, storageClass: string): void => inner.setStorageClass(type, storageClass);
  }
}

/**
 * Removes an object; one already gone is no error (removed by an earlier run that was cut short,
 * or by another process). Returns whether this call removed it.
 */
export async function removeIfPresent(backend: Backend, h: Handle): Promise<boolean> {
  try {
    await backend.remove(h);
    return true;
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
    return false;
  }
}

/** list('config') for backends that store the config as one object: it, if it exists. */
export async function* listConfig(backend: Backend): AsyncIterable<FileInfo> {
  try {
    yield await backend.stat({ type: 'config', name: '' });
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
  }
}
