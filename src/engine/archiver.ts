// Backup: walk the given paths, store new file contents as data blobs and every directory as a tree
// blob, then write the snapshot (after the packs and index: format-spec ch. 10). A file whose size,
// mtime, ctime and inode equal those in the parent snapshot reuses the parent's content list unread.
import { lstat, readlink } from 'node:fs/promises';
import { closeSync, readSync } from 'node:fs';
import { hostname as osHostname, userInfo } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { chunkStream, createCutter, SlabPool, type Cutter, type ReadFn } from '../chunker/index.js';
import { encodeTree, sameNode } from '../format/tree.js';
import type { Snapshot, SnapshotEntry, SnapshotSummary } from '../model/snapshot.js';
import type { Tree, TreeNode } from '../model/tree.js';
import { InterruptedError, NoSuchItemError, UsageError } from '../errors.js';
import { PathMatcher } from '../fs/glob.js';
import { TagFiles } from '../fs/tag-files.js';
import { fileStat, joinPath, nodeFromStat, nodeType, openForBackup, pathText, readXattrs, type FileStat } from '../fs/metadata.js';
import { scanDirectory, type Listing } from '../fs/scan.js';
import { userName } from '../fs/users.js';
import type { Repository } from '../repository/repository.js';
import { BlobWriter } from '../repository/writer.js';
import { programVersion } from '../paths.js';
import { once } from '../util/concurrency.js';
import { DirCache, DirCacheRecorder, dirCacheFile, dirCacheOptions, dirKey } from './dir-cache.js';

/** Directory listings the walk may have waiting: bounds the memory of listing ahead. */
const PREFETCH_DIRS = 16;
/**
 * Bytes read into a chunk slab at a time; a slab holds the largest chunk plus one read. 1 MiB
 * instead of chunkStream's 4 MiB: slabs of 9 rather than 12 MiB with the default chunker, and a
 * backup's peak RSS 242-248 MiB against 251-258 MiB (4 pairs, same speed).
 */
const SLAB_READ_SIZE = 1 << 20;
/** Walked directories that may wait for their trees while the walk goes on. */
const MAX_UNSAVED_DIRS = 8;
/** Small files go to a crypto worker in batches of this many files or bytes, or one directory's. */
const SMALL_FILE_BATCH = 32;
const SMALL_FILE_BATCH_BYTES = 1 << 20;

export interface BackupProgress {
  files: number;
  dirs: number;
  bytes: number;
  bytesAdded: number;
  errors: number;
  current?: string;
}

export interface BackupOptions {
  paths: string[];
  excludes?: string[];
  /** Like excludes, letters matching either case (--iexclude). */
  iexcludes?: string[];
  /** Files (anything but a directory) larger than this many bytes found in a directory are left out. */
  excludeLargerThan?: number;
  /** Tags (NAME or NAME:HEADER) marking directories to leave out whole (see TagFiles). */
  excludeIfPresent?: string[];
  oneFileSystem?: boolean;
  tags?: string[];
  host?: string;
  time?: Date;
  /** Snapshot to compare against: an ID, null for none, undefined to pick the latest of the same host and paths. */
  parent?: string | null;
  /** Back up a stream (e.g. process.stdin) as one file instead of paths. */
  stdin?: { read: ReadFn; filename: string };
  dryRun?: boolean;
  /** Save no snapshot when the tree is the parent's (restic's --skip-if-unchanged): nothing changed. */
  skipIfUnchanged?: boolean;
  /**
   * Leave a file's inode number and ctime out of the comparison with the parent snapshot, as
   * restic's --ignore-inode does: on file systems whose inode numbers change between mounts (some
   * network and FUSE file systems), every file would be read again.
   */
  ignoreInode?: boolean;
  /** Leave a file's ctime out of the comparison with the parent snapshot (restic's --ignore-ctime). */
  ignoreCtime?: boolean;
  /**
   * Directory of the directory cache (format-spec ch. 16): unchanged directories keep the parent
   * snapshot's tree IDs without reading its trees. Undefined: no cache.
   */
  dirCacheDir?: string;
  signal?: AbortSignal;
  onProgress?: (p: BackupProgress) => void;
  onWarning?: (message: string) => void;
  /** Called with each directory tree as it is saved (the catalog takes them from here). */
  onTree?: (id: string, nodes: readonly TreeNode[]) => void;
}

export interface BackupResult {
  /** Undefined in a dry run, or when skipped (unchanged). */
  id?: string;
  /** No snapshot was saved: its tree is the parent's and skipIfUnchanged was set. */
  skipped?: boolean;
  snapshot: Snapshot;
  parent?: string;
  /** True when some files could not be read (exit code 3). */
  incomplete: boolean;
}

/** The summary fields the walk counts (the writer counts the rest). */
type Counters = Pick<SnapshotSummary, 'files_new' | 'files_changed' | 'files_unchanged' | 'dirs_new' | 'dirs_changed' | 'dirs_unchanged' | 'total_files_processed' | 'total_bytes_processed' | 'errors'>;

