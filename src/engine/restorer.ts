// Restore: plan which blobs each file needs while the trees are walked, read the needed runs of
// each pack (ranged reads; usually each pack once), and have the crypto workers write the blobs
// into the files at their offsets and set metadata (restore-task.ts). A file of several blobs is
// written under a temporary name and renamed when complete, a new one-blob file under its own name
// and removed again if it cannot be completed, so an interrupted restore never leaves a partial
// file looking complete; a re-run finds the temporary file and fetches only the blobs whose bytes
// are not already correct in it. A restore from cold storage walks the trees once to learn which
// packs it needs (to thaw them), then restores in rounds as they become readable, walking again
// each round: between walks it keeps one bit per file.
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, rmSync } from 'node:fs';
import { link, lstat, open, readlink, rm, symlink, type FileHandle } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { mkfifo, mknod } from '../native/binding.js';
import { applyMetadata, joinPath, pathText, splitNs } from '../fs/metadata.js';
import { PathMatcher } from '../fs/glob.js';
import { mkdirsSync } from '../fs/mkdirs.js';
import type { TreeNode } from '../model/tree.js';
import type { Repository } from '../repository/repository.js';
import type { BlobLocation } from '../repository/index.js';
import { InterruptedError, LocalIOError, SnapError } from '../errors.js';
import { CryptoPool } from '../repository/crypto-pool.js';
import { Lookahead } from '../util/concurrency.js';
import { BitSet } from '../util/bitset.js';
import { lookupPath, walkTree } from './walk.js';
import type { PackType } from '../format/index.js';
import { BLOB_FIELDS, FILE_FIELDS, F_FINISH, F_NEW, F_TRUNCATE, WRITE_FIELDS, moveIntoPlace, removeEmptyDir, type RestoreResult as TaskResult, type TaskXattr } from '../repository/restore-task.js';

export type OverwriteMode = 'always' | 'if-changed' | 'never';

export interface RestoreProgress {
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

export interface RestoreOptions {
  /** Tree to restore from (a snapshot's root tree). */
  tree: string;
  /** Path inside the snapshot to restore ("/" for all). */
  subpath?: string;
  target: string;
  include?: string[];
  exclude?: string[];
  /** Like include and exclude, letters matching either case (--iinclude, --iexclude). */
  iinclude?: string[];
  iexclude?: string[];
  overwrite?: OverwriteMode;
  sparse?: boolean;
  verify?: boolean;
  dryRun?: boolean;
  /** Parallel pack reads. */
  readers?: number;
  /** @internal Directories and special files the first walk keeps for the end (tests lower it; see KEPT_ENTRIES). */
  keptEntries?: number;
  signal?: AbortSignal;
  onProgress?: (p: RestoreProgress) => void;
  onWarning?: (message: string) => void;
  /**
   * Decides which packs may be read now (cold-storage support): receives the packs the plan needs
   * and returns those readable now. Default: all.
   */
  readablePacks?: (packs: PackNeed[]) => Promise<Set<string>>;
  /**
   * Called after the readable packs are restored while some are still pending: resolves with the
   * pending packs that have become readable (restored next, without re-planning), or an empty set
   * to stop and leave the rest pending. Lets a restore wait for thaws while writing what it can.
   */
  awaitPacks?: (pending: PackNeed[]) => Promise<Set<string>>;
}

export interface PackNeed {
  id: string;
  type: PackType;
  size: number;
}

export interface RestoreResult {
  filesRestored: number;
  filesSkipped: number;
  dirs: number;
  otherNodes: number;
  bytesWritten: number;
  packsRead: number;
  /** Packs the plan needs, with sizes (also in dry runs). */
  packsNeeded: PackNeed[];
  /** Packs that could not be read yet (cold); their files are left for a later run. */
  packsPending: string[];
  verifyErrors: number;
  warnings: number;
}

interface FileJob {
  node: TreeNode;
  /** Final path on disk. */
  dest: Buffer;
  /** The directory it is in (dirKey). */
  dir: string;
  /** Temporary path written to until the file is complete (computed when first needed). */
  temp?: Buffer;
  /** Written under its own name (a new file of at most one blob), not under temp. */
  own: boolean;
  /** Sum of the raw lengths of its blobs. */
  rawSize: number;
  /** Blobs still to write. */
  remaining: number;
  /** Its number among the files to restore, in walk order (the same in every walk of a restore). */
  ord: number;
}

/** The first path of an inode with several links, which its other paths link to. */
interface FirstPath {
  ord: number;
  dest: Buffer;
}

/** Another path of such an inode: a hard link, made once the first path's file is complete. */
interface LinkJob {
  dest: Buffer;
  linkTo: FirstPath;
}

interface Write {
  job: FileJob;
  offset: number;
}

interface Entry {
  node: TreeNode;
  dest: Buffer;
  /** Depth below the restore's root (0 for its own entries). */
  depth: number;
}

/** What the first walk of a restore keeps for after the files (see walkFiles). */
interface Walked {
  /** Its directories and special files, in walk order; undefined once there were too many. */
  later: Entry[] | undefined;
  /** Other paths of inodes with several links: hard links, made after the files. */
  links: LinkJob[];
  /** The first path of each inode with several links (a rsnapshot-style tree: nearly every file). */
  byInode: Map<string, FirstPath>;
}

/** What is restored: the node at the snapshot path asked for, and that path. */
type Root = Awaited<ReturnType<typeof lookupPath>>;

/** What is on disk for a file (see existing()). */
type Existing = 'skip' | 'absent' | Set<number> | undefined;

const TEMP_SUFFIX = '.snap-restore';
/** Files without blobs to write (empty, or complete in their temp file) per worker task. */
const FILES_PER_TASK = 1024;
/**
 * Directories and special files the first walk keeps for the end (~0.6 KB each). A restore with
 * more walks the trees once more instead (finishTree): for 63k small files that walk took 0.4 s,
 * decoding every tree again, 7% of the restore.
 */
const KEPT_ENTRIES = 32_768;
/** A cold restore's next round waits at least this many times as long as the last one took. */
const ROUND_SPACING = 4;
/** Files planned at a time while the trees are read. */
const PLAN_CHUNK = 256;
/** While planning, a pack's blobs are read once this many writes or sealed bytes wait on them. */
const EARLY_WRITES = 1024;
const EARLY_BYTES = 8 << 20;
/** Needed blobs of a pack further apart than this are read separately. */
const MAX_GAP = 1 << 20;
/**
 * A read of a pack ends before it grows past this (a single larger blob is read alone), and all
 * reads together hold at most REGION_BUDGET of memory. Whole-pack reads of 16 MiB each, held until
 * the workers were done with them, were 80 MiB of a restore's peak RSS.
 */
const READ_MAX = 4 << 20;
const REGION_BUDGET = 24 << 20;
/**
 * Units (a pack's blobs, or a batch of files) waiting to run before the planning waits for them.
 * Without a limit the plan ran ahead of the writes and every planned file waited in the queue: the
 * main thread's heap reached ~86 MB for 63k files (~1.3 KB each: node, job, destination, writes),
 * and a restore of millions of files would have held all of them.
 */
const QUEUED_UNITS = 8;
/** Writes (about files) and sealed bytes per worker task at most. */
const TASK_WRITES = 256;
const TASK_BYTES = 4 << 20;

/**
 * Runs units of work (a pack each) as they are added, at most `limit` at once. After the first
 * failure nothing more starts, `onFail` asks the running ones to stop, and drain() waits for them
 * before throwing it: a worker terminated in the middle of a task could leave a file under its own
 * name unfinished.
 */
class UnitQueue {
  private readonly waiting: (() => Promise<void>)[] = [];
  private running = 0;
  private failure: { error: unknown } | undefined;
  private idle: (() => void)[] = [];
  private room: { below: number; resolve: () => void }[] = [];

