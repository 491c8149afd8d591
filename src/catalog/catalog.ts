// The local metadata catalog: a SQLite cache of every snapshot's file versions, built from
// snapshots, the index and tree blobs only (meta packs), so find/versions/calendar never need a data
// pack. It is never the source of truth: anything it cannot trust is deleted and rebuilt.
import { hash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { InterruptedError, LocalIOError } from '../errors.js';
import { mkdirsSync } from '../fs/mkdirs.js';
import type { Snapshot, SnapshotEntry } from '../model/snapshot.js';
import { NODE_TYPES, type NodeType, type TreeNode, utf8Text } from '../model/tree.js';
import type { Repository } from '../repository/repository.js';
import { mapLimit } from '../util/concurrency.js';
import { Scratch } from '../util/scratch.js';
import { repositoryCacheDir } from '../paths.js';
import { SCHEMA, SCHEMA_VERSION } from './schema.js';

/** `catalog.db` in the repository's cache directory. */
export function catalogFile(repoId: string, cacheDir?: string): string {
  return join(repositoryCacheDir(repoId, cacheDir), 'catalog.db');
}

export interface CatalogSnapshot {
  seq: number;
  id: string;
  chain: number;
  /** ms since the epoch */
  time: number;
  host: string;
  tags: string[];
  paths: string[];
  /** The snapshot's root tree. */
  tree: string;
}

export interface VersionRow {
  version: number;
  path: number;
  type: NodeType;
  content: Buffer;
  size: number;
  mtimeNs: bigint;
  mode: number;
  uid: number;
  gid: number;
  user: string;
  group: string;
  ranges: { chain: number; first: number; last: number | null }[];
}

export interface VersionQuery {
  /** Tested against each path's last component. */
  name?: (name: string) => boolean;
  /** Tested against each full path. */
  path?: (path: string) => boolean;
  pathId?: number;
  type?: NodeType;
  minSize?: number;
  maxSize?: number;
  mtimeAfter?: bigint;
  mtimeBefore?: bigint;
}

export interface SyncResult {
  added: number;
  removed: number;
  treesLoaded: number;
}

export interface SyncOptions {
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
  /** Trees this process has just stored (by a backup), taken from here instead of the repository. */
  fresh?: FreshTrees;
  /**
   * Adds only the new snapshots of this chain (same host and paths): a backup catalogs its own
   * snapshots, not every other host's of a shared repository (their trees would be read back on
   * every host after every backup). The rest wait for the next full sync (find, catalog sync).
   */
  chain?: Pick<Snapshot, 'hostname' | 'paths'>;
  /** @internal Rows a snapshot's plan holds before it is applied as it grows (tests lower it). */
  planRows?: number;
}

export interface CatalogOptions {
  /** @internal How long a write waits for another process's write lock (tests lower it). */
  busyTimeoutMs?: number;
}

/**
 * How long a write waits for another process's write lock before SQLITE_BUSY (a query then answers
 * from the catalog as it is: cli/commands/catalog.ts).
 */
const BUSY_TIMEOUT_MS = 15_000;

type Name = string | Buffer;
interface PendingPath {
  parent: number | PendingPath;
  name: Name;
  id?: number;
}
type PathRef = number | PendingPath;
interface NodeVersion {
  vkey: bigint;
  type: number;
  content: Buffer;
  size: number;
  mtime: bigint;
  mode: number;
  uid: number;
  gid: number;
  user: string;
  group: string;
}
interface OpenVersion {
  id: number;
  vkey: bigint;
  type: number;
  content: Buffer;
}
/** A snapshot being added: begin()'s transaction is open. */
interface Applying {
  seq: number;
  chainId: number;
  /** The chain's head before this snapshot: closed ranges end there. */
  previousHead: number | undefined;
  owners: Map<string, number>;
  /** The owner of the last version inserted: most of a directory's files share it. */
  lastOwner?: { v: NodeVersion; id: number };
}
interface Plan {
  paths: PendingPath[];
  opens: { ref: PathRef; v: NodeVersion }[];
  closes: number[];
  treesLoaded: number;
}

/** Where a sync takes the trees it compares. */
interface TreeSource {
  load(id: string): Promise<CatalogDir>;
  /**
   * Whether to load it ahead of its turn: a tree read from the repository is, a fresh one is not.
   * Unpacked ahead, fresh trees outlived young-generation GCs: the GCs of a 63k-file backup's
   * sync took 64-94 ms, against 12-20 ms unpacked in turn (plans of FRESH_PLAN_ROWS).
   */
  readAhead(id: string): boolean;
}

/** A tree as the sync compares it: each node's name, version, and subtree for a directory. */
interface CatalogDir {
  nodes: { name: Name; v: NodeVersion; subtree: string | undefined }[];
}

const DIR = NODE_TYPES.indexOf('dir');
function nameValue(b: Buffer): Name {
  return utf8Text(b) ?? Buffer.from(b);
}

function catalogDir(nodes: readonly TreeNode[]): CatalogDir {
  return { nodes: nodes.map((n) => ({ name: nameValue(n.name), v: nodeVersion(n), subtree: n.subtree })) };
}

/** Nodes of fresh trees kept for the sync (~100 bytes each, packed); past that, trees are read back. */
const FRESH_NODES = 200_000;

/**
 * The trees a backup stores, handed over by the walk as it saves each one, kept until the sync
 * after the backup takes them: that sync then neither reads them back (from S3, a range GET each)
 * nor decodes them, and the work is done while the walk waits for its crypto workers rather than
 * after the snapshot is saved. Bounded by nodes. Each directory is kept packed in one buffer
 * (packDir): as objects, 63k files' versions were ~35 MiB of a 1 GiB backup's peak RSS, and old
 * objects every garbage collection of the walk had to trace.
 */
export class FreshTrees {
  private readonly dirs = new Map<string, { packed: Buffer; nodes: number }>();
  private nodes = 0;
  /** User and group names of the packed nodes, stored by index: a handful per backup. */
  private readonly owners = new OwnerTable();

  add(id: string, nodes: readonly TreeNode[]): void {
    if (this.dirs.has(id) || this.nodes + nodes.length > FRESH_NODES) return;
    let packed: Buffer;
    try {
      packed = packDir(nodes, this.owners);
    } catch {
      return; // a value packDir has no room for (a uid past 32 bits): the sync reads the tree back
    }
    this.dirs.set(id, { packed, nodes: nodes.length });
    this.nodes += nodes.length;
  }

  has(id: string): boolean {
    return this.dirs.has(id);
  }

  /** @internal The tree, once: a sync visits each tree once. */
  take(id: string): CatalogDir | undefined {
    const d = this.dirs.get(id);
    if (!d) return undefined;
    this.dirs.delete(id);
    this.nodes -= d.nodes;
    return unpackDir(d.packed, this.owners.names);
  }
}

class OwnerTable {
  readonly names: string[] = [];
  private readonly index = new Map<string, number>();

  indexOf(name: string): number {
    let i = this.index.get(name);
    if (i === undefined) {
      i = this.names.push(name) - 1;
      this.index.set(name, i);
    }
    return i;
  }
}

// A packed directory, per node: flags (1: has a subtree), name, vkey, type, content, size, mtime,
// mode, uid, gid, user, group (u32 indexes into the OwnerTable), subtree (32 bytes). The name and
// the content are a u32 length and the bytes; the name is the node's raw bytes (unpacking gives it
// the form catalogDir does). Only this process reads it.
const PACKED_SUBTREE = 1;
/** Bytes of a packed node besides its name, content and subtree. */
const PACKED_FIXED = 1 + 4 + 8 + 1 + 4 + 8 + 8 + 12 + 4 + 4;

/** User and group names as UTF-8: a handful per backup, so each is encoded once. */
const ownerBytes = new Map<string, Buffer>();

function ownerName(s: string): Buffer {
  let b = ownerBytes.get(s);
  if (!b) {
    b = Buffer.from(s);
    if (ownerBytes.size < 1024) ownerBytes.set(s, b);
  }
  return b;
}

/** A version's content is 16 bytes, or none (ch. 13.2). */
const CONTENT_MAX = 16;

// Every node of a backup is packed: no Buffer.copy or Buffer.from per field (calls into C++ and an
// allocation each), but TypedArray.set into one buffer per directory.
function packDir(nodes: readonly TreeNode[], owners: OwnerTable): Buffer {
  let size = 0;
  for (const n of nodes) size += PACKED_FIXED + n.name.length + CONTENT_MAX + (n.subtree !== undefined ? 32 : 0);
  const b = Buffer.allocUnsafe(size);
  let o = 0;
  for (const n of nodes) {
    const key = versionKey(n);
    const contentLen = key[1]!;
    o = b.writeUInt8(n.subtree !== undefined ? PACKED_SUBTREE : 0, o);
    o = b.writeUInt32LE(n.name.length, o);
    b.set(n.name, o);
    o += n.name.length;
    const digest = sha256(key);
    for (let k = 0; k < 8; k++) b[o + k] = digest[k]!;
    o += 8;
    o = b.writeUInt8(key[0]!, o);
    o = b.writeUInt32LE(contentLen, o);
    b.set(key.subarray(2, 2 + contentLen), o);
    o += contentLen;
    o = b.writeDoubleLE(n.size ?? 0, o);
    o = putInt64(b, o, n.mtimeNs);
    o = b.writeUInt32LE(n.mode, o);
    o = b.writeUInt32LE(n.uid, o);
    o = b.writeUInt32LE(n.gid, o);
    o = b.writeUInt32LE(owners.indexOf(n.user ?? ''), o);
    o = b.writeUInt32LE(owners.indexOf(n.group ?? ''), o);
    if (n.subtree !== undefined) o += b.write(n.subtree, o, 32, 'hex');
  }
  return b.subarray(0, o);
}

function unpackDir(b: Buffer, owners: readonly string[]): CatalogDir {
  const nodes: CatalogDir['nodes'] = [];
  let o = 0;
  // Views of the packed buffer: it lives as long as the sync's plan of this directory.
  const bytes = () => {
    const n = b.readUInt32LE(o);
    o += 4 + n;
    return b.subarray(o - n, o);
  };
  while (o < b.length) {
    const flags = b.readUInt8(o++);
    const name = nameValue(bytes());
    const vkey = getInt64(b, o);
    const type = b.readUInt8(o + 8);
    o += 9;
    const content = bytes();
    const size = b.readDoubleLE(o);
    const mtime = getInt64(b, o + 8);
    const mode = b.readUInt32LE(o + 16);
    const uid = b.readUInt32LE(o + 20);
    const gid = b.readUInt32LE(o + 24);
    const user = owners[b.readUInt32LE(o + 28)]!;
    const group = owners[b.readUInt32LE(o + 32)]!;
    o += 36;
    let subtree: string | undefined;
    if (flags & PACKED_SUBTREE) {
      subtree = b.toString('hex', o, o + 32);
      o += 32;
    }
    nodes.push({ name, v: { vkey, type, content, size, mtime, mode, uid, gid, user, group }, subtree });
  }
  return { nodes };
}

const nameKey = (n: Name) => (typeof n === 'string' ? 's' + n : 'b' + n.toString('hex'));
// One-shot hashing (no Hash object): half the cost of createHash for these short inputs.
const sha256 = (s: Buffer) => hash('sha256', s, 'buffer');
const hash16 = (s: Buffer) => sha256(s).subarray(0, 16);

// 64-bit values are copied through this array's bytes: Buffer's writeBigInt64LE and
// readBigInt64LE make several BigInts per call (~270 and ~90 bytes of garbage), for every node of
// a backup (written once, read by the catalog's sync: 126k reads took 15 ms, 4 ms this way).
// Little-endian on any machine, as ch. 13.2's key material and readBigInt64LE are.
const int64 = new BigInt64Array(1);
const int64Bytes = new Uint8Array(int64.buffer);
const nativeLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function putInt64(b: Buffer, o: number, v: bigint): number {
  int64[0] = v;
  for (let k = 0; k < 8; k++) b[o + k] = int64Bytes[nativeLE ? k : 7 - k]!;
  return o + 8;
}

function getInt64(b: Buffer, o: number): bigint {
  for (let k = 0; k < 8; k++) int64Bytes[nativeLE ? k : 7 - k] = b[o + k]!;
  return int64[0]!;
}

/** Key material of versions (ch. 13.2), built here rather than as strings. */
const keyScratch = new Scratch();
/** A file's content IDs, concatenated to be hashed (a file of several blobs). */
const idScratch = new Scratch();

/**
 * Writes a node's content (ch. 13.2) at `o`: a one-blob file's blob ID prefix, else the hash of
 * its ID list; a directory's subtree ID prefix; the hash of a link target or of a device number.
 */
function putContent(n: TreeNode, b: Buffer, o: number): number {
  switch (n.type) {
    case 'file': {
      const ids = n.content ?? [];
      if (ids.length === 1) return b.write(ids[0]!, o, 16, 'hex');
      const all = idScratch.take(ids.length * 32);
      let k = 0;
      for (const id of ids) k += all.write(id, k, 'hex');
      b.set(hash16(all.subarray(0, k)), o);
      return 16;
    }
    case 'dir':
      return n.subtree === undefined ? 0 : b.write(n.subtree, o, 16, 'hex');
    case 'symlink':
      b.set(hash16(n.target ?? Buffer.alloc(0)), o);
      return 16;
    default:
      if (n.rdev === undefined) return 0;
      b.set(hash16(Buffer.from(n.rdev.toString())), o);
      return 16;
  }
}

/**
 * The key material of a node's version as format-spec ch. 13.2 defines it, as a view of keyScratch
 * (valid until the next call): type, content length, content, size, mtime, mode, uid, gid, user,
 * group. Its SHA-256 gives the vkey.
 */
function versionKey(n: TreeNode): Buffer {
  const u = ownerName(n.user ?? '');
  const g = ownerName(n.group ?? '');
  const b = keyScratch.take(2 + CONTENT_MAX + 8 * 5 + 8 + u.length + g.length);
  b[0] = NODE_TYPES.indexOf(n.type);
  const contentLen = putContent(n, b, 2);
  b[1] = contentLen;
  let o = 2 + contentLen;
  o = b.writeDoubleLE(n.size ?? 0, o);
  o = putInt64(b, o, n.mtimeNs);
  o = b.writeDoubleLE(n.mode, o);
  o = b.writeDoubleLE(n.uid, o);
  o = b.writeDoubleLE(n.gid, o);
  o = b.writeUInt32LE(u.length, o);
  b.set(u, o);
  o += u.length;
  o = b.writeUInt32LE(g.length, o);
  b.set(g, o);
  o += g.length;
  return b.subarray(0, o);
}

/** The version of a node as format-spec ch. 13.2 defines it: content and vkey. */
function nodeVersion(n: TreeNode): NodeVersion {
  const key = versionKey(n);
  const vkey = sha256(key).readBigInt64LE(0);
  const content = Buffer.from(key.subarray(2, 2 + key[1]!));
  // One literal: built with a spread ({ ...v, vkey }), every version got a hidden class of its own
  // (a heap snapshot of a 63k-file sync held 66k maps, 16 MiB, for these objects).
  return { vkey, type: key[0]!, content, size: n.size ?? 0, mtime: n.mtimeNs, mode: n.mode, uid: n.uid, gid: n.gid, user: n.user ?? '', group: n.group ?? '' };
}

/** Rows of a snapshot's plan held in memory before they are applied as the plan grows. */
const PLAN_ROWS = 200_000;

/**
 * The same, for a snapshot whose trees are in memory (a backup's: FreshTrees). Rows applied as
 * they come die young, with the nodes they were made from; held to the end, every row of a first
 * backup was promoted to the old generation first. The GCs of a 63k-file first backup's sync took
 * 115-162 ms held to the end, 17-24 ms applied every 1000 rows (and the sync ~110 ms less). Its
 * transaction then holds the write lock while the trees are walked: briefly, as they are in memory.
 */
const FRESH_PLAN_ROWS = 1000;

/** Conflicts in a row (other processes adding to the same chain or paths) before a sync gives up. */
const CONFLICT_RETRIES = 5;

/** Rows per INSERT statement when a snapshot is added. */
const BATCH_ROWS = 64;

/** Subdirectory trees a sync loads ahead of the one it compares, per directory. */
const TREES_AHEAD = 8;

const chainKey = (s: Pick<Snapshot, 'hostname' | 'paths'>) => [s.hostname, ...s.paths].join('\0');

/** Another process changed the catalog while this one walked trees: walk again. */
class Conflict extends Error {}

export class Catalog {
  /** Why the catalog was rebuilt or repaired while opening, for the caller to report. */
  readonly notes: string[] = [];
  private readonly pathCache = new Map<number, string>();

  private constructor(private db: Database.Database, readonly file: string, readonly repoId: string, private readonly opts: CatalogOptions) {}

  /**
   * Opens (creating if needed) the catalog of a repository. A file that is not a catalog, belongs
   * to another repository or has another schema version is deleted and recreated empty; a sync that
   * was interrupted is detected and the file checked.
   */
  static open(file: string, repoId: string, opts: CatalogOptions = {}): Catalog {
    const dir = join(file, '..');
    try {
      mkdirsSync(dir);
    } catch (e) {
      throw new LocalIOError(`cannot create the catalog directory ${dir}: ${(e as Error).message}`, { cause: e, hint: 'choose a writable place with --cache-dir or XDG_CACHE_HOME' });
    }
    const notes: string[] = [];
    const connect = () => Catalog.connect(file, opts.busyTimeoutMs ?? BUSY_TIMEOUT_MS);
    let db: Database.Database | undefined;
    try {
      db = connect();
      const problem = Catalog.validate(db, repoId, notes);
      if (problem) {
        notes.push(`${problem}; rebuilding it`);
        db.close();
        db = undefined;
      }
    } catch (e) {
      notes.push(`catalog ${file} is unreadable (${(e as Error).message}); rebuilding it`);
      db?.close();
      db = undefined;
    }
    if (!db) {
      for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true });
      db = connect();
    }
    if (!db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'meta'").get()) {
      db.transaction(() => {
        db.exec(SCHEMA);
        const put = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
        put.run('schema_version', String(SCHEMA_VERSION));
        put.run('repository_id', repoId);
        put.run('next_seq', '1');
      })();
    }
    const c = new Catalog(db, file, repoId, opts);
    c.notes.push(...notes);
    return c;
  }

  private static connect(file: string, busyTimeoutMs: number): Database.Database {
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    return db;
  }

  /** Returns why the database cannot be trusted, or undefined; notes a repaired interruption. */
  private static validate(db: Database.Database, repoId: string, notes: string[]): string | undefined {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[];
    if (tables.length === 0) return undefined;
    if (!tables.includes('meta')) return 'the catalog file has no snap schema';
    const meta = new Map((db.prepare('SELECT key, value FROM meta').all() as { key: string; value: string }[]).map((r) => [r.key, r.value]));
    const version = Number(meta.get('schema_version'));
    if (version > SCHEMA_VERSION) return `the catalog has a newer schema (${version}) than this snap (${SCHEMA_VERSION})`;
    if (version !== SCHEMA_VERSION) return `the catalog has schema ${meta.get('schema_version')}, this snap uses ${SCHEMA_VERSION}`;
    if (meta.get('repository_id') !== repoId) return 'the catalog belongs to another repository';
    const pid = Number(meta.get('sync_pid'));
    if (pid && !processAlive(pid)) {
      // Each snapshot is added in one transaction, so an interrupted sync leaves whole snapshots; the
      // check guards against damage beyond that (a torn write on a failing disk).
      const check = db.pragma('quick_check', { simple: true });
      if (check !== 'ok') return `an interrupted sync left the catalog damaged (${String(check)})`;
      db.prepare("DELETE FROM meta WHERE key = 'sync_pid'").run();
      notes.push('a previous catalog sync was interrupted; the catalog checked out and the sync continues');
    }
    return undefined;
  }

  close(): void {
    this.db.close();
  }

  /** Deletes everything and starts empty (`snap catalog rebuild`). */
  reset(): Catalog {
    this.db.close();
    for (const suffix of ['', '-wal', '-shm']) rmSync(this.file + suffix, { force: true });
    return Catalog.open(this.file, this.repoId, this.opts);
  }

  // ---- sync ----------------------------------------------------------------------------------

  /**
   * Brings the catalog up to date with the repository: forgotten snapshots drop out, new ones are
   * added oldest first, each in its own transaction, walking only subtrees that differ from the
   * previous snapshot of the same chain.
   */
  async sync(repo: Repository, opts: SyncOptions = {}): Promise<SyncResult> {
    const names = new Set(await repo.listNames('snapshot'));
    const known = this.db.prepare('SELECT id FROM snapshots').pluck().all() as string[];
    const gone = known.filter((id) => !names.has(id));
    for (const id of known) names.delete(id);
    const result: SyncResult = { added: 0, removed: gone.length, treesLoaded: 0 };
    if (gone.length === 0 && names.size === 0) return result;

    if (gone.length > 0) this.forget(gone);
    let fresh: SnapshotEntry[] = [];
    await mapLimit(names, 8, async (id) => {
      fresh.push({ id, snapshot: await repo.loadSnapshot(id) });
    });
    if (opts.chain) {
      const key = chainKey(opts.chain);
      fresh = fresh.filter((e) => chainKey(e.snapshot) === key);
    }
    fresh.sort((a, b) => a.snapshot.time.localeCompare(b.snapshot.time) || a.id.localeCompare(b.id));
    if (fresh.length > 0 && repo.index.indexNames.size === 0) await repo.loadIndex();
    for (const [i, e] of fresh.entries()) {
      if (opts.signal?.aborted) throw new InterruptedError('catalog sync interrupted; the next command continues it');
      for (let attempt = 1; ; attempt++) {
        try {
          const planRows = opts.planRows ?? (opts.fresh?.has(e.snapshot.tree) ? FRESH_PLAN_ROWS : PLAN_ROWS);
          const trees = await this.addSnapshot(repo, e, opts.fresh, planRows);
          if (trees !== undefined) {
            result.added++;
            result.treesLoaded += trees;
          }
          break;
        } catch (err) {
          if (!(err instanceof Conflict)) throw err;
          if (attempt === CONFLICT_RETRIES) throw new Error(`other processes kept changing the catalog while snapshot ${e.id.slice(0, 8)} was added`, { cause: err });
        }
      }
      opts.onProgress?.(i + 1, fresh.length);
    }
    // Set by the write transactions (markSync): a sync that never got the write lock (another
    // process held it past the busy timeout) leaves no marker to be taken for an interruption.
    if (result.added > 0 || result.removed > 0) this.db.prepare("DELETE FROM meta WHERE key = 'sync_pid'").run();
    return result;
  }

  /** In a sync's write transaction: marks the catalog as being synced by this process (see validate). */
  private markSync(): void {
    this.setMeta('sync_pid', String(process.pid));
  }

  private setMeta(key: string, value: string): void {
    this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  private forget(ids: string[]): void {
    const del = this.db.prepare('DELETE FROM snapshots WHERE id = ?');
    this.db.transaction(() => {
      this.markSync();
      for (const id of ids) del.run(id);
      this.db.exec(`
        DELETE FROM ranges WHERE NOT EXISTS (SELECT 1 FROM snapshots s WHERE s.chain = ranges.chain
          AND s.seq >= ranges.first AND (ranges.last IS NULL OR s.seq <= ranges.last));
        DELETE FROM versions WHERE NOT EXISTS (SELECT 1 FROM ranges r WHERE r.version = versions.id);`);
    })();
  }

  /** Adds a snapshot; returns the trees it read, or undefined when another process added it first. */
  private async addSnapshot(repo: Repository, e: SnapshotEntry, fresh: FreshTrees | undefined, planRows: number): Promise<number | undefined> {
    // Another sync committed it after this one listed it (begin() then found the chain's head
    // moved: a Conflict brought this sync back here).
    if (this.stmt('SELECT 1 FROM snapshots WHERE id = ?').get(e.id)) return undefined;
    const key = chainKey(e.snapshot);
    const chain = this.db.prepare('SELECT id, head FROM chains WHERE key = ?').get(key) as { id: number; head: number } | undefined;
    const plan: Plan = { paths: [], opens: [], closes: [], treesLoaded: 0 };
    const trees: TreeSource = {
      load: (id) => {
        const d = fresh?.take(id);
        return d ? Promise.resolve(d) : repo.loadTree(id).then((t) => catalogDir(t.nodes));
      },
      readAhead: (id) => fresh?.has(id) !== true,
    };
    // A plan of a few hundred thousand rows is applied in one short transaction at the end: trees
    // read from the repository (a range GET each, on S3) are not waited for under the write lock.
    // A larger one (a first snapshot of millions of files: ~0.5 KB of heap per row), or one made
    // from fresh trees (FRESH_PLAN_ROWS), is applied as it grows, inside the same transaction,
    // which then holds the catalog's write lock until the end.
    // IMMEDIATE: the head check and the writes under one lock (a deferred transaction could not
    // upgrade to write after another process committed: SQLITE_BUSY_SNAPSHOT).
    let applying: Applying | undefined;
    const apply = () => {
      if (!applying) {
        this.db.exec('BEGIN IMMEDIATE');
        applying = this.begin(e, key, chain);
      }
      this.applyPlan(applying, plan);
    };
    try {
      await this.diffDir(trees, plan, chain?.id, 0, e.snapshot.tree, undefined, () => {
        if (plan.paths.length + plan.opens.length + plan.closes.length >= planRows) apply();
      });
      apply();
      this.db.exec('COMMIT');
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      // A path another process's sync has just added: the plan is stale, like a moved head.
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new Conflict();
      throw err;
    }
    return plan.treesLoaded;
  }

  /**
   * Compares a directory of the new snapshot with the versions the chain's head holds under it.
   * `loading` is its tree when that is loading already; `spill` runs once its own rows are planned,
   * before its subdirectories are compared.
   */
  private async diffDir(trees: TreeSource, plan: Plan, chain: number | undefined, dir: PathRef, treeId: string, loading: Promise<CatalogDir> | undefined, spill: () => void): Promise<void> {
    const tree = await (loading ?? trees.load(treeId));
    plan.treesLoaded++;
    const known = typeof dir === 'number' ? this.childPaths(dir) : new Map<string, number>();
    const open = typeof dir === 'number' && chain !== undefined ? this.openChildren(chain, dir) : new Map<number, OpenVersion>();
    const below: { ref: PathRef; subtree: string }[] = [];
    for (const { name, v, subtree } of tree.nodes) {
      // A new directory has no known children: no key to build (a first backup's every node).
      let ref: PathRef | undefined = known.size > 0 ? known.get(nameKey(name)) : undefined;
      if (ref === undefined) plan.paths.push((ref = { parent: dir, name }));
      const prev = typeof ref === 'number' ? open.get(ref) : undefined;
      if (prev) open.delete(ref as number);
      if (!prev || prev.vkey !== v.vkey) {
        if (prev) plan.closes.push(prev.id);
        plan.opens.push({ ref, v });
      }
      if (v.type === DIR) {
        // Same subtree ID: every version below is unchanged and keeps its open range.
        if (!(prev && prev.type === DIR && prev.content.equals(v.content))) below.push({ ref, subtree: subtree! });
      } else if (prev?.type === DIR) this.closeBelow(plan, chain!, ref as number);
    }
    for (const [pathId, prev] of open) {
      plan.closes.push(prev.id);
      if (prev.type === DIR) this.closeBelow(plan, chain!, pathId);
    }
    spill();
    // The subdirectories' trees load a window ahead: one after another, a remote repository's
    // sync waited a round trip per directory (a first backup's sync: one per directory backed up).
    const loads: (Promise<CatalogDir> | undefined)[] = [];
    const start = (i: number) => {
      if (i >= below.length || loads[i] || !trees.readAhead(below[i]!.subtree)) return;
      const p = trees.load(below[i]!.subtree);
      p.catch(() => undefined); // awaited in turn below
      loads[i] = p;
    };
    for (let i = 0; i < Math.min(TREES_AHEAD, below.length); i++) start(i);
    for (const [i, { ref, subtree }] of below.entries()) {
      start(i + TREES_AHEAD);
      await this.diffDir(trees, plan, chain, ref, subtree, loads[i], spill);
      loads[i] = undefined;
    }
  }

  private closeBelow(plan: Plan, chain: number, dir: number): void {
    for (const [pathId, prev] of this.openChildren(chain, dir)) {
      plan.closes.push(prev.id);
      if (prev.type === DIR) this.closeBelow(plan, chain, pathId);
    }
  }

  private childPaths(dir: number): Map<string, number> {
    const rows = this.stmt('SELECT id, name FROM paths WHERE parent = ?').all(dir) as { id: number; name: Name }[];
    return new Map(rows.map((r) => [nameKey(r.name), r.id]));
  }

  private openChildren(chain: number, dir: number): Map<number, OpenVersion> {
    const rows = this.stmt(
      `SELECT v.path, v.id, v.vkey, v.type, v.content FROM paths p JOIN versions v ON v.path = p.id
       JOIN ranges r ON r.version = v.id WHERE p.parent = ? AND r.chain = ? AND r.last IS NULL`,
      true,
    ).all(dir, chain) as { path: bigint; id: bigint; vkey: bigint; type: bigint; content: Buffer }[];
    return new Map(rows.map((r) => [Number(r.path), { id: Number(r.id), vkey: r.vkey, type: Number(r.type), content: r.content }]));
  }

  /**
   * In a write transaction: checks that the chain's head is still the one the plan was made against
   * (else Conflict), and adds the snapshot as the chain's new head.
   */
  private begin(e: SnapshotEntry, key: string, chain: { id: number; head: number } | undefined): Applying {
    const s = e.snapshot;
    const now = this.db.prepare('SELECT id, head FROM chains WHERE key = ?').get(key) as { id: number; head: number } | undefined;
    if (now?.head !== chain?.head || this.stmt('SELECT 1 FROM snapshots WHERE id = ?').get(e.id)) throw new Conflict();
    this.markSync();
    const seq = Number(this.db.prepare("SELECT value FROM meta WHERE key = 'next_seq'").pluck().get());
    this.setMeta('next_seq', String(seq + 1));
    let chainId: number;
    if (chain) {
      chainId = chain.id;
      this.stmt('UPDATE chains SET head = ? WHERE id = ?').run(seq, chainId);
    } else chainId = Number(this.stmt('INSERT INTO chains (key, head) VALUES (?, ?)').run(key, seq).lastInsertRowid);
    this.stmt('INSERT INTO snapshots (seq, id, chain, time, host, tags, paths, tree) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
      seq, e.id, chainId, Date.parse(s.time), s.hostname, JSON.stringify(s.tags), JSON.stringify(s.paths), s.tree,
    );
    // Owner IDs are remembered per transaction only: a rolled-back insert must not be reused.
    return { seq, chainId, previousHead: chain?.head, owners: new Map() };
  }

  /** In begin()'s transaction: inserts the plan's rows, then empties it. */
  private applyPlan(a: Applying, plan: Plan): void {
    // New rows get their IDs here, counting up from the largest (the transaction holds the write
    // lock): rows then go in many per statement.
    const nextId = (table: string) => Number(this.db.prepare(`SELECT coalesce(max(id), 0) + 1 FROM ${table}`).pluck().get());
    let pathId = nextId('paths');
    const insPath = this.batchInsert('INSERT INTO paths (id, parent, name) VALUES', 3);
    for (const p of plan.paths) {
      p.id = pathId++;
      insPath.add(p.id, resolve(p.parent), p.name);
    }
    insPath.flush();
    const close = this.stmt('UPDATE ranges SET last = ? WHERE version = ? AND chain = ? AND last IS NULL');
    for (const id of plan.closes) close.run(a.previousHead!, id, a.chainId);
    const findVersion = this.stmt('SELECT id FROM versions WHERE path = ? AND vkey = ?').pluck();
    let versionId = nextId('versions');
    const insVersion = this.batchInsert('INSERT INTO versions (id, path, vkey, type, content, size, mtime, mode, owner) VALUES', 9);
    const insRange = this.batchInsert('INSERT INTO ranges (version, chain, first, last) VALUES', 3, ', NULL');
    for (const { ref, v } of plan.opens) {
      const path = resolve(ref);
      // A path added by this snapshot has no versions yet: no lookup (a first backup's every file).
      // A snapshot opens one version per path, so an earlier row of this loop is never looked up.
      let id = typeof ref === 'number' ? (findVersion.get(path, v.vkey) as number | undefined) : undefined;
      if (id === undefined) {
        id = versionId++;
        insVersion.add(id, path, v.vkey, v.type, v.content, v.size, v.mtime, v.mode, this.owner(v, a));
      }
      insRange.add(id, a.chainId, a.seq);
    }
    insVersion.flush();
    insRange.flush();
    // Paths stay referenced by the plan's later rows (their IDs are set now); the array is done.
    plan.paths = [];
    plan.opens = [];
    plan.closes = [];
  }

  /**
   * Inserts rows BATCH_ROWS per statement (a statement per row cost twice SQLite's own work for a
   * first backup's 190k rows). `columns` values per row are bound; `fixed` ends each row's tuple.
   */
  private batchInsert(sql: string, columns: number, fixed = ''): { add(...values: unknown[]): void; flush(): void } {
    const tuple = `(${Array(columns).fill('?').join(', ')}${fixed})`;
    const statement = (rows: number) => this.stmt(`${sql} ${Array(rows).fill(tuple).join(', ')}`);
    // Every full batch runs the same statement with the same array. Built per batch, the arrays and
    // the statement's SQL text (to look it up) were 30% of what a first backup's sync allocated.
    const full = statement(BATCH_ROWS);
    const values: unknown[] = new Array(BATCH_ROWS * columns);
    let n = 0;
    const flush = () => {
      if (n === values.length) full.run(values);
      else if (n > 0) statement(n / columns).run(values.slice(0, n));
      n = 0;
    };
    return {
      add(...row: unknown[]) {
        for (let i = 0; i < row.length; i++) values[n++] = row[i];
        if (n === values.length) flush();
      },
      flush,
    };
  }

  private owner(v: NodeVersion, a: Applying): number {
    const last = a.lastOwner;
    if (last && last.v.uid === v.uid && last.v.gid === v.gid && last.v.user === v.user && last.v.group === v.group) return last.id;
    const key = `${v.uid}:${v.gid}:${v.user}:${v.group}`;
    const seen = a.owners;
    let id = seen.get(key);
    if (id !== undefined) {
      a.lastOwner = { v, id };
      return id;
    }
    const args = [v.uid, v.gid, v.user, v.group];
    id = this.stmt('SELECT id FROM owners WHERE uid = ? AND gid = ? AND user = ? AND grp = ?').pluck().get(...args) as number | undefined;
    id ??= Number(this.stmt('INSERT INTO owners (uid, gid, user, grp) VALUES (?, ?, ?, ?)').run(...args).lastInsertRowid);
    seen.set(key, id);
    a.lastOwner = { v, id };
    return id;
  }

  private readonly stmts = new Map<string, Database.Statement>();
  private stmt(sql: string, safe = false): Database.Statement {
    const k = (safe ? 'S' : 'N') + sql;
    let s = this.stmts.get(k);
    if (!s) this.stmts.set(k, (s = this.db.prepare(sql).safeIntegers(safe)));
    return s;
  }

  // ---- queries -------------------------------------------------------------------------------

  /** Every cataloged snapshot, oldest first. */
  snapshots(): CatalogSnapshot[] {
    const rows = this.stmt('SELECT seq, id, chain, time, host, tags, paths, tree FROM snapshots ORDER BY time, id').all() as
      (Omit<CatalogSnapshot, 'tags' | 'paths'> & { tags: string; paths: string })[];
    return rows.map((r) => ({ ...r, tags: JSON.parse(r.tags) as string[], paths: JSON.parse(r.paths) as string[] }));
  }

  /** The path ID of an absolute path ("/a/b"), or undefined when no snapshot ever held it. */
  pathId(path: string): number | undefined {
    let id = 0;
    for (const part of path.split('/').filter((p) => p.length > 0)) {
      const next = this.stmt('SELECT id FROM paths WHERE parent = ? AND name = ?').pluck().get(id, part) as number | undefined;
      if (next === undefined) return undefined;
      id = next;
    }
    return id === 0 ? undefined : id;
  }

  /** The absolute path of a path ID (names that are not UTF-8 are decoded lossily). */
  pathText(id: number): string {
    const cached = this.pathCache.get(id);
    if (cached !== undefined) return cached;
    const r = this.stmt('SELECT parent, name FROM paths WHERE id = ?').get(id) as { parent: number; name: Name };
    const name = typeof r.name === 'string' ? r.name : r.name.toString('utf8');
    const text = (r.parent === 0 ? '' : this.pathText(r.parent)) + '/' + name;
    this.pathCache.set(id, text);
    return text;
  }

  /** Versions matching the query, each with the snapshot ranges that hold it. */
  versions(q: VersionQuery): VersionRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.pathId !== undefined) {
      where.push('v.path = ?');
      args.push(q.pathId);
    }
    if (q.name) {
      // Matching names first, in one scan of the paths table, keeps the planner from testing the
      // name once per version or range row.
      const test = q.name;
      this.db.function('snap_name', { deterministic: true }, (n: unknown) => (test(typeof n === 'string' ? n : (n as Buffer).toString('utf8')) ? 1 : 0));
      const ids = this.db.prepare('SELECT id FROM paths WHERE snap_name(name)').pluck().all();
      where.push('p.id IN (SELECT value FROM json_each(?))');
      args.push(JSON.stringify(ids));
    }
    if (q.path) {
      // Full paths are built in one pass (parents have lower IDs than their children): a SQL function
      // cannot look up parents itself while the query runs.
      const ids: number[] = [];
      for (const [id, parent, name] of this.db.prepare('SELECT id, parent, name FROM paths ORDER BY id').raw().all() as [number, number, Name][]) {
        const text = (parent === 0 ? '' : this.pathCache.get(parent)!) + '/' + (typeof name === 'string' ? name : name.toString('utf8'));
        this.pathCache.set(id, text);
        if (q.path(text)) ids.push(id);
      }
      where.push('p.id IN (SELECT value FROM json_each(?))');
      args.push(JSON.stringify(ids));
    }
    if (q.type) {
      where.push('v.type = ?');
      args.push(NODE_TYPES.indexOf(q.type));
    }
    if (q.minSize !== undefined) where.push(`v.size >= ${Math.floor(q.minSize)}`);
    if (q.maxSize !== undefined) where.push(`v.size <= ${Math.floor(q.maxSize)}`);
    if (q.mtimeAfter !== undefined) {
      where.push('v.mtime > ?');
      args.push(q.mtimeAfter);
    }
    if (q.mtimeBefore !== undefined) {
      where.push('v.mtime < ?');
      args.push(q.mtimeBefore);
    }
    const sql = `SELECT v.id, v.path, v.type, v.content, v.size, v.mtime, v.mode, o.uid, o.gid, o.user, o.grp, r.chain, r.first, r.last
      FROM paths p JOIN versions v ON v.path = p.id JOIN ranges r ON r.version = v.id JOIN owners o ON o.id = v.owner
      ${where.length ? 'WHERE ' + where.join(' AND ') : ''}`;
    const out = new Map<number, VersionRow>();
    for (const r of this.db.prepare(sql).raw().safeIntegers(true).iterate(...args) as IterableIterator<unknown[]>) {
      const id = Number(r[0]);
      let row = out.get(id);
      if (!row) {
        out.set(id, (row = {
          version: id, path: Number(r[1]), type: NODE_TYPES[Number(r[2])]!, content: r[3] as Buffer, size: Number(r[4]), mtimeNs: r[5] as bigint,
          mode: Number(r[6]), uid: Number(r[7]), gid: Number(r[8]), user: r[9] as string, group: r[10] as string, ranges: [],
        }));
      }
      row.ranges.push({ chain: Number(r[11]), first: Number(r[12]), last: r[13] === null ? null : Number(r[13]) });
    }
    return [...out.values()];
  }

  /** Figures for the benchmark and `catalog sync`. */
  stats(): { bytes: number; versions: number; ranges: number; paths: number; snapshots: number } {
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    const n = (t: string) => Number(this.db.prepare(`SELECT count(*) FROM ${t}`).pluck().get());
    const pages = Number(this.db.pragma('page_count', { simple: true })) * Number(this.db.pragma('page_size', { simple: true }));
    return { bytes: pages, versions: n('versions'), ranges: n('ranges'), paths: n('paths'), snapshots: n('snapshots') };
  }
}

function resolve(ref: PathRef): number {
  return typeof ref === 'number' ? ref : ref.id!;
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM';
  }
}
