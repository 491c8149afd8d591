// Writing new blobs: deduplicate by ID, compress and seal (in worker threads for data), collect into
// packs, upload packs, and write index objects once their packs are stored (format-spec ch. 10).
import { NONCE_SIZE, sealParts } from '../crypto/aead.js';
import { sha256Hex } from '../crypto/hash.js';
import { compressIfSmaller } from '../compress/zstd.js';
import { indexToJson, type IndexPack, type PackType } from '../format/index.js';
import { packTrailer, type PackEntry } from '../format/pack.js';
import type { BlobType } from '../model/ids.js';
import { Semaphore } from '../util/concurrency.js';
import type { Repository } from './repository.js';
import { CryptoPool } from './crypto-pool.js';
import type { ReadError, SealResult } from './crypto-worker.js';

/** Closed packs waiting for (or in) upload before new data is refused: bounds memory. */
const MAX_QUEUED_PACKS = 1;
/** Packs per index object written during a long backup: bounds what a crash can lose. */
const PACKS_PER_INDEX = 64;

export interface WriterStats {
  dataBlobs: number;
  treeBlobs: number;
  /** Plaintext bytes of new blobs. */
  dataAdded: number;
  /** Stored (sealed) bytes of new blobs. */
  dataAddedPacked: number;
  packsWritten: number;
}

/**
 * A pack being filled. Sealed blobs are copied into one buffer as they arrive, so each blob's own
 * buffer is garbage at once (not kept for the pack's lifetime) and closing needs no second copy.
 */
class OpenPack {
  readonly entries: PackEntry[] = [];
  private buffer: Buffer;
  size = 0;

  constructor(capacity: number) {
    this.buffer = Buffer.allocUnsafeSlow(capacity);
  }

  /** Appends a sealed blob given as consecutive parts. */
  add(id: string, type: BlobType, parts: readonly Uint8Array[], rawLength: number, compressed: boolean): number {
    const length = parts.reduce((n, p) => n + p.length, 0);
    this.entries.push({ id, type, offset: this.size, length, rawLength, compressed });
    this.reserve(length);
    for (const p of parts) {
      this.buffer.set(p, this.size);
      this.size += p.length;
    }
    return length;
  }

  /** The pack's bytes: the blobs, then the sealed header and its length. */
  finish(trailer: Buffer): Buffer {
    this.reserve(trailer.length);
    this.buffer.set(trailer, this.size);
    return this.buffer.subarray(0, this.size + trailer.length);
  }

  private reserve(n: number): void {
    if (this.size + n <= this.buffer.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(this.buffer.length * 2, this.size + n));
    this.buffer.copy(grown, 0, 0, this.size);
    this.buffer = grown;
  }
}

export interface BlobWriterOptions {
  /** Seal data blobs in worker threads (default true); false seals on the calling thread. */
  workers?: boolean;
  /** Concurrent pack uploads. */
  uploads?: number;
  /** Count what would be stored, store nothing (backup --dry-run). */
  dryRun?: boolean;
  /** Called after each pack is stored. */
  onPack?: (packId: string, type: PackType, bytes: number) => void;
  /**
   * false: write no index objects; stored packs collect in `storedPacks` (prune writes one index
   * that supersedes the old ones itself).
   */
  indexObjects?: boolean;
}

export class BlobWriter {
  readonly stats: WriterStats = { dataBlobs: 0, treeBlobs: 0, dataAdded: 0, dataAddedPacked: 0, packsWritten: 0 };
  /** IDs accepted by this writer but not yet in the repository's index. */
  private readonly pendingIds = new Set<string>();
  private readonly open: Partial<Record<PackType, OpenPack>> = {};
  private readonly inFlight = new Set<Promise<void>>();
  private readonly uploadSlots: Semaphore;
  private unindexed: IndexPack[] = [];
  /** Packs stored and not indexed, when `indexObjects` is false. */
  readonly storedPacks: IndexPack[] = [];
  /** Started on first use: an unchanged re-backup never needs it. */
  private poolInstance: CryptoPool | undefined;
  private readonly useWorkers: boolean;
  private error: unknown;
  /** Closed packs not yet stored, and who waits for one to be. */
  private queuedPacks = 0;
  private uploaded: (() => void)[] = [];