  constructor(private readonly limit: number, private readonly before: () => void, private readonly onFail: () => void) {}

  get failed(): boolean {
    return this.failure !== undefined;
  }

  add(unit: () => Promise<void>): void {
    this.waiting.push(unit);
    this.pump();
  }

  /** Resolves once fewer than `below` units wait to run (at once after a failure). */
  async hasRoom(below: number): Promise<void> {
    if (this.waiting.length < below || this.failure) return;
    await new Promise<void>((resolve) => this.room.push({ below, resolve }));
  }

  private pump(): void {
    while (this.running < Math.max(1, this.limit) && this.waiting.length > 0 && !this.failure) {
      const unit = this.waiting.shift()!;
      this.running++;
      this.wakeRoom();
      void (async () => {
        try {
          this.before();
          await unit();
        } catch (e) {
          // A task stopped because another failed reports an interruption: the cause is reported.
          if (!this.failure || (this.failure.error instanceof InterruptedError && !(e instanceof InterruptedError))) {
            if (!this.failure) this.onFail();
            this.failure = { error: e };
            this.wakeRoom();
          }
        } finally {
          this.running--;
          this.pump();
          if (this.running === 0) {
            const idle = this.idle;
            this.idle = [];
            for (const f of idle) f();
          }
        }
      })();
    }
  }

  private wakeRoom(): void {
    if (this.room.length === 0) return;
    const ready = this.room.filter((r) => this.waiting.length < r.below || this.failure);
    if (ready.length === 0) return;
    this.room = this.room.filter((r) => !ready.includes(r));
    for (const r of ready) r.resolve();
  }

  /** Resolves when everything added has run; rejects with the first failure. */
  async drain(): Promise<void> {
    while (this.running > 0) await new Promise<void>((r) => this.idle.push(r));
    if (this.failure) throw this.failure.error;
  }
}

/**
 * Waits for every promise, then throws the first failure that is not an interruption (a task
 * stopped because another failed reports one), or else the first.
 */
async function settleAll(promises: Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(promises)).flatMap((x) => (x.status === 'rejected' ? [x.reason as unknown] : []));
  if (failed.length > 0) throw failed.find((e) => !(e instanceof InterruptedError)) ?? failed[0];
}

function tempName(dest: Buffer): Buffer {
  const slash = dest.lastIndexOf(0x2f);
  const dir = dest.subarray(0, slash);
  const name = dest.subarray(slash + 1);
  const h = createHash('sha256').update(name).digest('hex').slice(0, 16);
  return joinPath(dir, Buffer.from(`.${h}${TEMP_SUFFIX}`));
}

function tempOf(job: FileJob): Buffer {
  return (job.temp ??= tempName(job.dest));
}

/** A key for a directory path (latin1 maps every byte to one character). */
function dirKey(path: Buffer): string {
  return path.toString('latin1');
}

/** The directory holding a path. */
function parentOf(path: Buffer): Buffer {
  return path.subarray(0, path.lastIndexOf(0x2f));
}

function localError(path: Buffer, e: unknown): SnapError {
  if (e instanceof SnapError) return e;
  const code = (e as { code?: string }).code;
  const reason =
    code === 'ENOSPC' ? 'no space left on device'
    : code === 'EACCES' || code === 'EPERM' ? 'permission denied'
    : code === 'EROFS' ? 'read-only file system'
    : code === 'ENOTDIR' ? 'a part of the path is not a directory'
    : (e as Error).message;
  return new LocalIOError(`cannot write ${pathText(path)}: ${reason}`, { cause: e });
}

