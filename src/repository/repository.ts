// A repository opened with a password: config, master keys, index; loading and verifying objects
// and blobs. Writing new blobs goes through BlobWriter (writer.ts).
import { randomBytes } from 'node:crypto';
import { type Backend, type FileInfo, type FileType, hasStorageClasses, objectPath } from '../backend/backend.js';
import { removeIfPresent } from '../backend/common.js';
import { blobId, sha256Hex } from '../crypto/hash.js';
import { openStoredBlob } from './blob.js';
import { validateChunkerParams, type ChunkerParams } from '../chunker/params.js';
import { decodeMetadata, encodeMetadata } from '../format/metadata.js';
import { configFromJson, configToJson, type RepoConfig } from '../format/config.js';
import type { StorageClass } from '../backend/backend.js';
import { indexFromJson, indexToJson, type IndexFile, type IndexPack, type PackType } from '../format/index.js';
import { decodeHeader, type PackEntry } from '../format/pack.js';
import { open as openSealed } from '../crypto/aead.js';
import { decodeTree } from '../format/tree.js';
import type { Tree } from '../model/tree.js';
import { matchIdPrefix, type BlobType } from '../model/ids.js';
import type { Snapshot, SnapshotEntry } from '../model/snapshot.js';
import { IntegrityError, NoSuchItemError, NotFoundError, RepositoryExistsError, RepositoryNotFoundError, UsageError } from '../errors.js';
import { addKey, newMasterKeys, openKeys, type MasterKeys } from './keys.js';
import { MasterIndex, type BlobLocation } from './index.js';
import { indexCacheKey, readIndexCache, writeIndexCache } from './index-cache.js';
import { mapLimit } from '../util/concurrency.js';
import type { CachedType, MetadataCache } from './metadata-cache.js';

/** The index cache is rewritten past this many index objects loaded beside it (format-spec ch. 17). */
const INDEX_CACHE_MAX_EXTRA_OBJECTS = 32;

/** How loadIndex got the index. */
export interface IndexLoad {
  /** Whether the index cache served (ch. 17). */
  fromCache: boolean;
  /** Index objects read from the repository (or its metadata cache). */
  objectsRead: number;
}

/** Decoded tree nodes kept for reuse, at most (about 1 KiB of heap each). */
const TREE_CACHE_NODES = 8192;

export const DEFAULT_CHUNKER: Omit<ChunkerParams, 'seed'> = { min: 512 * 1024, avg: 1024 * 1024, max: 8 * 1024 * 1024, normalization: 1 };

export interface InitOptions {
  /** Sizes, and a seed only to share another repository's chunk boundaries (init --copy-chunker-params); else random. */
  chunker?: Partial<ChunkerParams>;
  compressionLevel?: number;
  dataStorageClass?: StorageClass;
  dataPackTarget?: number;
  metaPackTarget?: number;
  /** scrypt N for the first key file; lower only for tests. */
  kdfN?: number;
  /** Another repository's blob ID key (init --copy-chunker-params): blobs and trees then have the same IDs in both. */
  idKey?: Buffer;
}

type MetadataType = Extract<FileType, 'config' | 'index' | 'snapshot' | 'lock'>;

/** Index and snapshot objects are cached; config and locks change in place. */
function isCached(type: FileType): type is CachedType {
  return type === 'index' || type === 'snapshot';
}

export class Repository {
  readonly index = new MasterIndex();
  /** Recently decoded trees, least recently used first; bounded by nodes, not trees (see loadTree). */
  private readonly treeCache = new Map<string, Tree>();
  private treeCacheNodes = 0;
  private metadataCache: MetadataCache | undefined;
  private indexCache: { file: string; key: Buffer } | undefined;
  /** What the index cache file holds, as of the last time it was read or written. */
  private indexCached: { names: number; blobs: number } | undefined;

  private constructor(
    readonly backend: Backend,
    readonly keys: MasterKeys,
    readonly config: RepoConfig,
    readonly keyName: string,
  ) {}