/** A directory on the way from / to the backed-up paths: only its listed children are backed up. */
interface PathTrie {
  children: Map<string, PathTrie>;
  /** This path itself was named on the command line: back up all of it. */
  whole: boolean;
}

/**
 * The parent node of each name, for names asked in ascending byte order: tree nodes are stored
 * sorted by name bytes, so one merge pass replaces a map keyed by converted names.
 */
function sortedLookup(tree: Tree | undefined): (name: Buffer) => TreeNode | undefined {
  const nodes = tree?.nodes ?? [];
  let i = 0;
  return (name) => {
    while (i < nodes.length) {
      const c = Buffer.compare(nodes[i]!.name, name);
      if (c === 0) return nodes[i];
      if (c > 0) return undefined;
      i++;
    }
    return undefined;
  };
}

/** What was started ahead under `key` (and is no longer kept there), else what `start` starts now. */
function takeAhead<T>(ahead: Map<string, Promise<T>>, key: string, start: () => Promise<T>): Promise<T> {
  const p = ahead.get(key);
  if (!p) return start();
  ahead.delete(key);
  return p;
}

/** The parent snapshot's node named `name` in a tree (nodes are sorted by name bytes). */
function findNode(tree: Tree, name: Buffer): TreeNode | undefined {
  let lo = 0;
  let hi = tree.nodes.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = Buffer.compare(tree.nodes[mid]!.name, name);
    if (c === 0) return tree.nodes[mid];
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return undefined;
}

/**
 * A directory's tree in the parent snapshot, loaded when first asked for: a directory found in
 * the directory cache never needs it.
 */
type ParentDir = () => Promise<{ id: string; tree: Tree } | undefined>;

const NO_PARENT: ParentDir = () => Promise.resolve(undefined);

/** A listing entry that will be backed up, with its parent-snapshot node once that is known. */
interface WalkEntry {
  /** Its index in the directory's listing. */
  index: number;
  name: Buffer;
  path: Buffer;
  stat: FileStat;
  prev?: TreeNode | undefined;
}

export class Archiver {
  private readonly cutter: Cutter;
  private readonly writer: BlobWriter;
  private readonly excludes: PathMatcher;
  private readonly tagFiles: TagFiles;
  private readonly counters: Counters = {
    files_new: 0, files_changed: 0, files_unchanged: 0, dirs_new: 0, dirs_changed: 0, dirs_unchanged: 0,
    total_files_processed: 0, total_bytes_processed: 0, errors: 0,
  };
  private readonly progress: BackupProgress = { files: 0, dirs: 0, bytes: 0, bytesAdded: 0, errors: 0 };
  private lastProgress = 0;
  private rootDevices = new Set<bigint>();
  /** Walked directories whose trees are not saved yet, oldest first (see walkDir). */
  private readonly unsaved: Promise<string>[] = [];
  /** Small files waiting to go to a crypto worker together (see FileBatch). */
  private smallFiles: { files: { path: Buffer; node: TreeNode; changed: boolean }[]; bytes: number } | undefined;
  /**
   * Node updates the directory being walked waits for before its tree is saved: files' blob IDs
   * from the crypto workers, subdirectories' tree IDs. Each walk of a directory has its own list.
   */
  private contentPending: Promise<unknown>[] = [];
  /** Nodes of files a worker could not read: left out of their tree. */
  private readonly failedNodes = new WeakSet<TreeNode>();
  /** The chunk slabs shared by every file of the run. */
  private slabs: SlabPool | undefined;
  /** Directory listings started ahead of the walk, by path (latin1). */
  private readonly prefetched = new Map<string, Promise<Listing>>();
  /** Parent-snapshot trees of those directories, loading ahead, by tree ID. */
  private readonly prefetchedTrees = new Map<string, Promise<Tree>>();
  /** The directory cache of the parent snapshot, when there is a valid one. */
  private dirCache: DirCache | undefined;
  /** This backup's directory keys and tree IDs, for the next backup's cache. */
  private dirRecorder: DirCacheRecorder | undefined;
  /**
   * Directory scans size each entry's xattr list (on the libuv thread): without a parent snapshot
   * every entry's xattrs are read, and most entries have none.
   */
  private scanXattrs = false;

  constructor(private readonly repo: Repository, private readonly opts: BackupOptions) {
    this.cutter = createCutter(repo.config.chunker);
    this.writer = new BlobWriter(repo, { dryRun: opts.dryRun === true });
    this.excludes = new PathMatcher(opts.excludes ?? [], opts.iexcludes);
    this.tagFiles = new TagFiles(opts.excludeIfPresent ?? []);
  }

