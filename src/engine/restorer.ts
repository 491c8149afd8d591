// Restore: plan which blobs each file needs, read every needed pack once (one ranged read covering
// its needed blobs), write blobs into files at their offsets, then set metadata. Files are written
// under a temporary name and renamed when complete, so an interrupted restore never leaves a
// partial file under the real name; a re-run finds the temporary file and fetches only the blobs
// whose bytes are not already correct in it.
import { createHash } from 'node:crypto';
import { closeSync, constants, ftruncateSync, lstatSync, openSync, renameSync, rmSync } from 'node:fs';
import { link, lstat, mkdir, open, readlink, rm, symlink, type FileHandle } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { mkfifo, mknod } from '../native/binding.js';
import { applyMetadata, joinPath, pathText } from '../fs/metadata.js';
import { PathMatcher } from '../fs/glob.js';
import type { TreeNode } from '../model/tree.js';
import type { Repository } from '../repository/repository.js';
import type { BlobLocation } from '../repository/index.js';
import { InterruptedError, LocalIOError, SnapError } from '../errors.js';
import { CryptoPool } from '../repository/crypto-pool.js';
import { Lookahead, mapLimit } from '../util/concurrency.js';
import { lookupPath, walkTree } from './walk.js';
import type { PackType } from '../format/index.js';

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
  overwrite?: OverwriteMode;
  sparse?: boolean;
  verify?: boolean;
  dryRun?: boolean;
  /** Parallel pack reads. */
  readers?: number;
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
  /** Temporary path written to until the file is complete. */
  temp: Buffer;
  /** Blob index -> file offset. */
  offsets: number[];
  /** Blobs still to write. */
  remaining: number;
  /** File descriptor of the open temp file. */
  fd?: number;
  /** A hard link to the first file of the same inode, restored after that file. */
  linkTo?: FileJob;
}

interface Write {
  job: FileJob;
  offset: number;
}

const TEMP_SUFFIX = '.snap-restore';
/** Files opened for one worker task at most. */
const MAX_OPEN_PER_TASK = 256;

function tempName(dest: Buffer): Buffer {
  const slash = dest.lastIndexOf(0x2f);
  const dir = dest.subarray(0, slash);
  const name = dest.subarray(slash + 1);
  const h = createHash('sha256').update(name).digest('hex').slice(0, 16);
  return joinPath(dir, Buffer.from(`.${h}${TEMP_SUFFIX}`));
}

function moveIntoPlace(temp: Buffer, dest: Buffer): void {
  try {
    renameSync(temp, dest);
  } catch (e) {
    // A directory (or other non-file) in the way: replace it, as the snapshot says.
    const code = (e as { code?: string }).code;
    if (code !== 'EISDIR' && code !== 'ENOTEMPTY' && code !== 'ENOTDIR') throw e;
    rmSync(dest, { force: true, recursive: true });
    renameSync(temp, dest);
  }
}

function localError(path: Buffer, e: unknown): SnapError {
  if (e instanceof SnapError) return e;
  const code = (e as { code?: string }).code;
  const reason = code === 'ENOSPC' ? 'no space left on device' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EROFS' ? 'read-only file system' : (e as Error).message;
  return new LocalIOError(`cannot write ${pathText(path)}: ${reason}`, { cause: e });
}

export class Restorer {
  private readonly result: RestoreResult = {
    filesRestored: 0, filesSkipped: 0, dirs: 0, otherNodes: 0, bytesWritten: 0, packsRead: 0, packsNeeded: [], packsPending: [], verifyErrors: 0, warnings: 0,
  };
  private readonly progress: RestoreProgress = { filesDone: 0, filesTotal: 0, bytesDone: 0, bytesTotal: 0 };
  private readonly owner = process.getuid?.() === 0;
  private readonly include: PathMatcher;
  private readonly exclude: PathMatcher;
  private pool: CryptoPool | undefined;

  constructor(private readonly repo: Repository, private readonly opts: RestoreOptions) {
    this.include = new PathMatcher(opts.include ?? []);
    this.exclude = new PathMatcher(opts.exclude ?? []);
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
    try {
      return await this.restoreAll();
    } finally {
      await this.pool?.close();
    }
  }