  static async exists(backend: Backend): Promise<boolean> {
    try {
      await backend.stat({ type: 'config', name: '' });
      return true;
    } catch (e) {
      if (e instanceof NotFoundError) return false;
      throw e;
    }
  }

  /** Throws RepositoryExistsError when there is a repository at the backend's location. */
  static async ensureAbsent(backend: Backend): Promise<void> {
    if (await Repository.exists(backend)) {
      throw new RepositoryExistsError(`${backend.location}: a repository already exists there`, { hint: 'use it as it is, or choose another --repo' });
    }
  }

  static async init(backend: Backend, password: string, opts: InitOptions = {}): Promise<Repository> {
    // Directories or the bucket first (idempotent), so that "no repository yet" can be told apart
    // from "no bucket yet".
    await backend.create();
    await Repository.ensureAbsent(backend);
    if (password.length === 0) throw new UsageError('an empty password is not allowed');
    const chunker: ChunkerParams = { ...DEFAULT_CHUNKER, seed: randomBytes(8).readBigUInt64BE(0), ...opts.chunker };
    validateChunkerParams(chunker);
    const level = opts.compressionLevel ?? 3;
    if (!Number.isInteger(level) || level < 1 || level > 19) throw new UsageError(`compression level must be 1..19, got ${level}`);
    const dataPackTarget = opts.dataPackTarget ?? 16 * 1024 * 1024;
    if (dataPackTarget < 64 * 1024 || dataPackTarget > 1024 * 1024 * 1024) throw new UsageError(`pack size must be between 64K and 1G, got ${dataPackTarget}`);
    const config: RepoConfig = {
      version: 1,
      id: randomBytes(32).toString('hex'),
      created: new Date().toISOString(),
      chunker,
      compressionLevel: level,
      dataPackTarget,
      metaPackTarget: opts.metaPackTarget ?? 4 * 1024 * 1024,
      dataStorageClass: opts.dataStorageClass ?? 'STANDARD',
    };
    const keys = newMasterKeys();
    if (opts.idKey) keys.id = Buffer.from(opts.idKey);
    // Key first, config last: a repository "exists" once config does, and then it can be opened.
    const keyName = await addKey(backend, keys, password, opts.kdfN);
    await backend.save({ type: 'config', name: '' }, encodeMetadata(keys.encrypt, configToJson(config)));
    return Repository.attach(backend, keys, config, keyName);
  }

  static async open(backend: Backend, password: string): Promise<Repository> {
    if (!(await Repository.exists(backend))) {
      throw new RepositoryNotFoundError(`${backend.location}: no repository there (no config object)`, { hint: 'check --repo / SNAP_REPOSITORY, or create one with `snap init`' });
    }
    const { keys, keyName } = await openKeys(backend, password);
    const bytes = await backend.load({ type: 'config', name: '' });
    const config = configFromJson(decodeMetadata(keys.encrypt, bytes, 'config'));
    return Repository.attach(backend, keys, config, keyName);
  }

  private static attach(backend: Backend, keys: MasterKeys, config: RepoConfig, keyName: string): Repository {
    if (hasStorageClasses(backend)) backend.setStorageClass('data', config.dataStorageClass);
    return new Repository(backend, keys, config, keyName);
  }

  // ---- metadata objects --------------------------------------------------------------------

  /** Keeps local copies of index and snapshot objects from now on (remote repositories). */
  useMetadataCache(cache: MetadataCache): void {
    this.metadataCache = cache;
  }

  async saveMetadata(type: MetadataType, doc: unknown, compressed = false): Promise<string> {
    const bytes = encodeMetadata(this.keys.encrypt, doc, compressed);
    const name = sha256Hex(bytes);
    await this.backend.save({ type, name }, bytes);
    if (this.metadataCache && isCached(type)) await this.metadataCache.put(type, name, bytes);
    return name;
  }

