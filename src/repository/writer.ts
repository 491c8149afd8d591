// Writing new blobs: deduplicate by ID, compress and seal (in worker threads for data), collect into
// packs (in a temporary file of the backend where it has them, else in memory), store packs, and
// write index objects once their packs are stored (format-spec ch. 10).
import { NONCE_SIZE, seal } from '../crypto/aead.js';
import { hasFileStaging, type Backend, type StagedFile } from '../backend/backend.js';
import { sha256Hex } from '../crypto/hash.js';
import { compressIfSmaller } from '../compress/zstd.js';
import { METADATA_LEVEL } from '../format/metadata.js';
import { indexToJson, type IndexPack, type PackType } from '../format/index.js';
import { packTrailer, type PackEntry } from '../format/pack.js';
import type { BlobType } from '../model/ids.js';
import { once, Semaphore } from '../util/concurrency.js';
import { newSha256 } from '../native/binding.js';
import type { Repository } from './repository.js';
import { CryptoPool } from './crypto-pool.js';
import type { FileBatchResult, ReadError, SealResult } from './crypto-worker.js';

/** Closed packs waiting for (or in) upload before new data is refused: bounds memory. */
const MAX_QUEUED_PACKS = 1;
/**
 * Sealed data blobs waiting their turn to be added to a pack (in order) before saveData waits. The
 * crypto pool bounds the bytes being sealed, not what waits after: a copy, which reads faster than
 * blobs are added, piled up 33k sealed small blobs (0.5 GiB).
 */
const MAX_UNADDED_BLOBS = 512;
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

/** A pack being filled: sealed blobs go in as they arrive, then the header; then it is stored. */
interface OpenPack {
  readonly entries: PackEntry[];
  /** Bytes of blobs added so far. */
  readonly size: number;
  /**
   * Appends a sealed blob given as consecutive parts; returns its stored length. `written` is
   * called once the parts' memory is no longer needed (also when the pack fails or is dropped);
   * without it the parts are simply kept until then.
   */
  add(id: string, type: BlobType, parts: readonly Uint8Array[], rawLength: number, compressed: boolean, written?: () => void): number;
  /** Resolves when the pack can take more without holding much memory. */
  drain(): Promise<void>;
  /** Appends the sealed header; the pack's name (SHA-256 of its bytes) and size, and how to store it. */
  finish(trailer: Buffer): Promise<{ name: string; size: number; store(): Promise<void> }>;
  /** Drops an unfinished pack (after a failure). */
  discard(): Promise<void>;
}

/**
 * A pack in memory, saved whole (backends without file staging: S3, memory). Blobs are copied
 * into one buffer as they arrive, so each blob's own buffer is garbage at once (not kept for the
 * pack's lifetime) and closing needs no second copy.
 */
class MemoryPack implements OpenPack {
  readonly entries: PackEntry[] = [];
  private buffer: Buffer;
  size = 0;

  constructor(private readonly backend: Backend, private readonly type: PackType, capacity: number) {
    this.buffer = Buffer.allocUnsafeSlow(capacity);
  }

  add(id: string, type: BlobType, parts: readonly Uint8Array[], rawLength: number, compressed: boolean, written?: () => void): number {
    const length = parts.reduce((n, p) => n + p.length, 0);
    this.entries.push({ id, type, offset: this.size, length, rawLength, compressed });
    this.reserve(length);
    for (const p of parts) {
      this.buffer.set(p, this.size);
      this.size += p.length;
    }
    written?.();
    return length;
  }

  async drain(): Promise<void> {}

  async finish(trailer: Buffer): Promise<{ name: string; size: number; store(): Promise<void> }> {
    this.reserve(trailer.length);
    this.buffer.set(trailer, this.size);
    const bytes = this.buffer.subarray(0, this.size + trailer.length);
    const name = sha256Hex(bytes);
    return { name, size: bytes.length, store: () => this.backend.save({ type: this.type, name }, bytes) };
  }

  async discard(): Promise<void> {}

  private reserve(n: number): void {
    if (this.size + n <= this.buffer.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(this.buffer.length * 2, this.size + n));
    this.buffer.copy(grown, 0, 0, this.size);
    this.buffer = grown;
  }
}

/** Sealed bytes a StagedPack gathers before writing them in one call. */
const STAGE_BATCH = 1 << 20;
/** Bytes a StagedPack has handed to writes not finished yet, before drain() waits. */
const STAGE_AHEAD = 4 << 20;