  constructor(private readonly repo: Repository, private readonly opts: BlobWriterOptions = {}) {
    this.uploadSlots = new Semaphore(opts.uploads ?? 2);
    this.useWorkers = opts.workers !== false && !opts.dryRun;
  }

  private get pool(): CryptoPool | undefined {
    if (this.useWorkers) this.poolInstance ??= new CryptoPool(this.repo.keys.encrypt, this.repo.keys.id, this.repo.config.compressionLevel);
    return this.poolInstance;
  }

  /** True when the blob is in the repository or already queued by this writer. */
  known(id: string): boolean {
    return this.pendingIds.has(id) || this.repo.index.has(id);
  }

  /**
   * Queues a blob unless it is already known; returns its ID and whether it was new. `data` is
   * handed over (it may be transferred to a worker): the caller must not use it afterwards.
   */
  async save(type: BlobType, data: Buffer, id = this.repo.blobIdOf(data)): Promise<{ id: string; added: boolean }> {
    this.throwIfFailed();
    if (this.known(id)) return { id, added: false };
    this.pendingIds.add(id);
    const rawLength = data.length;
    if (this.opts.dryRun) {
      this.count(type, rawLength, 0);
      return { id, added: true };
    }
    const z = compressIfSmaller(data, this.repo.config.compressionLevel);
    const { nonce, ciphertext, tag } = sealParts(this.repo.keys.encrypt, z ?? data);
    await this.addSealed(id, type, [nonce, ciphertext, tag], rawLength, z !== null);
    return { id, added: true };
  }

  /**
   * Queues a data blob to be hashed, compressed and sealed in a worker thread; resolves once it is
   * queued (memory in flight is bounded), with its ID to come. Hashing in the worker keeps the main
   * thread free to read and chunk; the price is that a duplicate chunk of a changed file is
   * compressed before its ID shows it is known, and then dropped. `data` is handed over.
   */
  async saveData(data: Buffer): Promise<{ id: Promise<string> }> {
    if (!this.pool) return { id: Promise.resolve((await this.save('data', data)).id) };
    await this.backpressure();
    await this.pool.reserve(data.length);
    const result = this.pool.seal(data, true);
    this.track(result.then((r) => this.addNew(r)));
    const id = result.then((r) => r.id);
    // Failures also reach flush() through track(); this keeps an abandoned ID from crashing the process.
    id.catch(() => undefined);
    return { id };
  }

  /** True when blobs are sealed in worker threads (saveFile can be used). */
  get parallel(): boolean {
    return this.useWorkers;
  }

  /**
   * Queues a small file (at most `maxBytes`; `sizeHint` from lstat) to be read, hashed, compressed
   * and sealed in a worker thread, so that small files are read in parallel. Resolves once queued,
   * with the blob ID and size read to come, or the read error (a warning, not a failure).
   */
  async saveFile(path: Buffer, sizeHint: number, maxBytes: number): Promise<{ result: Promise<{ id: string; size: number } | ReadError> }> {
    const pool = this.pool!;
    await this.backpressure();
    await pool.reserve(sizeHint);
    const res = pool.sealFile(path, sizeHint, maxBytes);
    this.track(res.then((r) => (r.kind === 'seal' ? this.addNew(r) : undefined)));
    const result = res.then((r) => (r.kind === 'seal' ? { id: r.id, size: r.rawLength } : r));
    result.catch(() => undefined);
    return { result };
  }

  private async backpressure(): Promise<void> {
    this.throwIfFailed();
    // When packs wait for upload, stop reading until one is stored.
    while (this.queuedPacks > MAX_QUEUED_PACKS) {
      await new Promise<void>((wake) => this.uploaded.push(wake));
      this.throwIfFailed();
    }
  }

  /** Adds a data blob sealed by a worker unless its ID turned out to be known. */
  private async addNew(r: SealResult): Promise<void> {
    if (this.known(r.id)) return;
    this.pendingIds.add(r.id);
    const { envelope } = r;
    await this.addSealed(r.id, 'data', [envelope.subarray(0, NONCE_SIZE), r.ciphertext, envelope.subarray(NONCE_SIZE)], r.rawLength, r.compressed);
  }