  async run(): Promise<BackupResult> {
    const start = new Date();
    try {
      const { paths, existing, parent, hostname } = await this.prepare();
      // Without a parent snapshot every file is read and sealed: the workers start while the
      // first directories are listed. (An unchanged re-backup may never need them.)
      if (!parent) {
        this.writer.startWorkers();
        this.scanXattrs = true;
      }
      const cache = await this.openDirCache(hostname, paths, parent?.id);
      let rootId: string;
      if (this.opts.stdin) rootId = await this.stdinTree(this.opts.stdin);
      else {
        const root: ParentDir = parent ? once(async () => ({ id: parent.snapshot.tree, tree: await this.repo.loadTree(parent.snapshot.tree) })) : NO_PARENT;
        rootId = await this.saveTrie(Buffer.from('/'), buildTrie(existing), root);
      }
      this.checkAbort();
      await this.writer.flush();
      const snapshot = this.snapshotDoc(start, rootId, paths, parent?.id);
      // Unchanged, and the parent's directory cache still describes it.
      const skipped = this.opts.skipIfUnchanged === true && parent?.snapshot.tree === rootId && this.counters.errors === 0;
      const id = this.opts.dryRun || skipped ? undefined : await this.repo.saveMetadata('snapshot', snapshot);
      if (id && cache && this.dirRecorder) {
        await this.dirRecorder.write(cache.file, id, cache.options, this.repo.index.repairMarks).catch((e: Error) => this.opts.onWarning?.(`the directory cache was not saved (${e.message}); the next backup compares with the snapshot's trees instead`));
      }
      if (id) await this.repo.saveIndexCache();
      const result: BackupResult = { snapshot, incomplete: this.counters.errors > 0 };
      if (id) result.id = id;
      if (skipped) result.skipped = true;
      if (parent) result.parent = parent.id;
      return result;
    } catch (e) {
      // On Ctrl-C, store and index what was read so far: no snapshot, but the next backup finds
      // those blobs and does not read them into the repository again.
      if (e instanceof InterruptedError && !this.opts.dryRun) await this.writer.flush().catch(() => undefined);
      throw e;
    } finally {
      await this.writer.close();
    }
  }

  /** Loads the parent's directory cache (format-spec ch. 16) and starts recording this backup's. */
  private async openDirCache(hostname: string, paths: string[], parentId: string | undefined): Promise<{ file: string; options: Buffer } | undefined> {
    if (this.opts.dirCacheDir === undefined || this.opts.stdin || this.opts.dryRun) return undefined;
    const file = dirCacheFile(this.opts.dirCacheDir, hostname, paths);
    const options = dirCacheOptions(this.opts);
    if (parentId) this.dirCache = await DirCache.load(file, parentId, options, this.repo.index.repairMarks);
    this.dirRecorder = new DirCacheRecorder();
    return { file, options };
  }

  /**
   * The paths as asked (recorded in the snapshot, and what its parent is looked up by), those of
   * them that exist (walked), and the parent snapshot. A path that does not exist is skipped with
   * a warning, as restic does: the others are still backed up, and the snapshot is
   * incomplete (exit code 3). It stays among the recorded paths, so that the next backup, once
   * it is back, finds this snapshot as its parent. Only when none exists does the backup fail.
   */
  private async prepare(): Promise<{ paths: string[]; existing: string[]; parent?: SnapshotEntry; hostname: string }> {
    let paths: string[];
    let existing: string[];
    if (this.opts.stdin) {
      if (!this.opts.stdin.filename || this.opts.stdin.filename.includes('/')) throw new UsageError('--stdin-filename must be a plain file name');
      paths = existing = ['/' + this.opts.stdin.filename];
    } else {
      if (this.opts.paths.length === 0) throw new UsageError('nothing to back up: give at least one path');
      paths = [...new Set(this.opts.paths.map((p) => resolvePath(p)))].sort();
      const missing: string[] = [];
      existing = [];
      for (const p of paths) {
        try {
          const st = await lstat(p, { bigint: true });
          this.rootDevices.add(st.dev);
          existing.push(p);
        } catch (e) {
          const code = (e as { code?: string }).code;
          missing.push(`backup path ${p}: ${code === 'ENOENT' ? 'does not exist' : (e as Error).message}`);
        }
      }
      if (existing.length === 0) throw new NoSuchItemError(missing.join('; '));
      for (const m of missing) this.skip(`${m}; skipped`);
    }
    const hostname = this.opts.host ?? osHostname();
    let parent: SnapshotEntry | undefined;
    if (typeof this.opts.parent === 'string') parent = await this.repo.findSnapshot(this.opts.parent);
    else if (this.opts.parent === undefined) {
      const key = paths.join('\0');
      const all = await this.repo.listSnapshots();
      parent = all.filter((e) => e.snapshot.hostname === hostname && e.snapshot.paths.join('\0') === key).pop();
    }
    return parent ? { paths, existing, parent, hostname } : { paths, existing, hostname };
  }