  private async restoreAll(): Promise<RestoreResult> {
    const target = Buffer.from(resolvePath(this.opts.target));
    const sub = await lookupPath(this.repo, this.opts.tree, this.opts.subpath ?? '/');
    // Collect what to restore: [snapshot path, node, destination].
    const entries: { spath: string; node: TreeNode; dest: Buffer }[] = [];
    const base = sub.path.length === 1 ? 1 : sub.path.length + 1;
    const destFor = (p: Buffer) => (p.length < base ? target : joinPath(target, p.subarray(base)));
    if (sub.node.type === 'dir') {
      for await (const e of walkTree(this.repo, sub.node.subtree!, sub.path)) {
        const spath = pathText(e.path);
        if (this.selected(spath, e.node.type === 'dir')) entries.push({ spath, node: e.node, dest: destFor(e.path) });
      }
    } else {
      entries.push({ spath: pathText(sub.path), node: sub.node, dest: joinPath(target, sub.node.name) });
    }
    // With --include, drop directories that hold nothing included.
    const keptDirs = new Set<string>();
    if (!this.include.empty) {
      for (const e of entries) {
        if (e.node.type === 'dir' && !this.include.matches(e.spath)) continue;
        for (let p = e.spath; p.length > 1; p = p.slice(0, p.lastIndexOf('/')) || '/') keptDirs.add(p);
      }
    }
    const selected = this.include.empty ? entries : entries.filter((e) => e.node.type !== 'dir' || keptDirs.has(e.spath));

    const files: FileJob[] = [];
    const byInode = new Map<string, FileJob>();
    for (const e of selected) {
      if (e.node.type !== 'file') continue;
      const job: FileJob = { node: e.node, dest: e.dest, temp: tempName(e.dest), offsets: [], remaining: 0 };
      if ((e.node.nlink ?? 1) > 1) {
        const key = `${e.node.device}:${e.node.inode}`;
        const first = byInode.get(key);
        if (first) job.linkTo = first;
        else byInode.set(key, job);
      }
      files.push(job);
    }
    this.progress.filesTotal = files.length;
    this.progress.bytesTotal = files.reduce((s, f) => s + (f.linkTo ? 0 : f.node.size ?? 0), 0);

    // Which blobs each file needs, grouped by pack.
    const byPack = new Map<string, Map<string, Write[]>>();
    const need = (id: string, w: Write) => {
      const loc = this.repo.locate(id, 'data');
      let blobs = byPack.get(loc.pack);
      if (!blobs) byPack.set(loc.pack, (blobs = new Map()));
      let ws = blobs.get(id);
      if (!ws) blobs.set(id, (ws = []));
      ws.push(w);
    };

    if (!this.opts.dryRun) {
      try {
        await mkdir(target, { recursive: true });
      } catch (e) {
        throw localError(target, e);
      }
      for (const e of selected) if (e.node.type === 'dir') await this.mkdirSafe(e.dest);
    }

    const toWrite: FileJob[] = [];
    // What is already on disk, looked up ahead: one lstat round trip after another is slow.
    const primaries = files.filter((f) => !f.linkTo);
    const onDisk = new Lookahead(primaries.length, 32, (i) => (this.opts.dryRun ? Promise.resolve(undefined) : this.existing(primaries[i]!)));
    for (const [i, job] of primaries.entries()) {
      const existing = await onDisk.get(i);
      if (existing === 'skip') {
        // Content already matches; mode, owner, times and xattrs are still made to match.
        if ((this.opts.overwrite ?? 'always') !== 'never') this.applyMeta(job.dest, job.node);
        this.result.filesSkipped++;
        this.progress.filesDone++;
        continue;
      }
      const content = job.node.content ?? [];
      // A new file of at most one blob is written in one call under its own name: creating and
      // renaming a temporary file doubled the directory operations that dominate small-file
      // restores, and there is nothing partial to resume. A failed write removes it again.
      if (existing === 'absent' && content.length <= 1) job.temp = job.dest;
      let offset = 0;
      for (let i = 0; i < content.length; i++) {
        const id = content[i]!;
        const loc = this.repo.locate(id, 'data');
        job.offsets.push(offset);
        if (!(existing instanceof Set && existing.has(i))) {
          need(id, { job, offset });
          job.remaining++;
        }
        offset += loc.rawLength;
      }
      toWrite.push(job);
    }

    this.result.packsNeeded = [...byPack.keys()].map((id) => {
      const p = this.repo.index.pack(id)!;
      return { id, type: p.type, size: p.size };
    });
    if (this.opts.dryRun) {
      this.result.filesRestored = toWrite.length;
      return this.result;
    }

    // Files that need no blobs (empty, or already complete in their temp file) finish at once.
    for (const job of toWrite) if (job.remaining === 0) this.finishFile(job);

    let readable = this.opts.readablePacks ? await this.opts.readablePacks(this.result.packsNeeded) : new Set(byPack.keys());
    let pending = this.result.packsNeeded;
    for (;;) {
      const now = readable;
      const packs = [...byPack.entries()].filter(([id]) => now.has(id));
      pending = pending.filter((p) => !now.has(p.id));
      await mapLimit(packs, this.opts.readers ?? 4, async ([pack, blobs]) => {
        this.checkAbort();
        await this.restorePack(pack, blobs);
      });
      if (pending.length === 0 || !this.opts.awaitPacks) break;
      readable = await this.opts.awaitPacks(pending);
      if (readable.size === 0) break;
    }
    this.result.packsPending = pending.map((p) => p.id);

    // Hard links (to files that are complete), special files, then directory metadata deepest first.
    for (const job of files) if (job.linkTo && job.linkTo.remaining === 0) await this.restoreLink(job);
    for (const e of selected) {
      if (e.node.type !== 'file' && e.node.type !== 'dir') await this.restoreSpecial(e.dest, e.node);
    }
    const dirs = selected.filter((e) => e.node.type === 'dir').reverse();
    for (const d of dirs) {
      this.applyMeta(d.dest, d.node);
      this.result.dirs++;
    }
    if (sub.node.type === 'dir' && sub.path.length > 1 && this.include.empty && this.exclude.empty) {
      this.applyMeta(target, sub.node);
    }
    if (this.opts.verify) await this.verify(files);
    return this.result;
  }