export class Restorer {
  private readonly result: RestoreResult = {
    filesRestored: 0, filesSkipped: 0, dirs: 0, otherNodes: 0, bytesWritten: 0, packsRead: 0, packsNeeded: [], packsPending: [], verifyErrors: 0, warnings: 0,
  };
  private readonly progress: RestoreProgress = { filesDone: 0, filesTotal: 0, bytesDone: 0, bytesTotal: 0 };
  private readonly owner = process.getuid?.() === 0;
  private readonly uid = process.geteuid?.() ?? -1;
  private readonly gid = process.getegid?.() ?? -1;
  private readonly include: PathMatcher;
  private readonly exclude: PathMatcher;
  private pool: CryptoPool | undefined;
  /** Directories this restore created: nothing is in them that was not restored now. */
  private readonly freshDirs = new Set<string>();
  /** Set to ask running worker tasks to stop (interrupt, or another task failed). */
  private readonly abort = new Int32Array(new SharedArrayBuffer(4));
  /** Shared memory for pack reads, free to take. */
  private readonly regions = new RegionPool(READ_MAX, REGION_BUDGET);
  /** Packs read from (the same pack may be read in several parts). */
  private readonly packsRead = new Set<string>();
  /** Packs needed, in the order first needed. */
  private readonly needed = new Set<string>();
  /** Files restored, or found already right on disk, by number: one bit each between walks. */
  private readonly done = new BitSet();
  /** With --include, the directories to restore (see findIncludedDirs). */
  private includedDirs: Set<string> | undefined;

  constructor(private readonly repo: Repository, private readonly opts: RestoreOptions) {
    this.include = new PathMatcher(opts.include ?? [], opts.iinclude);
    this.exclude = new PathMatcher(opts.exclude ?? [], opts.iexclude);
  }

  private warn(msg: string): void {
    this.result.warnings++;
    this.opts.onWarning?.(msg);
  }

  private checkAbort(): void {
    if (this.opts.signal?.aborted) throw new InterruptedError('restore interrupted; run the same command again to continue');
  }

  private selected(path: string, isDir: boolean): boolean {
    if (!this.exclude.empty && this.exclude.matches(path)) return false;
    if (this.include.empty || isDir) return true;
    return this.include.matches(path);
  }

  async run(): Promise<RestoreResult> {
    const stop = () => Atomics.store(this.abort, 0, 1);
    this.opts.signal?.addEventListener('abort', stop);
    try {
      return await this.restoreAll();
    } finally {
      this.opts.signal?.removeEventListener('abort', stop);
      await this.pool?.close();
    }
  }

  private async restoreAll(): Promise<RestoreResult> {
    const dryRun = this.opts.dryRun === true;
    // The workers start up while the trees are read and the restore planned.
    if (!dryRun) this.crypto();
    const target = Buffer.from(resolvePath(this.opts.target));
    const sub = await lookupPath(this.repo, this.opts.tree, this.opts.subpath ?? '/');
    if (!dryRun) this.mkdirSafe(target);
    const walked: Walked = { later: [], links: [], byInode: new Map() };

    if (!dryRun && !this.opts.readablePacks) {
      // Every pack is readable: one walk, whose packs go to the workers while it goes on.
      await this.restoreRound(sub, target, walked, true, () => true);
      this.result.packsNeeded = this.packNeeds();
    } else {
      // Thaw planning (and a dry run's summary) needs every pack before the first is read. A first
      // walk only collects them; each round then walks again and restores what is readable. Holding
      // the plan of every file instead took ~1 KB of heap per file (millions of files: the heap limit).
      const toWrite = await this.survey(sub, target, walked);
      this.result.packsNeeded = this.packNeeds();
      if (dryRun) {
        this.result.filesRestored = toWrite;
        return this.result;
      }
      await this.restoreInRounds(sub, target, walked);
    }
    this.result.packsRead = this.packsRead.size;

    // Hard links (to files that are complete), then special files and directory metadata.
    for (const l of walked.links) if (this.done.has(l.linkTo.ord)) await this.restoreLink(l);
    await this.finishTree(walked.later ?? this.entries(sub, target));
    if (sub.node.type === 'dir' && sub.path.length > 1 && this.include.empty && this.exclude.empty) {
      this.applyMeta(target, sub.node);
    }
    if (this.opts.verify) await this.verify(sub, target, walked);
    return this.result;
  }

  /**
   * After the survey: restores what is readable, then, with awaitPacks, waits for the rest and
   * restores it in further rounds; what is still cold at the end is left pending.
   */
  private async restoreInRounds(sub: Root, target: Buffer, walked: Walked): Promise<void> {
    let readable = await this.opts.readablePacks!(this.result.packsNeeded);
    let pending = this.result.packsNeeded;
    for (;;) {
      const now = readable;
      pending = pending.filter((p) => !now.has(p.id));
      const started = Date.now();
      await this.restoreRound(sub, target, walked, false, (pack) => now.has(pack));
      if (pending.length === 0 || !this.opts.awaitPacks) break;
      // Each round walks every tree again, so packs thawed soon after a round wait for others:
      // the next round starts once all are readable, or after ROUND_SPACING times the last
      // round's duration (thaws finish over hours; a round of millions of files takes minutes).
      const next = Date.now() + ROUND_SPACING * (Date.now() - started);
      const more = new Set<string>();
      for (;;) {
        const ready = await this.opts.awaitPacks(pending.filter((p) => !more.has(p.id)));
        for (const id of ready) more.add(id);
        if (ready.size === 0 || more.size === pending.length || Date.now() >= next) break;
      }
      if (more.size === 0) break;
      readable = new Set([...now, ...more]);
    }
    this.result.packsPending = pending.map((p) => p.id);
  }