  private snapshotDoc(start: Date, tree: string, paths: string[], parent: string | undefined): Snapshot {
    const end = new Date();
    const uid = process.getuid?.() ?? 0;
    const st = this.writer.stats;
    const summary: SnapshotSummary = {
      backup_start: start.toISOString(),
      backup_end: end.toISOString(),
      duration_ms: end.getTime() - start.getTime(),
      ...this.counters,
      data_blobs: st.dataBlobs,
      tree_blobs: st.treeBlobs,
      data_added: st.dataAdded,
      data_added_packed: st.dataAddedPacked,
    };
    const { files_new, files_changed, files_unchanged, dirs_new, dirs_changed, dirs_unchanged, data_blobs, tree_blobs, data_added, data_added_packed, total_files_processed, total_bytes_processed, errors } = summary;
    const snap: Snapshot = {
      version: 1,
      time: (this.opts.time ?? start).toISOString(),
      tree,
      paths,
      hostname: this.opts.host ?? osHostname(),
      username: safeUsername(uid),
      uid,
      gid: process.getgid?.() ?? 0,
      tags: [...new Set(this.opts.tags ?? [])].sort(),
      excludes: [...(this.opts.excludes ?? [])],
      program_version: programVersion(),
      // Field order as in format-spec ch. 8.
      summary: {
        backup_start: summary.backup_start, backup_end: summary.backup_end, duration_ms: summary.duration_ms,
        files_new, files_changed, files_unchanged, dirs_new, dirs_changed, dirs_unchanged, data_blobs, tree_blobs,
        data_added, data_added_packed, total_files_processed, total_bytes_processed, errors,
      },
    };
    if (parent) snap.parent = parent;
    return snap;
  }

  private checkAbort(): void {
    if (this.opts.signal?.aborted) throw new InterruptedError('backup interrupted: no snapshot was written; the data stored so far is kept and the next backup reuses it');
  }

  private warn(path: Buffer | string, e: unknown): void {
    // Interrupted: the files cut short are not unreadable, and no snapshot is written. Reported
    // one by one, a Ctrl-C in a large directory printed a warning for each file left in it.
    if (this.opts.signal?.aborted) return;
    const p = typeof path === 'string' ? path : pathText(path);
    const code = (e as { code?: string }).code;
    this.skip(`${p}: ${code === 'ENOENT' ? 'vanished during backup' : (e as Error).message}`);
  }

  /** Something left out of the snapshot: a warning, and the snapshot is incomplete (exit code 3). */
  private skip(message: string): void {
    this.counters.errors++;
    this.progress.errors++;
    this.opts.onWarning?.(message);
  }

  private report(current?: Buffer): void {
    if (!this.opts.onProgress) return;
    const now = Date.now();
    if (now - this.lastProgress < 100) return;
    this.lastProgress = now;
    this.progress.bytesAdded = this.writer.stats.dataAdded;
    if (current) this.progress.current = pathText(current);
    this.opts.onProgress({ ...this.progress });
  }

  // ---- trees -------------------------------------------------------------------------------

  private async saveTree(nodes: TreeNode[]): Promise<string> {
    const { id } = await this.writer.save('tree', encodeTree({ nodes }));
    this.opts.onTree?.(id, nodes);
    return id;
  }

  /**
   * Runs a directory's walk with a list of its own for the node updates it leaves pending (see
   * contentPending), and hands the small files it queued to the workers; returns that list.
   */
  private async walking(walk: () => Promise<void>): Promise<Promise<unknown>[]> {
    const outer = this.contentPending;
    const mine: Promise<unknown>[] = (this.contentPending = []);
    try {
      await walk();
      await this.saveSmallFiles();
    } finally {
      this.contentPending = outer;
    }
    return mine;
  }

  /** A directory's nodes once its pending updates are in, without the files that could not be read. */
  private async completed(nodes: TreeNode[], pending: Promise<unknown>[]): Promise<TreeNode[]> {
    // A file may have failed in a batch another directory's list waited for (see saveSmallFiles).
    await Promise.all(pending);
    return nodes.filter((n) => !this.failedNodes.has(n));
  }

  /**
   * The root and the directories on the way to the backed-up paths. Their parent-snapshot trees
   * are read only where needed: a directory cache can make the whole walk do without them.
   */
  private async saveTrie(path: Buffer, trie: PathTrie, parent: ParentDir): Promise<string> {
    if (trie.whole) return this.saveDir(path, parent);
    const nodes: TreeNode[] = [];
    const pending = await this.walking(async () => {
      for (const [nameKey, child] of trie.children) {
        const name = Buffer.from(nameKey, 'latin1');
        const childPath = joinPath(path, name);
        let st: FileStat;
        try {
          st = fileStat(await lstat(childPath, { bigint: true }));
        } catch (e) {
          // Gone since prepare() saw it.
          if ((e as { code?: string }).code === undefined) throw e;
          this.warn(childPath, e);
          continue;
        }
        const type = nodeType(st);
        if (child.whole && type !== 'dir') {
          const p = await parent();
          const node = await this.entryNode(childPath, name, st, p && findNode(p.tree, name));
          if (node) nodes.push(node);
          continue;
        }
        if (type !== 'dir') throw new UsageError(`${pathText(childPath)} is not a directory`);
        const node = nodeFromStat(name, st, 'dir');
        node.xattrs = this.xattrs(childPath);
        const below = this.childParent(parent, name);
        node.subtree = child.whole ? await this.saveDir(childPath, below) : await this.saveTrie(childPath, child, below);
        nodes.push(node);
      }
    });
    return this.saveTree(await this.completed(nodes, pending));
  }