  private async mkdirSafe(path: Buffer): Promise<void> {
    try {
      await mkdir(path, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw localError(path, e);
    }
  }

  /**
   * What is already on disk for a file: 'skip' when the final file is already right (per the
   * overwrite mode), or the set of blob indexes already correct in a leftover temp file.
   */
  private async existing(job: FileJob): Promise<'skip' | 'absent' | Set<number> | undefined> {
    const mode = this.opts.overwrite ?? 'always';
    // Synchronous: far cheaper than a thread-pool round trip for metadata that is mostly cached.
    const st = lstatSync(job.dest, { bigint: true, throwIfNoEntry: false });
    if (st) {
      if (mode === 'never') return 'skip';
      if (st.isFile() && Number(st.size) === job.node.size && st.mtimeNs === job.node.mtimeNs && (mode === 'if-changed' || (await this.matchingBlobs(job.dest, job)).size === (job.node.content ?? []).length)) {
        return 'skip';
      }
    }
    const tst = lstatSync(job.temp, { throwIfNoEntry: false });
    if (tst?.isFile()) return this.matchingBlobs(job.temp, job);
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
    const start = locs[0]![1].offset;
    const last = locs[locs.length - 1]![1];
    const bytes = await this.repo.backend.load({ type: last.packType, name: pack }, { offset: start, length: last.offset + last.length - start });
    this.result.packsRead++;
    // Batches bound the files held open at once (many small files share a pack).
    for (let from = 0; from < locs.length; ) {
      let to = from;
      for (let opens = 0; to < locs.length && (to === from || opens + blobs.get(locs[to]![0])!.length <= MAX_OPEN_PER_TASK); to++) {
        opens += blobs.get(locs[to]![0])!.length;
      }
      const batch = locs.slice(from, to);
      const regionStart = batch[0]![1].offset;
      const regionEnd = batch[batch.length - 1]![1].offset + batch[batch.length - 1]![1].length;
      // The whole read when it is one batch (transferred, not copied), else a copy of the batch's part.
      const region = from === 0 && to === locs.length ? bytes : Buffer.from(bytes.subarray(regionStart - start, regionEnd - start));
      await this.restoreBatch(region, regionStart, batch, blobs);
      from = to;
    }
    this.opts.onProgress?.({ ...this.progress });
  }

  /**
   * Opens the batch's files here (synchronous calls: per small file, FileHandle's machinery cost
   * several times the system calls); a crypto worker decrypts, verifies and writes the blobs, so
   * both cores work and the plaintext never crosses threads.
   */
  private async restoreBatch(region: Buffer, regionStart: number, locs: [string, BlobLocation][], blobs: Map<string, Write[]>): Promise<void> {
    this.checkAbort();
    const writes = locs.map(([id]) => blobs.get(id)!);
    const regionBlobs = locs.map(([id, loc], i) => ({
      id, compressed: loc.compressed, rawLength: loc.rawLength, offset: loc.offset - regionStart, length: loc.length,
      writes: writes[i]!.map((w) => ({ fd: this.handle(w.job), position: w.offset })),
    }));
    const r = await this.crypto().restore(region, regionBlobs, this.opts.sparse === true);
    if (r.error) {
      // Files written under their own name must not stay behind unfinished (an unusable blob
      // leaves them empty or short): remove them. Temporary files stay for a re-run to resume.
      for (const ws of writes) for (const w of ws) if (w.job.temp === w.job.dest && w.job.fd !== undefined) this.discard(w.job);
      const [id, loc] = locs[r.error.blob]!;
      if (r.error.write === undefined) throw this.repo.blobError(id, loc, r.error.reason);
      const job = writes[r.error.blob]![r.error.write]!.job;
      throw localError(job.dest, Object.assign(new Error(r.error.reason), { code: r.error.code }));
    }
    for (const [i, [, loc]] of locs.entries()) {
      for (const w of writes[i]!) {
        this.result.bytesWritten += loc.rawLength;
        this.progress.bytesDone += loc.rawLength;
        if (--w.job.remaining === 0) this.finishFile(w.job);
      }
    }
  }

  private crypto(): CryptoPool {
    this.pool ??= new CryptoPool(this.repo.keys.encrypt, this.repo.keys.id, this.repo.config.compressionLevel);
    return this.pool;
  }

  private handle(job: FileJob): number {
    if (job.fd === undefined) {
      try {
        // Create without truncating: a temp file left by an interrupted run keeps its good blobs.
        job.fd = openSync(job.temp, constants.O_RDWR | constants.O_CREAT, 0o600);
        // A temp file gets its full length up front (holes stay holes with --sparse); a file
        // written under its own name only when complete, so it never looks complete before.
        if (job.temp !== job.dest) ftruncateSync(job.fd, job.node.size ?? 0);
      } catch (e) {
        throw localError(job.dest, e);
      }
    }
    return job.fd;
  }

  private discard(job: FileJob): void {
    closeSync(job.fd!);
    job.fd = undefined;
    rmSync(job.dest, { force: true });
  }

  private finishFile(job: FileJob): void {
    // No fsync per file (restic does none either): the temp name keeps an unfinished file from
    // looking complete, and a re-run checks every existing file's blobs by hash.
    try {
      const fd = this.handle(job);
      if (job.temp === job.dest) ftruncateSync(fd, job.node.size ?? 0);
      closeSync(fd);
      job.fd = undefined;
      if (job.temp !== job.dest) moveIntoPlace(job.temp, job.dest);
    } catch (e) {
      throw localError(job.dest, e);
    }
    this.applyMeta(job.dest, job.node);
    this.result.filesRestored++;
    this.progress.filesDone++;
    this.opts.onProgress?.({ ...this.progress });
  }

  private async restoreLink(job: FileJob): Promise<void> {
    await rm(job.dest, { force: true }).catch(() => undefined);
    try {
      await link(job.linkTo!.dest, job.dest);
    } catch (e) {
      throw localError(job.dest, e);
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
      await rm(dest, { force: true, recursive: exists.isDirectory() });
    }
    try {
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

  private async verify(files: FileJob[]): Promise<void> {
    for (const job of files) {
      // Files waiting for a pending (cold) pack are checked by the run that finishes them.
      if (job.remaining > 0 || (job.linkTo?.remaining ?? 0) > 0) continue;
      const content = job.node.content ?? [];
      const ok = await this.matchingBlobs(job.dest, job);
      const st = await lstat(job.dest).catch(() => undefined);
      if (ok.size !== content.length || !st || st.size !== job.node.size) {
        this.result.verifyErrors++;
        this.warn(`${pathText(job.dest)}: verification failed: restored content differs from the snapshot`);
      }
    }
  }
}

export async function restore(repo: Repository, opts: RestoreOptions): Promise<RestoreResult> {
  return new Restorer(repo, opts).run();
}