  /**
   * After the files: special files, and each directory's metadata once everything in it is done
   * (its mtime last), from the entries in walk order (files among them are passed over).
   * Directories wait on a stack while the entries are below them: with a last walk of the trees,
   * memory is the tree's depth, not its number of directories.
   */
  private async finishTree(entries: Iterable<Entry> | AsyncIterable<Entry>): Promise<void> {
    const open: Entry[] = [];
    const leave = (depth: number) => {
      while (open.length > 0 && open[open.length - 1]!.depth >= depth) {
        const d = open.pop()!;
        this.applyMeta(d.dest, d.node);
        this.result.dirs++;
      }
    };
    let seen = 0;
    for await (const e of entries) {
      if (++seen % PLAN_CHUNK === 0) this.checkAbort();
      leave(e.depth);
      if (e.node.type === 'dir') open.push(e);
      else if (e.node.type !== 'file') await this.restoreSpecial(e.dest, e.node);
    }
    leave(0);
  }

  private packNeeds(): PackNeed[] {
    return [...this.needed].map((id) => this.repo.index.pack(id)!);
  }

  /**
   * Walks the entries to restore and hands their files (the first path of each inode) to
   * `onChunk`, PLAN_CHUNK at a time, until `stop`. The first walk also makes the directories,
   * and keeps the hard links and (up to a bound) the directories and special files, all dealt with
   * after the files. Every walk of a restore numbers the files alike (`ord`).
   */
  private async walkFiles(sub: Root, target: Buffer, w: Walked, first: boolean, onChunk: (chunk: FileJob[]) => Promise<void>, stop: () => boolean): Promise<void> {
    const dryRun = this.opts.dryRun === true;
    const keep = this.opts.keptEntries ?? KEPT_ENTRIES;
    let ord = 0;
    let chunk: FileJob[] = [];
    for await (const e of this.entries(sub, target)) {
      if (e.node.type !== 'file') {
        if (!first) continue;
        if (e.node.type === 'dir' && !dryRun) this.makeDir(e.dest);
        w.later?.push(e);
        if (w.later && w.later.length > keep) w.later = undefined;
        continue;
      }
      if (first) this.progress.filesTotal++;
      if ((e.node.nlink ?? 1) > 1) {
        const key = `${e.node.device}:${e.node.inode}`;
        const firstPath = w.byInode.get(key);
        if (!first) {
          // Another path of an inode whose first path has another number: a link, made at the end.
          if (firstPath!.ord !== ord) continue;
        } else if (firstPath) {
          w.links.push({ dest: e.dest, linkTo: firstPath });
          continue;
        } else w.byInode.set(key, { ord, dest: e.dest });
      }
      if (first) this.progress.bytesTotal += e.node.size ?? 0;
      chunk.push({ node: e.node, dest: e.dest, dir: dirKey(parentOf(e.dest)), own: false, rawSize: 0, remaining: 0, ord });
      ord++;
      if (chunk.length === PLAN_CHUNK) {
        await onChunk(chunk);
        chunk = [];
        if (stop()) return;
        // A walk of millions of files (the survey, --verify) takes minutes: Ctrl-C stops it too.
        this.checkAbort();
      }
    }
    await onChunk(chunk);
    this.checkAbort();
  }

  /**
   * Runs `write` for each file of a chunk that is not done and not already right on disk (those are
   * skipped here), with what is on disk for it.
   */
  private async forEachToWrite(chunk: FileJob[], write: (job: FileJob, existing: Existing) => void): Promise<void> {
    const todo = chunk.filter((job) => !this.done.has(job.ord));
    // Looked up ahead: one lstat round trip after another is slow.
    const onDisk = new Lookahead(todo.length, 32, (i) => (this.opts.dryRun ? Promise.resolve(undefined) : this.existing(todo[i]!)));
    for (const [i, job] of todo.entries()) {
      const existing = await onDisk.get(i);
      if (existing === 'skip') this.skip(job);
      else write(job, existing);
    }
  }

  /** A file whose content is already right: mode, owner, times and xattrs are still made to match. */
  private skip(job: FileJob): void {
    if ((this.opts.overwrite ?? 'always') !== 'never') this.applyMeta(job.dest, job.node);
    this.done.add(job.ord);
    this.result.filesSkipped++;
    this.progress.filesDone++;
  }

  /** The first walk of a restore that needs every pack known first: collects them. Returns the files to write. */
  private async survey(sub: Root, target: Buffer, w: Walked): Promise<number> {
    let toWrite = 0;
    const survey = async (chunk: FileJob[]) => {
      await this.forEachToWrite(chunk, (job, existing) => {
        for (const [k, id] of (job.node.content ?? []).entries()) {
          if (!(existing instanceof Set && existing.has(k))) this.needed.add(this.repo.locate(id, 'data').pack);
        }
        toWrite++;
      });
      // The totals grow while the trees are read (millions of files: minutes before the first read).
      this.opts.onProgress?.({ ...this.progress });
    };
    await this.walkFiles(sub, target, w, true, survey, () => false);
    return toWrite;
  }