  private xattrs(path: Buffer): TreeNode['xattrs'] {
    try {
      return readXattrs(path);
    } catch (e) {
      this.opts.onWarning?.(`${pathText(path)}: cannot read extended attributes: ${(e as Error).message}`);
      return [];
    }
  }

  /** A whole directory, recursively. */
  private async saveDir(path: Buffer, parent: ParentDir): Promise<string> {
    return (await this.walkDir(path, parent)).id;
  }

  /** True when entry i of the listing of `dir` is left out by --exclude, --iexclude or --exclude-larger-than. */
  private excluded(dir: Buffer, listing: Listing, i: number): boolean {
    const max = this.opts.excludeLargerThan;
    if (max !== undefined && !listing.isDir(i) && listing.size(i) > max) return true;
    return !this.excludes.empty && this.excludes.matches(pathText(joinPath(dir, listing.name(i))));
  }

  /**
   * Walks a whole directory, recursively: returns once its entries are queued, with its tree ID to
   * come once the workers have sealed its files. The walk goes on meanwhile: waiting for them at
   * the end of every directory let the workers' queue run dry while this thread went on to the
   * next (in a first backup of the bench corpus, the walk waited 2.7 s in all).
   */
  private async walkDir(path: Buffer, parent: ParentDir): Promise<{ id: Promise<string> }> {
    this.checkAbort();
    // A few directories at most wait for their trees: each holds its nodes until then. The oldest
    // came last in its walk, so its subdirectories are walked already and it needs only the workers.
    while (this.unsaved.length >= MAX_UNSAVED_DIRS) await this.unsaved.shift()!.catch(() => undefined);
    const errorsBefore = this.counters.errors;
    let listing: Listing | undefined;
    try {
      listing = await this.listing(path);
    } catch (e) {
      this.warn(path, e);
    }
    // Indexes of the entries to back up.
    const kept: number[] = [];
    for (let i = 0; i < (listing?.count ?? 0); i++) {
      if (this.excluded(path, listing!, i)) continue;
      // A directory marked by a tag file is left out whole, the tag file with it.
      if (!this.tagFiles.empty && listing!.isDir(i) && this.tagFiles.marks(joinPath(path, listing!.name(i)))) continue;
      kept.push(i);
    }
    // With a directory cache, subdirectories come first: their tree IDs are part of this
    // directory's key, and a hit needs nothing else (not even the files' entries as objects). A
    // listing with an entry that cannot be lstat'ed is never recorded, so never a hit.
    let subtrees: Map<number, string> | undefined;
    let key: Buffer | undefined;
    if (this.dirCache && listing && !listing.hasErrors) {
      const dirs = kept.filter((i) => listing!.isDir(i)).map((i) => {
        const { name, stat } = listing!.entry(i);
        return { index: i, name, path: joinPath(path, name), stat: stat! };
      });
      subtrees = new Map();
      let ahead = 0;
      for (const [k, d] of dirs.entries()) {
        // Listings are topped up as the walk goes: where most directories are found in the cache,
        // the walk is only as fast as the listings arrive. Never behind the walk: a listing started
        // for a directory already done would stay unused.
        for (ahead = Math.max(ahead, k); ahead < dirs.length; ahead++) {
          if (this.descends(dirs[ahead]!.stat) && !this.prefetch(dirs[ahead]!.path, undefined, this.scanXattrs)) break;
        }
        subtrees.set(d.index, await (await this.subdirectory(d.path, d.stat, this.childParent(parent, d.name))).id);
      }
      key = dirKey(path, listing.digest, [...subtrees.values()]);
      const cached = this.dirCache.get(key);
      if (cached !== undefined && this.counters.errors === errorsBefore && this.writer.known(cached)) {
        this.dirRecorder?.record(key, cached);
        this.countUnchanged(listing, kept, path);
        return { id: Promise.resolve(cached) };
      }
    }
    const entries: WalkEntry[] = [];
    for (const i of kept) {
      const e = listing!.entry(i);
      const childPath = joinPath(path, e.name);
      if (e.stat) entries.push({ index: i, name: e.name, path: childPath, stat: e.stat });
      else this.warn(childPath, e.error);
    }
    const p = await parent();
    const parentTree = p?.tree;
    const prevOf = sortedLookup(parentTree);
    for (const e of entries) e.prev = prevOf(e.name);
    // Subdirectories are listed on libuv threads before the walk reaches them.
    // A directory new since the parent snapshot has its xattrs read: its scan sizes them.
    if (!subtrees) for (const e of entries) if (nodeType(e.stat) === 'dir' && this.descends(e.stat)) this.prefetch(e.path, e.prev, this.scanXattrs || e.prev === undefined);
    // File data is read with synchronous calls: FileHandle open/read/close cost more main-thread
    // time than the reading itself. The seal workers keep compressing meanwhile.
    const all: TreeNode[] = [];
    const pending = await this.walking(async () => {
      for (const e of entries) {
        const node = await this.entryNode(e.path, e.name, e.stat, e.prev, subtrees?.get(e.index), listing!.hasNoXattrs(e.index));
        if (node) all.push(node);
      }
    });
    const id = (async () => {
      const nodes = await this.completed(all, pending);
      const id = this.sameAsParent(nodes, parentTree, p?.id) ? p!.id : await this.saveTree(nodes);
      this.progress.dirs++;
      if (p === undefined) this.counters.dirs_new++;
      else if (p.id === id) this.counters.dirs_unchanged++;
      else this.counters.dirs_changed++;
      // A directory with an unreadable entry (or one below) is not recorded: the next backup tries
      // again. (Errors counted since this walk began may be other directories': that only leaves
      // this one out too.)
      if (this.dirRecorder && listing && this.counters.errors === errorsBefore) {
        key ??= dirKey(path, listing.digest, nodes.filter((n) => n.type === 'dir').map((n) => n.subtree!));
        this.dirRecorder.record(key, id);
      }
      return id;
    })();
    id.catch(() => undefined); // awaited by the directory above, or the walk failed
    this.unsaved.push(id);
    return { id };
  }