  async loadMetadata(type: MetadataType, name: string): Promise<Record<string, unknown>> {
    const h = { type, name };
    const what = objectPath(h);
    const cache = isCached(type) ? this.metadataCache : undefined;
    let bytes = await cache?.get(type as CachedType, name);
    if (!bytes) {
      bytes = await this.backend.load(h);
      if (sha256Hex(bytes) !== name) throw new IntegrityError(what, 'content does not match its name (corrupt or tampered)');
      await cache?.put(type as CachedType, name, bytes);
    }
    return decodeMetadata(this.keys.encrypt, bytes, what);
  }

  /** Every stored pack, data and meta, with its type (in the order the backend lists them). */
  async listPacks(): Promise<(FileInfo & { type: PackType })[]> {
    const packs: (FileInfo & { type: PackType })[] = [];
    for (const type of ['data', 'meta'] as const) for await (const f of this.backend.list(type)) packs.push({ ...f, type });
    return packs;
  }

  async listNames(type: FileType): Promise<string[]> {
    const out: string[] = [];
    for await (const f of this.backend.list(type)) out.push(f.name);
    if (this.metadataCache && isCached(type)) await this.metadataCache.retain(type, new Set(out));
    return out;
  }

  // ---- index ---------------------------------------------------------------------------------

  async loadIndexFile(name: string): Promise<IndexFile> {
    const doc = await this.loadMetadata('index', name);
    try {
      return indexFromJson(doc);
    } catch (e) {
      throw new IntegrityError(`index/${name}`, (e as Error).message);
    }
  }

  /** Loads the index from the index cache from now on, and keeps the cache up to date (ch. 17). */
  useIndexCache(file: string): void {
    this.indexCache = { file, key: indexCacheKey(this.keys.encrypt) };
  }

  /** Loads every index object into the master index, or the index cache and the objects it lacks. */
  async loadIndex(): Promise<IndexLoad> {
    const names = await this.listNames('index');
    const cached = this.indexCache ? await readIndexCache(this.indexCache.file, this.indexCache.key) : undefined;
    const listed = new Set(names);
    const files = new Map<string, IndexFile>();
    if (cached && [...cached.names.keys()].every((n) => listed.has(n))) {
      for (const [n, f] of await this.loadIndexFiles(names.filter((n) => !cached.names.has(n)))) files.set(n, f);
      // A new index object that supersedes a cached one comes from a prune, which also removed
      // the ones it superseded; should it not have yet, the cache's view is out of date.
      if (![...files.values()].some((f) => f.supersedes.some((n) => cached.names.has(n)))) {
        this.index.restore(cached);
        this.index.load(files);
        this.indexCached = { names: cached.names.size, blobs: cached.packOf.length };
        await this.saveIndexCache();
        return { fromCache: true, objectsRead: files.size };
      }
    }
    // Without the cache: every index object, those read above only once.
    for (const [n, f] of await this.loadIndexFiles(names.filter((n) => !files.has(n)))) files.set(n, f);
    this.index.load(files);
    this.indexCached = undefined;
    await this.saveIndexCache();
    return { fromCache: false, objectsRead: names.length };
  }

  /**
   * Every index object read afresh (not through the index cache) into the master index: their
   * names, sorted, and the packs the index in use describes. What prune and `repair packs` rewrite.
   */
  async loadWholeIndex(): Promise<{ names: string[]; packs: Map<string, IndexPack> }> {
    // Sorted, and loaded into the map in that order (not in the order parallel loads finish): the
    // same index, and the same rewrite of it, on every run.
    const names = (await this.listNames('index')).sort();
    const loaded = await this.loadIndexFiles(names);
    const files = new Map(names.map((n) => [n, loaded.get(n)!] as const));
    this.index.load(files);
    const packs = new Map<string, IndexPack>();
    for (const n of this.index.indexNames) for (const p of files.get(n)!.packs) packs.set(p.id, p);
    return { names, packs };
  }