  /**
   * Restores the files not done yet, reading only the packs that `readable` allows; a file with
   * blobs in other packs gets the rest written into its temporary file, and a later round (or run)
   * finishes it. A pack goes to the workers once no file planned in a while needed it, while the
   * trees are still walked.
   */
  private async restoreRound(sub: Root, target: Buffer, w: Walked, first: boolean, readable: (pack: string) => boolean): Promise<void> {
    const queue = new UnitQueue(this.opts.readers ?? 4, () => this.checkAbort(), () => Atomics.store(this.abort, 0, 1));
    /** Blobs to read, by pack, not handed to the workers yet, with their writes and sealed bytes. */
    const byPack = new Map<string, { blobs: Map<string, Write[]>; writes: number; bytes: number }>();
    let noBlobs: FileJob[] = [];

    const need = (id: string, loc: BlobLocation, wr: Write) => {
      this.needed.add(loc.pack);
      let p = byPack.get(loc.pack);
      if (!p) byPack.set(loc.pack, (p = { blobs: new Map(), writes: 0, bytes: 0 }));
      let ws = p.blobs.get(id);
      if (!ws) {
        p.blobs.set(id, (ws = []));
        p.bytes += loc.length;
      }
      ws.push(wr);
      p.writes++;
    };
    const dispatchPack = (pack: string) => {
      const { blobs } = byPack.get(pack)!;
      byPack.delete(pack);
      queue.add(() => this.restorePack(pack, blobs));
    };
    // Files that need no blobs (empty, or already complete in their temp file) are finished by
    // the workers too, a batch per task.
    const dispatchFiles = () => {
      for (let i = 0; i < noBlobs.length; i += FILES_PER_TASK) {
        const jobs = noBlobs.slice(i, i + FILES_PER_TASK);
        queue.add(() => this.finishFiles(jobs));
      }
      noBlobs = [];
    };
    /** Plans a chunk of files: what is on disk already, and which blobs each still needs. */
    const plan = async (chunk: FileJob[]) => {
      await this.forEachToWrite(chunk, (job, existing) => {
        const content = job.node.content ?? [];
        // A new file of at most one blob is written in one call under its own name: creating and
        // renaming a temporary file doubled the directory operations that dominate small-file
        // restores, and there is nothing partial to resume. A failed write removes it again.
        if (existing === 'absent' && content.length <= 1) job.own = true;
        let offset = 0;
        for (let b = 0; b < content.length; b++) {
          const id = content[b]!;
          const loc = this.repo.locate(id, 'data');
          if (!(existing instanceof Set && existing.has(b))) {
            if (readable(loc.pack)) need(id, loc, { job, offset });
            job.remaining++;
          }
          offset += loc.rawLength;
        }
        job.rawSize = offset;
        if (job.remaining === 0) noBlobs.push(job);
      });
      // The blobs needed so far are read once there are enough of them: the workers start while
      // the trees are still read. (Small files share few packs, whose blobs are needed from the
      // first directory to the last; a blob needed again later is read again.)
      for (const [pack, p] of byPack) if (p.writes >= EARLY_WRITES || p.bytes >= EARLY_BYTES) dispatchPack(pack);
      if (noBlobs.length >= FILES_PER_TASK) dispatchFiles();
      await queue.hasRoom(QUEUED_UNITS);
    };

    try {
      await this.walkFiles(sub, target, w, first, plan, () => queue.failed);
      for (const pack of [...byPack.keys()]) dispatchPack(pack);
      dispatchFiles();
    } catch (e) {
      // Running tasks finish (or stop at a blob boundary) before the error is reported.
      Atomics.store(this.abort, 0, 1);
      await queue.drain().catch(() => undefined);
      throw e;
    }
    await queue.drain();
    // Files of directories this run created may now be partly written in their temp files.
    this.freshDirs.clear();
  }

  /** The entries to restore, parents before children, with their destinations. */
  private async *entries(sub: Root, target: Buffer): AsyncGenerator<Entry> {
    const base = sub.path.length === 1 ? 1 : sub.path.length + 1;
    const destFor = (p: Buffer) => (p.length < base ? target : joinPath(target, p.subarray(base)));
    if (sub.node.type !== 'dir') {
      yield { node: sub.node, dest: joinPath(target, sub.node.name), depth: 0 };
      return;
    }
    const filtered = !this.exclude.empty || !this.include.empty;
    // With --include, directories that hold nothing included are dropped: a walk of its own finds the others.
    const kept = this.include.empty ? undefined : (this.includedDirs ??= await this.findIncludedDirs(sub));
    for await (const e of walkTree(this.repo, sub.node.subtree!, sub.path)) {
      if (filtered) {
        const spath = pathText(e.path);
        const dir = e.node.type === 'dir';
        if (!this.selected(spath, dir) || (dir && kept && !kept.has(spath))) continue;
      }
      yield { node: e.node, dest: destFor(e.path), depth: e.depth };
    }
  }

  /**
   * With --include: the directories to restore, those included and those holding anything
   * included. Deciding as the entries came would have needed every entry held first.
   */
  private async findIncludedDirs(sub: Root): Promise<Set<string>> {
    const kept = new Set<string>();
    const parentText = (p: string) => p.slice(0, p.lastIndexOf('/')) || '/';
    for await (const e of walkTree(this.repo, sub.node.subtree!, sub.path)) {
      const spath = pathText(e.path);
      const dir = e.node.type === 'dir';
      if (!this.selected(spath, dir) || (dir && !this.include.matches(spath))) continue;
      // With its ancestors ("/" aside): those of a directory already kept are kept already.
      for (let p = dir ? spath : parentText(spath); p.length > 1 && !kept.has(p); p = parentText(p)) kept.add(p);
    }
    return kept;
  }