  /** Counts a directory found in the directory cache, and its files, as unchanged. */
  private countUnchanged(listing: Listing, kept: number[], path: Buffer): void {
    for (const i of kept) if (listing.isFile(i)) this.countUnchangedFile(listing.size(i));
    this.counters.dirs_unchanged++;
    this.progress.dirs++;
    this.report(path);
  }

  /** A subdirectory, walked (its tree ID to come), or empty where --one-file-system stops. */
  private async subdirectory(path: Buffer, st: FileStat, parent: ParentDir): Promise<{ id: Promise<string> }> {
    return this.descends(st) ? this.walkDir(path, parent) : { id: this.saveTree([]) };
  }

  /** The parent-snapshot directory of a node already looked up (and possibly loading ahead). */
  private parentOf(prev: TreeNode | undefined): ParentDir {
    if (prev?.type !== 'dir' || !prev.subtree) return NO_PARENT;
    const id = prev.subtree;
    return once(async () => ({ id, tree: await takeAhead(this.prefetchedTrees, id, () => this.repo.loadTree(id)) }));
  }

  /** The parent-snapshot directory of `name` under `parent`, looked up only when asked for. */
  private childParent(parent: ParentDir, name: Buffer): ParentDir {
    return once(async () => {
      const p = await parent();
      return p ? this.parentOf(findNode(p.tree, name))() : undefined;
    });
  }

  /** False for a directory on another file system under --one-file-system (stored empty). */
  private descends(st: FileStat): boolean {
    return !this.opts.oneFileSystem || this.rootDevices.has(st.dev);
  }

  /**
   * Starts listing a directory the walk will reach soon (with `xattrs`, sizing its entries' xattr
   * lists), and loading its parent-snapshot tree (at most PREFETCH_DIRS of each wait): the walk
   * then rarely waits for either.
   */
  private prefetch(path: Buffer, prev: TreeNode | undefined, xattrs: boolean): boolean {
    if (this.prefetched.size >= PREFETCH_DIRS) return false;
    const listing = scanDirectory(path, xattrs);
    listing.catch(() => undefined); // reported when the walk gets there
    this.prefetched.set(path.toString('latin1'), listing);
    if (prev?.type === 'dir' && prev.subtree && !this.prefetchedTrees.has(prev.subtree)) {
      const tree = this.repo.loadTree(prev.subtree);
      tree.catch(() => undefined);
      this.prefetchedTrees.set(prev.subtree, tree);
    }
    return true;
  }

  private listing(path: Buffer): Promise<Listing> {
    return takeAhead(this.prefetched, path.toString('latin1'), () => scanDirectory(path, this.scanXattrs));
  }

  /** True when a directory's nodes encode exactly as its parent tree's: that tree ID is reused unhashed. */
  private sameAsParent(nodes: TreeNode[], parentTree: Tree | undefined, parentId: string | undefined): boolean {
    return (
      parentTree !== undefined && parentId !== undefined && nodes.length === parentTree.nodes.length &&
      nodes.every((n, i) => sameNode(n, parentTree.nodes[i]!)) &&
      this.writer.known(parentId)
    );
  }