  /**
   * Writes one index object describing `packs` and superseding every object in `names`, then
   * removes those (ch. 6): interrupted between, readers drop the superseded ones. `repairMark` is
   * the new object's (nextRepairMark). `step` runs after the write and after each removal.
   */
  async replaceIndex(names: readonly string[], packs: readonly IndexPack[], repairMark: string | undefined, step: () => void = () => undefined): Promise<{ name: string; removed: number }> {
    const sorted = [...packs].sort((a, b) => a.id.localeCompare(b.id));
    const doc = indexToJson({ supersedes: [...names], ...(repairMark !== undefined ? { repairMark } : {}), packs: sorted });
    const name = await this.saveMetadata('index', doc, true);
    step();
    return { name, removed: await this.removeIndexes(names.filter((n) => n !== name), step) };
  }

  /** Removes index objects (superseded ones); `step` runs after each. Returns how many. */
  async removeIndexes(names: readonly string[], step: () => void = () => undefined): Promise<number> {
    for (const name of names) {
      await removeIfPresent(this.backend, { type: 'index', name });
      step();
    }
    return names.length;
  }

  /** The index objects `names`, decoded, in the order their loads finish. */
  async loadIndexFiles(names: string[]): Promise<Map<string, IndexFile>> {
    const files = new Map<string, IndexFile>();
    await mapLimit(names, 8, async (n) => {
      files.set(n, await this.loadIndexFile(n));
    });
    return files;
  }

  /**
   * Rewrites the index cache when it lags the index by much (ch. 17): after loading the index, and
   * after a backup's snapshot is written. A cache that cannot be written only costs speed later.
   */
  async saveIndexCache(): Promise<void> {
    if (!this.indexCache) return;
    const names = this.index.indexNames.size + this.index.supersededNames.size;
    const c = this.indexCached;
    if (c && names - c.names <= INDEX_CACHE_MAX_EXTRA_OBJECTS && (this.index.blobCount - c.blobs) * 8 <= c.blobs) return;
    try {
      await writeIndexCache(this.indexCache.file, this.index.columns(), this.indexCache.key);
      this.indexCached = { names, blobs: this.index.blobCount };
    } catch {
      // Read-only or full cache directory: the next run loads the index objects.
    }
  }

  // ---- snapshots -----------------------------------------------------------------------------

  async loadSnapshot(id: string): Promise<Snapshot> {
    const doc = await this.loadMetadata('snapshot', id);
    if (typeof doc.tree !== 'string' || typeof doc.time !== 'string' || !Array.isArray(doc.paths)) {
      throw new IntegrityError(`snapshots/${id}`, 'malformed snapshot');
    }
    return doc as unknown as Snapshot;
  }

  /** All snapshots, oldest first. */
  async listSnapshots(): Promise<SnapshotEntry[]> {
    const names = await this.listNames('snapshot');
    const out: SnapshotEntry[] = [];
    await mapLimit(names, 8, async (id) => {
      out.push({ id, snapshot: await this.loadSnapshot(id) });
    });
    return out.sort((a, b) => a.snapshot.time.localeCompare(b.snapshot.time) || a.id.localeCompare(b.id));
  }

  /** Resolves "latest", a full ID or a unique prefix (at least 4 hex digits). */
  async findSnapshot(ref: string, filter?: (s: Snapshot) => boolean): Promise<SnapshotEntry> {
    if (ref === 'latest') {
      const all = (await this.listSnapshots()).filter((e) => !filter || filter(e.snapshot));
      const last = all[all.length - 1];
      if (!last) throw new NoSuchItemError('no snapshot found (the repository has none matching)');
      return last;
    }
    const id = matchIdPrefix(await this.listNames('snapshot'), ref, 'snapshot');
    return { id, snapshot: await this.loadSnapshot(id) };
  }

  // ---- blobs ---------------------------------------------------------------------------------