  /**
   * A directory of the snapshot, below the target. Anything else in its place is replaced (as a
   * file replaces an empty directory: moveIntoPlace), a symlink too, even to a directory: followed,
   * it would take the restore's writes out of the target (to /etc, for a restore run as root in a
   * tree where a user put that link). --overwrite never keeps what is there: an error.
   */
  private makeDir(dest: Buffer): void {
    try {
      const st = lstatSync(dest, { throwIfNoEntry: false });
      if (st?.isDirectory()) return;
      if (st) {
        if (this.opts.overwrite === 'never') {
          const what = st.isSymbolicLink() ? 'a symlink' : st.isFile() ? 'a file' : 'a special file';
          throw new LocalIOError(`cannot restore directory ${pathText(dest)}: ${what} is in its place, and --overwrite never keeps it`);
        }
        rmSync(dest, { force: true });
      }
      // Not mkdir -p: its parent is there already (entries come parents first), and the lstat
      // above has just found it absent.
      mkdirSync(dest, { mode: 0o700 });
    } catch (e) {
      throw localError(dest, e);
    }
    this.freshDirs.add(dirKey(dest));
  }

  private mkdirSafe(path: Buffer): void {
    try {
      // The first directory created, if any: then `path` itself is new (and empty).
      if (mkdirsSync(path, 0o700) !== undefined) this.freshDirs.add(dirKey(path));
    } catch (e) {
      // Said plainly rather than as mkdir's "EEXIST: file already exists" (a --target naming a file).
      if ((e as { code?: string }).code === 'EEXIST') throw new LocalIOError(`cannot write ${pathText(path)}: it exists and is not a directory`, { cause: e });
      throw localError(path, e);
    }
  }

  /**
   * What is already on disk for a file: 'skip' when the final file is already right (per the
   * overwrite mode), or the set of blob indexes already correct in a leftover temp file.
   */
  private async existing(job: FileJob): Promise<Existing> {
    const mode = this.opts.overwrite ?? 'always';
    // Nothing is in a directory this run created.
    if (this.freshDirs.has(job.dir)) return 'absent';
    // Synchronous: far cheaper than a thread-pool round trip for metadata that is mostly cached.
    const st = lstatSync(job.dest, { bigint: true, throwIfNoEntry: false });
    if (st) {
      if (mode === 'never') return 'skip';
      if (st.isFile() && Number(st.size) === job.node.size && st.mtimeNs === job.node.mtimeNs && (mode === 'if-changed' || (await this.matchingBlobs(job.dest, job)).size === (job.node.content ?? []).length)) {
        return 'skip';
      }
    }
    const tst = lstatSync(tempOf(job), { throwIfNoEntry: false });
    if (tst?.isFile()) return this.matchingBlobs(tempOf(job), job);
    return st ? undefined : 'absent';
  }

  /** Indexes of the blobs whose bytes are already correct in a file on disk. */
  private async matchingBlobs(path: Buffer, job: FileJob): Promise<Set<number>> {
    const ok = new Set<number>();
    const content = job.node.content ?? [];
    let fh: FileHandle | undefined;
    try {
      fh = await open(path, 'r');
      let offset = 0;
      for (let i = 0; i < content.length; i++) {
        const len = this.repo.locate(content[i]!, 'data').rawLength;
        const buf = Buffer.allocUnsafe(len);
        const { bytesRead } = await fh.read(buf, 0, len, offset);
        if (bytesRead === len && this.repo.blobIdOf(buf) === content[i]) ok.add(i);
        offset += len;
      }
    } catch {
      // Unreadable: treat as nothing usable.
    } finally {
      await fh?.close();
    }
    return ok;
  }

  private async restorePack(pack: string, blobs: Map<string, Write[]>): Promise<void> {
    const locs: [string, BlobLocation][] = [...blobs.keys()].map((id) => [id, this.repo.locate(id, 'data')]);
    locs.sort((a, b) => a[1].offset - b[1].offset);
    const tasks: Promise<void>[] = [];
    try {
      // One read per run of needed blobs (a run ends at a gap of more than MAX_GAP).
      for (let from = 0, to = 1; to <= locs.length; to++) {
        if (to < locs.length) {
          const next = locs[to]![1];
          const end = locs[to - 1]![1].offset + locs[to - 1]![1].length;
          if (next.offset - end <= MAX_GAP && next.offset + next.length - locs[from]![1].offset <= READ_MAX) continue;
        }
        const run = locs.slice(from, to);
        from = to;
        const start = run[0]![1].offset;
        const last = run[run.length - 1]![1];
        // Read into shared memory, which every task of the run reads from (no copy, no transfer),
        // and which is reused: a fresh 16 MiB buffer per pack cost page faults and GCs.
        const length = last.offset + last.length - start;
        const shared = await this.regions.take(length);
        let read: Buffer;
        try {
          read = await this.repo.backend.load({ type: last.packType, name: pack }, { offset: start, length, buffer: () => shared });
        } catch (e) {
          this.regions.give(shared);
          throw e;
        }
        if (read.buffer !== shared.buffer) shared.set(read);
        this.packsRead.add(pack);
        const runTasks = this.splitTasks(run, blobs).map(async ([a, b]) => {
          const ids: string[] = [];
          const blobFields = new Float64Array((b - a) * BLOB_FIELDS);
          const writes: Write[] = [];
          for (let i = a; i < b; i++) {
            const [id, loc] = run[i]!;
            const ws = blobs.get(id)!;
            ids.push(id);
            blobFields.set([loc.offset - start, loc.length, loc.rawLength, loc.compressed ? 1 : 0, writes.length, ws.length], (i - a) * BLOB_FIELDS);
            for (const w of ws) writes.push(w);
          }
          try {
            await this.runTask(shared, ids.join(''), blobFields, writes, [], (i, reason) => this.repo.blobError(run[a + i]![0], run[a + i]![1], reason));
          } catch (e) {
            Atomics.store(this.abort, 0, 1);
            throw e;
          }
        });
        // Once every task of the run is over, the memory can take another read.
        tasks.push(settleAll(runTasks).finally(() => this.regions.give(shared)));
      }
    } finally {
      // A failed read still waits for the tasks already sent.
      await settleAll(tasks);
    }
    this.opts.onProgress?.({ ...this.progress });
  }