/**
 * A pack written to a temporary file of the backend as it fills, and renamed into place when
 * stored (local repositories): a pack costs no memory while it fills or waits for its fsync.
 * Held in memory, the open pack and the closed ones waiting to be saved were ~70 MiB of a backup's
 * peak RSS.
 */
class StagedPack implements OpenPack {
  readonly entries: PackEntry[] = [];
  size = 0;
  // The pack's name: hashed on a libuv thread beside the write of the same bytes.
  private readonly hash = newSha256();
  private batch: Uint8Array[] = [];
  private batchBytes = 0;
  private batchWritten: (() => void)[] = [];
  private writing: Promise<void> = Promise.resolve();
  private unwritten = 0;

  constructor(private readonly file: StagedFile) {}

  add(id: string, type: BlobType, parts: readonly Uint8Array[], rawLength: number, compressed: boolean, written?: () => void): number {
    const length = parts.reduce((n, p) => n + p.length, 0);
    this.entries.push({ id, type, offset: this.size, length, rawLength, compressed });
    this.size += length;
    for (const p of parts) this.batch.push(p);
    this.batchBytes += length;
    // Memory that its owner waits to get back is written at once: held until a batch fills, it
    // could wait for more data that cannot come until it is back (a chunk slab).
    if (written) this.batchWritten.push(written);
    if (written || this.batchBytes >= STAGE_BATCH) this.write();
    return length;
  }

  async drain(): Promise<void> {
    if (this.unwritten > STAGE_AHEAD) await this.writing;
  }

  async finish(trailer: Buffer): Promise<{ name: string; size: number; store(): Promise<void> }> {
    this.batch.push(trailer);
    this.batchBytes += trailer.length;
    this.write();
    await this.writing;
    const name = this.hash.digest().toString('hex');
    return { name, size: this.size + trailer.length, store: () => this.file.commit(name) };
  }

  async discard(): Promise<void> {
    await this.writing.catch(() => undefined);
    this.batchWritten.splice(0).forEach((done) => done());
    await this.file.discard();
  }

  private write(): void {
    const parts = this.batch;
    const bytes = this.batchBytes;
    const written = this.batchWritten;
    this.batch = [];
    this.batchBytes = 0;
    this.batchWritten = [];
    this.unwritten += bytes;
    // Writes run one after another; the first failure is what every later await sees, and the
    // parts' owners get their memory back either way.
    this.writing = this.writing
      .then(async () => {
        // Both settle before the parts go back to their owners; the write's error comes first.
        const [write, hash] = await Promise.allSettled([this.file.append(parts), this.hash.update(parts)]);
        if (write.status === 'rejected') throw write.reason;
        if (hash.status === 'rejected') throw hash.reason;
        this.unwritten -= bytes;
      })
      .finally(() => written.forEach((done) => done()));
    this.writing.catch(() => undefined);
  }
}

/** A small file stored by saveFiles: its blob ID and the bytes that were read. */
export interface SavedFile {
  id: string;
  size: number;
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
  /** Open packs by type; a staged pack's temporary file is being created while the promise is pending. */
  private readonly open: Partial<Record<PackType, Promise<OpenPack>>> = {};
  /** The open packs that have been opened: blobs can go into them without waiting. */
  private readonly ready: Partial<Record<PackType, OpenPack>> = {};
  private readonly inFlight = new Set<Promise<void>>();
  /** Settles once every worker result queued so far is added to its pack (see inOrder). */
  private addedSoFar: Promise<void> = Promise.resolve();
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
  /** Data blobs queued by saveData and not yet added to their pack (or dropped), oldest first. */
  private readonly unadded: Promise<void>[] = [];

  constructor(private readonly repo: Repository, private readonly opts: BlobWriterOptions = {}) {
    this.uploadSlots = new Semaphore(opts.uploads ?? 2);
    this.useWorkers = opts.workers !== false && !opts.dryRun;
  }

  private get pool(): CryptoPool | undefined {
    // A seal worker keeps little alive between tasks; V8 let each one's young generation grow to
    // about 25 MiB of mostly dead objects (peak RSS of a 1 GiB backup: 263-305 MiB with 2 MiB
    // against 320-323 MiB without, and no slower).
    if (this.useWorkers) this.poolInstance ??= new CryptoPool(this.repo.keys.encrypt, this.repo.keys.id, this.repo.config.compressionLevel, { youngGenerationMiB: 2 });
    return this.poolInstance;
  }