  /**
   * Extended attributes: none when the directory scan found none (`noXattrs`), else the parent
   * snapshot's when the inode and its ctime are unchanged: setting or removing an xattr updates
   * ctime, so they cannot differ (and an unchanged tree then costs one lstat per file, no
   * listxattr).
   */
  private nodeXattrs(path: Buffer, st: FileStat, type: string, prev: TreeNode | undefined, noXattrs: boolean): TreeNode['xattrs'] {
    if (noXattrs) return [];
    if (prev?.type === type && prev.ctimeNs === st.ctimeNs && prev.inode === st.ino && prev.device === st.dev) return prev.xattrs ?? [];
    return this.xattrs(path);
  }

  /**
   * The node for one directory entry, or undefined when it is skipped (unreadable, unsupported).
   * A subdirectory's tree ID may be known already (`subtree`); `noXattrs`: its directory's scan
   * found no xattrs.
   */
  private async entryNode(path: Buffer, name: Buffer, st: FileStat, prev: TreeNode | undefined, subtree?: string, noXattrs = false): Promise<TreeNode | undefined> {
    const type = nodeType(st);
    if (!type) return undefined;
    const node = nodeFromStat(name, st, type);
    node.xattrs = this.nodeXattrs(path, st, type, prev, noXattrs);
    try {
      switch (type) {
        case 'file':
          await this.fileContent(path, node, prev);
          break;
        case 'dir':
          if (subtree !== undefined) node.subtree = subtree;
          else {
            const { id } = await this.subdirectory(path, st, this.parentOf(prev));
            const set = id.then((s) => (node.subtree = s));
            set.catch(() => undefined); // awaited by this directory's tree
            this.contentPending.push(set);
          }
          break;
        case 'symlink':
          node.target = await readlink(path, { encoding: 'buffer' });
          break;
        default:
          break;
      }
    } catch (e) {
      if (e instanceof InterruptedError) throw e;
      if ((e as { code?: string }).code === undefined) throw e;
      this.warn(path, e);
      return undefined;
    }
    return node;
  }

  /**
   * A file whose size, mtime, ctime and inode equal the parent snapshot's keeps its content unread
   * (without the inode, or the ctime, when the options say so).
   */
  private unchanged(size: number, mtimeNs: bigint, ctimeNs: bigint, inode: bigint, prev: TreeNode | undefined): prev is TreeNode & { content: string[] } {
    const { ignoreInode, ignoreCtime } = this.opts;
    return (
      prev?.type === 'file' && prev.content !== undefined && prev.size === size && prev.mtimeNs === mtimeNs &&
      (ignoreCtime || ignoreInode || prev.ctimeNs === ctimeNs) && (ignoreInode || prev.inode === inode) && prev.content.every((id) => this.writer.known(id))
    );
  }

  /** Counts a file whose content is kept from the parent snapshot, unread. */
  private countUnchangedFile(size: number): void {
    this.counters.total_files_processed++;
    this.counters.files_unchanged++;
    this.counters.total_bytes_processed += size;
    this.progress.files++;
    this.progress.bytes += size;
  }

  private async fileContent(path: Buffer, node: TreeNode, prev: TreeNode | undefined): Promise<void> {
    const size = node.size ?? 0;
    if (this.unchanged(size, node.mtimeNs, node.ctimeNs, node.inode, prev)) {
      node.content = prev.content;
      this.countUnchangedFile(size);
      this.report(path);
      return;
    }
    this.counters.total_files_processed++;
    this.progress.files++;
    // A file no larger than the minimum chunk is one blob: a crypto worker reads it too, so small
    // files are read in parallel while this thread walks on.
    if (size > 0 && size <= this.cutter.params.min && this.writer.parallel) {
      const b = (this.smallFiles ??= { files: [], bytes: 0 });
      b.files.push({ path, node, changed: prev?.type === 'file' });
      b.bytes += size;
      if (b.files.length >= SMALL_FILE_BATCH || b.bytes >= SMALL_FILE_BATCH_BYTES) await this.saveSmallFiles();
      return;
    }
    this.contentPending.push((await this.chunkFile(path, node)).pending);
    if (prev?.type === 'file') this.counters.files_changed++;
    else this.counters.files_new++;
  }

  /**
   * Reads a file through the chunker; returns once it is read, with the node's content `pending`
   * until the workers have the IDs (awaited by the directory's saveTree; wrapped, so that
   * awaiting this call does not wait for them). `ownBuffers`: chunks go
   * in buffers of their own rather than the walk's slabs, for a caller running beside the walk
   * (which chunks one file at a time from them).
   */
  private async chunkFile(path: Buffer, node: TreeNode, ownBuffers = false): Promise<{ pending: Promise<unknown> }> {
    let chunked: { ids: Promise<string>[]; bytes: number };
    const fd = openForBackup(path);
    try {
      chunked = await this.chunkInto((buf, off, len) => Promise.resolve(readSync(fd, buf, off, len, null)), path, ownBuffers);
    } finally {
      closeSync(fd);
    }
    // What was read is what the snapshot holds, even if the file changed size after lstat.
    node.size = chunked.bytes;
    const pending = Promise.all(chunked.ids).then((content) => (node.content = content));
    // A failure before saveTree awaits it must not crash as "unhandled".
    pending.catch(() => undefined);
    return { pending };
  }