  /**
   * Worker tasks of bounded size, as [from, to) ranges of `run`: one pack can hold most of a
   * restore's small files, and as one task it kept one worker busy long after the other was done.
   * A task's files are in one directory (see CryptoPool.restore).
   */
  private splitTasks(run: [string, BlobLocation][], blobs: Map<string, Write[]>): [number, number][] {
    const parts: [number, number][] = [];
    for (let from = 0, i = 0, writes = 0, bytes = 0, dir = ''; i <= run.length; i++) {
      const ws = i < run.length ? blobs.get(run[i]![0])! : [];
      const n = ws.length;
      const len = i < run.length ? run[i]![1].length : 0;
      const d = ws[0]?.job.dir ?? '';
      const other = i > from && d !== dir;
      dir = d;
      if (i === run.length || (i > from && (other || writes + n > TASK_WRITES || bytes + len > TASK_BYTES))) {
        parts.push([from, i]);
        from = i;
        writes = 0;
        bytes = 0;
      }
      writes += n;
      bytes += len;
    }
    return parts;
  }

  /** Files with no blob to write: created (if empty) or moved into place, with their metadata. */
  private async finishFiles(jobs: FileJob[]): Promise<void> {
    await this.runTask(new Uint8Array(0), '', new Float64Array(0), [], jobs, (_, reason) => new LocalIOError(reason));
    this.opts.onProgress?.({ ...this.progress });
  }

  /**
   * Has a crypto worker open the blobs, write them (writes[k] goes with the blobs whose write range
   * holds k) and finish the files whose last blob this is, plus the files `extra` with nothing to
   * write. Files whose blobs are in several packs are finished here after their last task.
   */
  private async runTask(region: Uint8Array, ids: string, blobFields: Float64Array, writes: Write[], extra: FileJob[], blobError: (i: number, reason: string) => SnapError): Promise<void> {
    // The files in the task, in order of first write, and how many of their writes it has.
    const index = new Map<FileJob, number>();
    const jobs: FileJob[] = [];
    const counts: number[] = [];
    const writeFields = new Float64Array(writes.length * WRITE_FIELDS);
    for (const [k, w] of writes.entries()) {
      let i = index.get(w.job);
      if (i === undefined) {
        index.set(w.job, (i = jobs.length));
        jobs.push(w.job);
        counts.push(0);
      }
      counts[i]!++;
      writeFields[k * WRITE_FIELDS] = i;
      writeFields[k * WRITE_FIELDS + 1] = w.offset;
    }
    for (const job of extra) {
      index.set(job, jobs.length);
      jobs.push(job);
      counts.push(0);
    }
    const files = new Float64Array(jobs.length * FILE_FIELDS);
    const pathParts: Buffer[] = [];
    const xattrs: TaskXattr[][] = [];
    const finishes: boolean[] = [];
    let at = 0;
    const addPath = (p: Buffer): [number, number] => {
      pathParts.push(p);
      at += p.length;
      return [at - p.length, at];
    };
    for (const [i, job] of jobs.entries()) {
      const node = job.node;
      const size = node.size ?? 0;
      const finish = job.remaining === counts[i];
      finishes.push(finish);
      const [ps, pe] = addPath(job.own ? job.dest : tempOf(job));
      const [ds, de] = job.own ? [-1, -1] : addPath(job.dest);
      let flags = finish ? F_FINISH : 0;
      if (job.own) flags |= F_NEW | (this.opts.sparse || job.rawSize !== size ? F_TRUNCATE : 0);
      let x = -1;
      if (finish && node.xattrs && node.xattrs.length > 0) {
        x = xattrs.length;
        // Copies: a value is a view of the whole decoded tree, which a clone would copy entire.
        xattrs.push(node.xattrs.map((a) => ({ name: a.name, value: new Uint8Array(a.value) })));
      }
      const [sec, nsec] = splitNs(node.mtimeNs);
      // A new file is created with its final permission bits when it keeps the owner it is created
      // with and has no setuid/setgid/sticky bit, so that finishing it needs no chmod.
      const createMode = job.own && (node.mode & 0o7000) === 0 && (!this.owner || (node.uid === this.uid && node.gid === this.gid)) ? node.mode : 0o600;
      files.set([ps, pe, ds, de, size, flags, node.mode, node.uid, node.gid, Number(sec), nsec, x, createMode], i * FILE_FIELDS);
    }
    const r: TaskResult = await this.crypto().restore(
      { region, ids, blobs: blobFields, writes: writeFields, files, paths: Buffer.concat(pathParts, at), xattrs, sparse: this.opts.sparse === true, owner: this.owner, abort: this.abort },
      jobs[0]?.dir,
    );
    for (const w of r.warnings) this.warn(w);
    if (r.error) {
      const { blob, file, reason, code } = r.error;
      if (file !== undefined) throw localError(jobs[file]!.dest, Object.assign(new Error(reason), code ? { code } : {}));
      if (blob !== undefined) throw blobError(blob, reason);
      throw new LocalIOError(`restore failed: ${reason}`);
    }
    if (r.aborted) throw new InterruptedError('restore interrupted; run the same command again to continue');
    let bytes = 0;
    for (let o = 0; o < blobFields.length; o += BLOB_FIELDS) bytes += blobFields[o + 2]! * blobFields[o + 5]!;
    this.result.bytesWritten += bytes;
    this.progress.bytesDone += bytes;
    for (const [i, job] of jobs.entries()) {
      job.remaining -= counts[i]!;
      if (job.remaining !== 0) continue;
      if (!finishes[i]) this.finishOnMain(job);
      this.done.add(job.ord);
      this.result.filesRestored++;
      this.progress.filesDone++;
    }
  }