  /** Starts the crypto workers now rather than for the first blob: their start-up overlaps other work. */
  startWorkers(): void {
    void this.pool;
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
    const z = compressIfSmaller(data, type === 'tree' ? METADATA_LEVEL : this.repo.config.compressionLevel);
    await this.addSealed(id, type, [seal(this.repo.keys.encrypt, z ?? data)], rawLength, z !== null);
    return { id, added: true };
  }

  /**
   * Queues a data blob to be hashed, compressed and sealed in a worker thread; resolves once it is
   * queued (memory in flight is bounded), with its ID to come. Hashing in the worker keeps the main
   * thread free to read and chunk; the price is that a duplicate chunk of a changed file is
   * compressed before its ID shows it is known, and then dropped. `data` is handed over (see
   * CryptoPool.seal). A view of shared memory must stay unchanged until `release` is called: the
   * worker writes the sealed blob over it, and it is released once the pack has it (at once if
   * the blob is known, or on failure).
   */
  async saveData(data: Buffer, release: () => void = () => undefined): Promise<{ id: Promise<string> }> {
    const done = once(release);
    if (!this.pool) {
      try {
        return { id: Promise.resolve((await this.save('data', data)).id) };
      } finally {
        done();
      }
    }
    try {
      await this.backpressure();
      await this.pool.reserve(data.length);
    } catch (e) {
      done();
      throw e;
    }
    const result = this.pool.seal(data, true);
    const inPack = this.inOrder(result, (r) => this.addNew(r, data, done), done);
    this.track(inPack);
    const settled = inPack.catch(() => undefined);
    this.unadded.push(settled);
    // Added in queueing order, so the oldest is the first to settle.
    void settled.then(() => this.unadded.shift());
    const id = result.then((r) => r.id);
    // Failures also reach flush() through track(); this keeps an abandoned ID from crashing the process.
    id.catch(() => undefined);
    return { id };
  }

  /** True when blobs are sealed in worker threads (saveFiles can be used). */
  get parallel(): boolean {
    return this.useWorkers;
  }

  /**
   * Queues small files (each at most `maxBytes`; `bytes` expected in all, from lstat) to be read,
   * hashed, compressed and sealed in a worker thread, so that small files are read in parallel.
   * Resolves once queued, with each file's blob ID and size read to come, or its read error (a
   * warning, not a failure).
   */
  async saveFiles(paths: Buffer[], bytes: number, maxBytes: number): Promise<{ results: Promise<(SavedFile | ReadError)[]> }> {
    const pool = this.pool!;
    await this.backpressure();
    await pool.reserve(bytes);
    const res = pool.sealFiles(paths, bytes, maxBytes);
    this.track(this.inOrder(res, (r) => this.addFiles(r)));
    const results = res.then((r) => r.files.map((f) => ('id' in f ? { id: f.id, size: f.rawLength } : f)));
    results.catch(() => undefined);
    return { results };
  }

  /**
   * Runs `add` with a worker's result once the results queued before it are added: data blobs go
   * into packs in the order they were queued, whichever worker finishes first. The walk queues a
   * directory's files together, so they stay together in few packs, and a selective restore thaws
   * only those (with directories overlapping in the workers, blobs of neighbouring directories
   * mixed in packs as they finished). `failed` runs instead when the worker fails.
   */
  private inOrder<R>(result: Promise<R>, add: (r: R) => Promise<void>, failed?: () => void): Promise<void> {
    const added = this.addedSoFar.then(() => result).then(add, (e: unknown) => {
      failed?.();
      throw e;
    });
    this.addedSoFar = added.catch(() => undefined);
    return added;
  }

  private async backpressure(): Promise<void> {
    this.throwIfFailed();
    // When packs wait for upload, stop reading until one is stored.
    while (this.queuedPacks > MAX_QUEUED_PACKS) {
      await new Promise<void>((wake) => this.uploaded.push(wake));
      this.throwIfFailed();
    }
    // And while many sealed blobs wait to be added, or the open data pack's file is behind (sealed
    // blobs wait in memory to be written).
    while (this.unadded.length >= MAX_UNADDED_BLOBS) await this.unadded[0];
    const data = this.open.data;
    if (data) await (await data).drain();
  }