  locate(id: string, type: BlobType): BlobLocation {
    const loc = this.index.get(id);
    if (!loc || loc.type !== type) throw new IntegrityError(`${type} blob ${id}`, 'not in the index (repository damaged; run `snap check`)');
    return loc;
  }

  /** Decrypts, decompresses and verifies one stored blob; throws IntegrityError naming it. */
  openBlob(id: string, loc: BlobLocation, sealed: Uint8Array): Buffer {
    const r = openStoredBlob(this.keys.encrypt, this.keys.id, { id, compressed: loc.compressed, rawLength: loc.rawLength }, sealed);
    if (typeof r === 'string') throw this.blobError(id, loc, r);
    return r;
  }

  /** The error for a blob that cannot be used, naming the blob and its pack. */
  blobError(id: string, loc: BlobLocation, reason: string): IntegrityError {
    return new IntegrityError(`${loc.type} blob ${id} in ${objectPath({ type: loc.packType, name: loc.pack })}`, reason);
  }

  /**
   * A pack's header, read with two ranged reads (its length, then the sealed header), without the
   * blobs: what check compares with the index and repair index rebuilds it from. Throws
   * IntegrityError naming the pack when the header is damaged.
   */
  async loadPackHeader(type: PackType, id: string, size: number): Promise<PackEntry[]> {
    const h = { type, name: id };
    const what = objectPath(h);
    if (size < 4) throw new IntegrityError(what, 'pack is shorter than its trailer');
    const tail = await this.backend.load(h, { offset: size - 4, length: 4 });
    const hlen = tail.readUInt32LE(0);
    if (hlen + 4 > size) throw new IntegrityError(what, 'header length points outside the pack');
    const sealed = await this.backend.load(h, { offset: size - 4 - hlen, length: hlen });
    const plain = openSealed(this.keys.encrypt, sealed);
    if (!plain) throw new IntegrityError(what, 'pack header authentication failed');
    let entries: PackEntry[];
    try {
      entries = decodeHeader(plain);
    } catch (e) {
      throw new IntegrityError(what, (e as Error).message);
    }
    const last = entries[entries.length - 1];
    if ((last ? last.offset + last.length : 0) !== size - 4 - hlen) throw new IntegrityError(what, 'blob lengths do not add up to the header position');
    return entries;
  }

  async loadBlob(id: string, type: BlobType): Promise<Buffer> {
    const loc = this.locate(id, type);
    const sealed = await this.backend.load({ type: loc.packType, name: loc.pack }, { offset: loc.offset, length: loc.length });
    return this.openBlob(id, loc, sealed);
  }

  async loadTree(id: string): Promise<Tree> {
    const cached = this.treeCache.get(id);
    if (cached) {
      this.treeCache.delete(id);
      this.treeCache.set(id, cached);
      return cached;
    }
    const data = await this.loadBlob(id, 'tree');
    let tree: Tree;
    try {
      tree = decodeTree(data);
    } catch (e) {
      throw new IntegrityError(`tree ${id}`, `malformed tree: ${(e as Error).message}`);
    }
    // Loaded meanwhile by a concurrent call (a prefetch): keep one copy, counted once.
    const loaded = this.treeCache.get(id);
    if (loaded) return loaded;
    // Walks (restore, check, catalog) visit each tree once; the cache serves repeated path lookups.
    // A count of trees did not bound it: a restore of 63k files kept every node of the snapshot.
    if (tree.nodes.length <= TREE_CACHE_NODES) {
      for (const [old, t] of this.treeCache) {
        if (this.treeCacheNodes + tree.nodes.length <= TREE_CACHE_NODES) break;
        this.treeCache.delete(old);
        this.treeCacheNodes -= t.nodes.length;
      }
      this.treeCache.set(id, tree);
      this.treeCacheNodes += tree.nodes.length;
    }
    return tree;
  }

  blobIdOf(data: Uint8Array): string {
    return blobId(this.keys.id, data);
  }

  async close(): Promise<void> {
    await this.backend.close();
  }
}