  private crypto(): CryptoPool {
    this.pool ??= new CryptoPool(this.repo.keys.encrypt, this.repo.keys.id, this.repo.config.compressionLevel);
    return this.pool;
  }

  /** A file whose blobs were written by several tasks (closed by each): moved into place here. */
  private finishOnMain(job: FileJob): void {
    try {
      moveIntoPlace(tempOf(job), job.dest);
    } catch (e) {
      throw localError(job.dest, e);
    }
    this.applyMeta(job.dest, job.node);
  }

  private async restoreLink(l: LinkJob): Promise<void> {
    await rm(l.dest, { force: true }).catch(() => undefined);
    try {
      await link(l.linkTo.dest, l.dest);
    } catch (e) {
      throw localError(l.dest, e);
    }
    this.result.filesRestored++;
    this.progress.filesDone++;
  }

  private async restoreSpecial(dest: Buffer, node: TreeNode): Promise<void> {
    const exists = await lstat(dest).catch(() => undefined);
    if (exists) {
      if ((this.opts.overwrite ?? 'always') === 'never') return;
      if (node.type === 'symlink' && exists.isSymbolicLink() && (await readlink(dest, { encoding: 'buffer' })).equals(node.target!)) {
        this.applyMeta(dest, node);
        return;
      }
    }
    try {
      if (exists?.isDirectory()) removeEmptyDir(dest);
      else if (exists) await rm(dest, { force: true });
      switch (node.type) {
        case 'symlink':
          await symlink(node.target!, dest);
          break;
        case 'fifo':
          mkfifo(dest, node.mode);
          break;
        case 'chardev':
        case 'blockdev':
          if (!this.owner) {
            this.warn(`${pathText(dest)}: device files can only be restored as root; skipped`);
            return;
          }
          mknod(dest, node.mode | (node.type === 'chardev' ? 0o020000 : 0o060000), node.rdev ?? 0n);
          break;
        case 'socket':
          // Sockets belong to a running program; like restic, snap does not recreate them.
          return;
        default:
          return;
      }
    } catch (e) {
      throw localError(dest, e);
    }
    this.applyMeta(dest, node);
    this.result.otherNodes++;
  }

  private applyMeta(path: Buffer, node: TreeNode): void {
    try {
      applyMetadata(path, node, { owner: this.owner, warn: (m) => this.warn(m) });
    } catch (e) {
      this.warn(`${pathText(path)}: cannot restore metadata: ${(e as Error).message}`);
    }
  }

  /**
   * --verify: reads back every file done (restored or already right) in one more walk; a hard link
   * is right when it is its first path's file and that file is right.
   */
  private async verify(sub: Root, target: Buffer, w: Walked): Promise<void> {
    const failed = (dest: Buffer) => {
      this.result.verifyErrors++;
      this.warn(`${pathText(dest)}: verification failed: restored content differs from the snapshot`);
    };
    const bad = new BitSet();
    // Files waiting for a pending (cold) pack are checked by the run that finishes them.
    await this.walkFiles(sub, target, w, false, async (chunk) => {
      for (const job of chunk) {
        if (!this.done.has(job.ord)) continue;
        const ok = await this.matchingBlobs(job.dest, job);
        const st = await lstat(job.dest).catch(() => undefined);
        if (ok.size !== (job.node.content ?? []).length || !st || st.size !== job.node.size) {
          bad.add(job.ord);
          failed(job.dest);
        }
      }
    }, () => false);
    for (const l of w.links) {
      if (!this.done.has(l.linkTo.ord)) continue;
      const [a, b] = await Promise.all([l.dest, l.linkTo.dest].map((p) => lstat(p, { bigint: true }).catch(() => undefined)));
      if (bad.has(l.linkTo.ord) || !a || !b || a.ino !== b.ino || a.dev !== b.dev) failed(l.dest);
    }
  }
}

/**
 * Shared memory for pack reads, reused (a fresh buffer per read cost page faults and GCs) and
 * bounded: take() waits while `budget` bytes are handed out, unless none are (one oversized read
 * still goes ahead alone).
 */
class RegionPool {
  private readonly free: SharedArrayBuffer[] = [];
  /** Bytes of every region allocated and not dropped, free or in use. */
  private allocated = 0;
  private inUse = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(private readonly size: number, private readonly budget: number) {}

  async take(length: number): Promise<Uint8Array> {
    for (;;) {
      const i = this.free.findIndex((r) => r.byteLength >= length);
      if (i >= 0) return this.use(this.free.splice(i, 1)[0]!, length);
      const size = Math.max(length, this.size);
      // Free regions too small for this read make room for it.
      while (this.free.length > 0 && this.allocated + size > this.budget) this.allocated -= this.free.pop()!.byteLength;
      if (this.allocated + size <= this.budget || this.inUse === 0) {
        this.allocated += size;
        return this.use(new SharedArrayBuffer(size), length);
      }
      await new Promise<void>((wake) => this.waiters.push(wake));
    }
  }

  give(region: Uint8Array): void {
    this.inUse--;
    this.free.push(region.buffer as SharedArrayBuffer);
    this.waiters.shift()?.();
  }

  private use(sab: SharedArrayBuffer, length: number): Uint8Array {
    this.inUse++;
    return new Uint8Array(sab, 0, length);
  }
}

export async function restore(repo: Repository, opts: RestoreOptions): Promise<RestoreResult> {
  return new Restorer(repo, opts).run();
}