  /**
   * Adds a data blob sealed by a worker unless its ID turned out to be known. A ciphertext written
   * in place is in `input`, whose `release` is called once the pack has it.
   */
  private async addNew(r: SealResult, input?: Uint8Array, release?: () => void): Promise<void> {
    try {
      if (this.known(r.id)) return release?.();
      this.pendingIds.add(r.id);
      const { envelope } = r;
      const ciphertext = r.ciphertext ?? input!.subarray(0, r.ciphertextLength);
      await this.addSealed(r.id, 'data', [envelope.subarray(0, NONCE_SIZE), ciphertext, envelope.subarray(NONCE_SIZE)], r.rawLength, r.compressed, release);
    } catch (e) {
      release?.();
      throw e;
    }
  }

  /** Adds the new blobs of a batch of small files. */
  private async addFiles(r: FileBatchResult): Promise<void> {
    const target = this.repo.config.dataPackTarget;
    let offset = 0;
    for (const f of r.files) {
      if (!('id' in f)) continue;
      const sealed = r.sealed.subarray(offset, (offset += f.length));
      if (this.known(f.id)) continue;
      this.pendingIds.add(f.id);
      // Straight into the open pack while it stays under its target: no await per blob.
      const pack = this.ready.data;
      if (pack && pack.size + sealed.length < target) this.count('data', f.rawLength, pack.add(f.id, 'data', [sealed], f.rawLength, f.compressed));
      else await this.addSealed(f.id, 'data', [sealed], f.rawLength, f.compressed);
    }
    await this.ready.data?.drain();
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

  private async addSealed(id: string, type: BlobType, sealed: readonly Uint8Array[], rawLength: number, compressed: boolean, written?: () => void): Promise<void> {
    const packType: PackType = type === 'data' ? 'data' : 'meta';
    const target = packType === 'data' ? this.repo.config.dataPackTarget : this.repo.config.metaPackTarget;
    for (;;) {
      const opening = (this.open[packType] ??= this.openPack(packType, target));
      const pack = await opening;
      // Closed while this blob waited for it (another blob filled it): the blob goes in the next.
      if (this.open[packType] !== opening) continue;
      this.ready[packType] = pack;
      this.count(type, rawLength, pack.add(id, type, sealed, rawLength, compressed, written));
      if (pack.size >= target) await this.closePack(packType);
      else await pack.drain();
      return;
    }
  }

  private async openPack(type: PackType, target: number): Promise<OpenPack> {
    const backend = this.repo.backend;
    if (hasFileStaging(backend)) return new StagedPack(await backend.stage(type));
    // Room for the target plus one blob of the default maximum chunk size: a pack closes once it
    // reaches the target, so it rarely has to grow.
    return new MemoryPack(backend, type, target + Math.min(this.repo.config.chunker.max, target) + 64 * 1024);
  }

  /** Finishes the open pack of a type and starts storing it (waits for an upload slot). */
  private async closePack(packType: PackType): Promise<void> {
    const opening = this.open[packType];
    if (!opening) return;
    delete this.open[packType];
    delete this.ready[packType];
    const pack = await opening;
    if (pack.entries.length === 0) return pack.discard();
    let finished: Awaited<ReturnType<OpenPack['finish']>>;
    try {
      finished = await pack.finish(packTrailer(this.repo.keys.encrypt, pack.entries));
    } catch (e) {
      await pack.discard();
      throw e;
    }
    const { name, size, store } = finished;
    this.queuedPacks++;
    await this.uploadSlots.acquire();
    this.track(
      (async () => {
        try {
          await store();
        } catch (e) {
          await pack.discard();
          throw e;
        } finally {
          this.uploadSlots.release();
          this.queuedPacks--;
          this.uploaded.splice(0).forEach((wake) => wake());
        }
        const entry: IndexPack = { id: name, type: packType, size, blobs: pack.entries };
        this.stats.packsWritten++;
        this.opts.onPack?.(name, packType, size);
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

  /** Stops the workers; packs still open (after a failure: flush() stores them) are dropped. */
  async close(): Promise<void> {
    await this.poolInstance?.close();
    for (const type of ['data', 'meta'] as const) {
      const pack = this.open[type];
      delete this.open[type];
      delete this.ready[type];
      await pack?.then((p) => p.discard(), () => undefined);
    }
  }
}