  /**
   * Adds a blob that is already sealed (repacking by prune): no re-encryption, and no deduplication
   * against the repository index, whose copy is the one being rewritten.
   */
  async copySealed(id: string, type: BlobType, sealed: Buffer, rawLength: number, compressed: boolean): Promise<void> {
    this.throwIfFailed();
    if (this.pendingIds.has(id)) return;
    this.pendingIds.add(id);
    await this.addSealed(id, type, [sealed], rawLength, compressed);
  }

  private count(type: BlobType, rawLength: number, storedLength: number): void {
    if (type === 'data') this.stats.dataBlobs++;
    else this.stats.treeBlobs++;
    this.stats.dataAdded += rawLength;
    this.stats.dataAddedPacked += storedLength;
  }

  private track(p: Promise<void>): void {
    const t = p.catch((e) => {
      this.error ??= e;
    }).finally(() => this.inFlight.delete(t));
    this.inFlight.add(t);
  }

  private throwIfFailed(): void {
    if (this.error !== undefined) throw this.error;
  }

  private async addSealed(id: string, type: BlobType, sealed: readonly Uint8Array[], rawLength: number, compressed: boolean): Promise<void> {
    const packType: PackType = type === 'data' ? 'data' : 'meta';
    const target = packType === 'data' ? this.repo.config.dataPackTarget : this.repo.config.metaPackTarget;
    // Room for the target plus one blob of the default maximum chunk size: a pack closes once it
    // reaches the target, so it rarely has to grow.
    const pack = (this.open[packType] ??= new OpenPack(target + Math.min(this.repo.config.chunker.max, target) + 64 * 1024));
    this.count(type, rawLength, pack.add(id, type, sealed, rawLength, compressed));
    if (pack.size >= target) await this.closePack(packType);
  }

  /** Finishes the open pack of a type and starts its upload (waits for an upload slot). */
  private async closePack(packType: PackType): Promise<void> {
    const pack = this.open[packType];
    if (!pack || pack.entries.length === 0) return;
    delete this.open[packType];
    const bytes = pack.finish(packTrailer(this.repo.keys.encrypt, pack.entries));
    const name = sha256Hex(bytes);
    this.queuedPacks++;
    await this.uploadSlots.acquire();
    this.track(
      (async () => {
        try {
          await this.repo.backend.save({ type: packType, name }, bytes);
        } finally {
          this.uploadSlots.release();
          this.queuedPacks--;
          this.uploaded.splice(0).forEach((wake) => wake());
        }
        const entry: IndexPack = { id: name, type: packType, size: bytes.length, blobs: pack.entries };
        this.stats.packsWritten++;
        this.opts.onPack?.(name, packType, bytes.length);
        this.unindexed.push(entry);
        if (this.unindexed.length >= PACKS_PER_INDEX) await this.writeIndex();
      })(),
    );
  }

  /** Writes an index object for every stored pack not yet indexed, and adds them to the master index. */
  private async writeIndex(): Promise<void> {
    const packs = this.unindexed;
    this.unindexed = [];
    if (packs.length === 0) return;
    if (this.opts.indexObjects === false) {
      this.storedPacks.push(...packs);
      return;
    }
    const name = await this.repo.saveMetadata('index', indexToJson({ supersedes: [], packs }), true);
    this.repo.index.indexNames.add(name);
    for (const p of packs) {
      this.repo.index.addPack(p);
      for (const b of p.blobs) this.pendingIds.delete(b.id);
    }
  }

  /**
   * Stores everything queued: seals finish, open packs are closed and uploaded, then the index is
   * written. After flush resolves, every blob saved so far is in the repository and its index.
   */
  async flush(): Promise<void> {
    if (this.opts.dryRun) return;
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
    this.throwIfFailed();
    await this.closePack('data');
    await this.closePack('meta');
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
    this.throwIfFailed();
    await this.writeIndex();
  }

  async close(): Promise<void> {
    await this.poolInstance?.close();
  }
}
