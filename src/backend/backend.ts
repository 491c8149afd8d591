// The storage contract every backend implements (local directory, memory, S3). Small on purpose:
// the repository layer above does all encryption, naming and verification.
//
// Semantics every implementation must honour (checked by test/backend-suite):
// - save() is atomic and write-once: after it resolves the whole object is readable under its name;
//   a crash or error mid-save never leaves a partial object visible under that name. Saving a name
//   that exists with the same bytes is allowed (idempotent); callers never save different bytes
//   under one name, except `config` and `lock`, which may be replaced whole.
// - load() returns exactly the requested range, or the whole object; a range past the end throws
//   BackendError(transient: false). A missing object throws NotFoundError.
// - stat() gives the size (and storage class where the backend has classes); NotFoundError if absent.
// - list(type) yields every object of that type, each once, in no particular order.
// - remove() deletes; removing an absent object throws NotFoundError.
// - Every failure is a SnapError: NotFoundError, or BackendError with `transient` set so the retry
//   wrapper knows whether trying again can help.

export const FILE_TYPES = ['config', 'key', 'data', 'meta', 'index', 'snapshot', 'lock'] as const;
/**
 * `data` packs hold file contents; `meta` packs hold tree blobs. They are separate types so a
 * backend can keep data in a cold storage class and metadata hot.
 */
export type FileType = (typeof FILE_TYPES)[number];

/** An object in the repository. `name` is a 64-hex-digit ID, or '' for the single `config`. */
export interface Handle {
  type: FileType;
  name: string;
}

export interface FileInfo {
  name: string;
  size: number;
  /** Storage class as the backend reports it (S3: STANDARD, GLACIER, DEEP_ARCHIVE, ...). */
  storageClass?: string;
  /** When the object was written, where the backend knows it. */
  modified?: Date;
}

export interface LoadOptions {
  offset?: number;
  length?: number;
  signal?: AbortSignal;
  /**
   * Memory to read into, of the given length: the result is then a view of it. A hint; a backend
   * may return a buffer of its own.
   */
  buffer?: (length: number) => Uint8Array;
}

export interface SaveOptions {
  signal?: AbortSignal;
}

export interface Backend {
  /** Where the repository is, for messages: a path or URL, never credentials. */
  readonly location: string;
  /** Prepares an empty repository location (directories, bucket). Does not write objects. */
  create(): Promise<void>;
  save(h: Handle, data: Uint8Array, opts?: SaveOptions): Promise<void>;
  load(h: Handle, opts?: LoadOptions): Promise<Buffer>;
  stat(h: Handle): Promise<FileInfo>;
  list(type: FileType, opts?: { signal?: AbortSignal }): AsyncIterable<FileInfo>;
  remove(h: Handle): Promise<void>;
  /** Releases connections and timers. */
  close(): Promise<void>;
}

/** The object's path relative to the repository root, shared by every backend. */
export function objectPath(h: Handle): string {
  switch (h.type) {
    case 'config':
      return 'config';
    case 'key':
      return `keys/${h.name}`;
    case 'data':
      return `data/${h.name.slice(0, 2)}/${h.name}`;
    case 'meta':
      return `meta/${h.name.slice(0, 2)}/${h.name}`;
    case 'index':
      return `index/${h.name}`;
    case 'snapshot':
      return `snapshots/${h.name}`;
    case 'lock':
      return `locks/${h.name}`;
  }
}

/** Top-level directory of each type (config has none). */
export const TYPE_DIRS: Record<Exclude<FileType, 'config'>, string> = {
  key: 'keys',
  data: 'data',
  meta: 'meta',
  index: 'index',
  snapshot: 'snapshots',
  lock: 'locks',
};

export function describeHandle(h: Handle): string {
  return objectPath(h);
}

/** Storage classes a repository's data packs may use (format-spec ch. 4). */
export const STORAGE_CLASSES = ['STANDARD', 'STANDARD_IA', 'INTELLIGENT_TIERING', 'GLACIER_IR', 'GLACIER', 'DEEP_ARCHIVE'] as const;
export type StorageClass = (typeof STORAGE_CLASSES)[number];
/** Classes whose objects must be thawed before they can be read. */
export const ARCHIVE_CLASSES: ReadonlySet<string> = new Set(['GLACIER', 'DEEP_ARCHIVE']);

export type ThawTier = 'Expedited' | 'Standard' | 'Bulk';

export interface ColdState {
  storageClass: string;
  /** True for classes that must be thawed before a GET (GLACIER, DEEP_ARCHIVE). */
  archived: boolean;
  /** 'none': no restore requested; 'ongoing': requested, not ready; 'done': readable until expiry. */
  restore: 'none' | 'ongoing' | 'done';
  expiry?: Date;
}

/**
 * Backends with archive storage classes also implement this. load() of an archived object that is
 * not thawed throws ColdObjectError.
 */
export interface ColdStorage {
  coldState(h: Handle): Promise<ColdState>;
  /** Asks the provider to thaw an object for `days` days. Idempotent while a thaw is under way. */
  requestThaw(h: Handle, opts: { days: number; tier: ThawTier }): Promise<void>;
}

export function isColdStorage(b: Backend): b is Backend & ColdStorage {
  const c = b as Partial<ColdStorage>;
  return typeof c.coldState === 'function' && typeof c.requestThaw === 'function';
}

/**
 * Backends on a file system (local) implement this: a pack is then written to its temporary file
 * as it fills and renamed into place when complete, instead of being held in memory until saved.
 * commit() gives the same guarantees as save(): atomic, durable, never a partial object.
 */
export interface FileStaging {
  /** A new, empty temporary file for an object of `type`, invisible to list(). */
  stage(type: FileType): Promise<StagedFile>;
  /**
   * Removes temporary files last written before `before`: left by writers that were killed (a
   * backup's half-filled packs). Returns how many and their bytes. Only under an exclusive lock.
   */
  removeStale(before: Date): Promise<{ files: number; bytes: number }>;
}

export interface StagedFile {
  /** Appends the buffers, in order. */
  append(parts: readonly Uint8Array[]): Promise<void>;
  /** Makes the written bytes the object `name` of the staged type. The file is gone afterwards. */
  commit(name: string): Promise<void>;
  /** Removes the temporary file (after a failure, or when the object is not wanted). */
  discard(): Promise<void>;
}

export function hasFileStaging(b: Backend): b is Backend & FileStaging {
  return typeof (b as Partial<FileStaging>).stage === 'function';
}

/**
 * Backends with storage classes (S3) implement this so the repository can apply the classes stored
 * in its config: only `data` packs may go to a non-default class; everything else stays instantly
 * readable.
 */
export interface StorageClasses {
  setStorageClass(type: FileType, storageClass: string): void;
}

export function hasStorageClasses(b: Backend): b is Backend & StorageClasses {
  return typeof (b as Partial<StorageClasses>).setStorageClass === 'function';
}