  /**
   * A small file that grew past the minimum chunk size after it was listed (a log being written)
   * is read again as a large file: left out with a warning, as it was, a busy server's logs made
   * backups incomplete (exit code 3) for files that were perfectly readable.
   */
  private async grownFile(path: Buffer, node: TreeNode, changed: boolean): Promise<void> {
    try {
      await (await this.chunkFile(path, node, true)).pending;
    } catch (e) {
      if (e instanceof InterruptedError || (e as { code?: unknown }).code === undefined) throw e;
      this.warn(path, e);
      this.failedNodes.add(node);
      return;
    }
    if (changed) this.counters.files_changed++;
    else this.counters.files_new++;
  }

  /** Sends the small files queued by fileContent to a crypto worker, one batch. */
  private async saveSmallFiles(): Promise<void> {
    const b = this.smallFiles;
    if (!b) return;
    this.smallFiles = undefined;
    const { results } = await this.writer.saveFiles(b.files.map((f) => f.path), b.bytes, this.cutter.params.min);
    const pending = results.then(async (rs) => {
      const grown: Promise<void>[] = [];
      rs.forEach((r, i) => {
        const { path, node, changed } = b.files[i]!;
        if ('message' in r) {
          if (r.code === 'EFBIG') grown.push(this.grownFile(path, node, changed));
          else {
            this.warn(path, r);
            this.failedNodes.add(node);
          }
          return;
        }
        node.content = [r.id];
        node.size = r.size;
        this.counters.total_bytes_processed += r.size;
        this.progress.bytes += r.size;
        if (changed) this.counters.files_changed++;
        else this.counters.files_new++;
      });
      await Promise.all(grown);
    });
    pending.catch(() => undefined);
    // The batch may also hold files of the directories above this one: they wait for this one's
    // tree, so for the batch too.
    this.contentPending.push(pending);
  }

  /** Chunks a stream into data blobs; returns their IDs, still being computed by the workers. */
  private async chunkInto(read: ReadFn, path?: Buffer, ownBuffers = false): Promise<{ ids: Promise<string>[]; bytes: number }> {
    const ids: Promise<string>[] = [];
    let bytes = 0;
    // The walk chunks files one at a time, so one pool serves them all. Three slabs: the one being
    // filled, and the chunks of up to two more still with the workers or being written.
    this.slabs ??= new SlabPool(this.cutter.params.max + SLAB_READ_SIZE, 3);
    const opts = { readSize: SLAB_READ_SIZE, ...(ownBuffers ? {} : { slabs: this.slabs }), ...(this.opts.signal ? { signal: this.opts.signal } : {}) };
    for await (const chunk of chunkStream(read, this.cutter, opts)) {
      const length = chunk.data.length;
      let id: Promise<string>;
      try {
        this.checkAbort();
        // A worker seals the chunk where it is, in the slab, and the pack takes it from there: the
        // writer releases it when it is done with it.
        ({ id } = await this.writer.saveData(chunk.data, chunk.release));
      } catch (e) {
        chunk.release();
        throw e;
      }
      ids.push(id);
      bytes += length;
      this.counters.total_bytes_processed += length;
      this.progress.bytes += length;
      this.report(path);
    }
    return { ids, bytes };
  }

  private async stdinTree(stdin: { read: ReadFn; filename: string }): Promise<string> {
    this.counters.total_files_processed++;
    this.counters.files_new++;
    const { ids, bytes } = await this.chunkInto(stdin.read);
    const content = await Promise.all(ids);
    const now = BigInt(Date.now()) * 1_000_000n;
    const uid = process.getuid?.() ?? 0;
    const gid = process.getgid?.() ?? 0;
    const node: TreeNode = { name: Buffer.from(stdin.filename), type: 'file', mode: 0o644, uid, gid, mtimeNs: now, ctimeNs: now, inode: 0n, device: 0n, size: bytes, nlink: 1, content };
    const user = userName(uid);
    if (user) node.user = user;
    return this.saveTree([node]);
  }
}

function safeUsername(uid: number): string {
  try {
    return userInfo().username;
  } catch {
    return userName(uid) ?? String(uid);
  }
}

function buildTrie(paths: string[]): PathTrie {
  const root: PathTrie = { children: new Map(), whole: false };
  for (const p of paths) {
    if (p === '/') {
      root.whole = true;
      continue;
    }
    let t = root;
    for (const part of p.split('/').filter(Boolean)) {
      const key = Buffer.from(part, 'utf8').toString('latin1');
      let c = t.children.get(key);
      if (!c) t.children.set(key, (c = { children: new Map(), whole: false }));
      t = c;
    }
    t.whole = true;
  }
  return root;
}

export async function backup(repo: Repository, opts: BackupOptions): Promise<BackupResult> {
  return new Archiver(repo, opts).run();
}
