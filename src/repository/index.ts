// The repository's in-memory master index: blob ID -> where it is stored (format-spec ch. 6).
//
// Kept in flat typed arrays, not a Map of objects: about 60 bytes per blob instead of ~250, and
// nothing for the garbage collector to trace. A repository of a few TB holds millions of blobs,
// and every backup and restore loads all of them before its first read.
import { ID_BYTES, type BlobType } from '../model/ids.js';
import type { IndexFile, IndexPack, PackType } from '../format/index.js';

export interface BlobLocation {
  pack: string;
  packType: PackType;
  type: BlobType;
  offset: number;
  length: number;
  rawLength: number;
  compressed: boolean;
}

/** The index as flat columns (format-spec ch. 17): what the index cache stores. */
export interface IndexColumns {
  /** Index objects merged in: in use (true) or superseded by another (false). */
  names: Map<string, boolean>;
  /** The repair marks of those in use (ch. 6). */
  repairMarks: string[];
  packs: { id: string; type: PackType; size: number }[];
  /** Blob i's raw ID is ids[8i..8i+7]; the other columns have one value per blob. */
  ids: Int32Array;
  packOf: Uint32Array;
  offsets: Float64Array;
  lengths: Uint32Array;
  rawLengths: Uint32Array;
  flags: Uint8Array;
}

const ID_WORDS = ID_BYTES / 4;
const TREE = 1;
const COMPRESSED = 2;
const INITIAL_BLOBS = 1024;

export interface IndexTotals {
  data: { count: number; rawBytes: number; storedBytes: number };
  tree: { count: number; rawBytes: number; storedBytes: number };
  packs: Record<PackType, { count: number; bytes: number }>;
}

export class MasterIndex {
  /** Names of the index objects merged in, minus superseded ones. */
  readonly indexNames = new Set<string>();
  /** Names of index objects that were loaded but are superseded by another. */
  readonly supersededNames = new Set<string>();
  /** The repair marks of the index objects in use (ch. 6): what the directory cache compares. */
  readonly repairMarks = new Set<string>();
  private readonly packs: { id: string; type: PackType; size: number }[] = [];
  private readonly packNumbers = new Map<string, number>();

  // Blob e: ID bytes at ids[32e..], the rest at [e] of each array, in the order they were added.
  private count = 0;
  private ids: Int32Array = new Int32Array(INITIAL_BLOBS * ID_WORDS);
  private packOf: Uint32Array = new Uint32Array(INITIAL_BLOBS);
  private offsets: Float64Array = new Float64Array(INITIAL_BLOBS);
  private lengths: Uint32Array = new Uint32Array(INITIAL_BLOBS);
  private rawLengths: Uint32Array = new Uint32Array(INITIAL_BLOBS);
  private flags: Uint8Array = new Uint8Array(INITIAL_BLOBS);
  /**
   * Open addressing with linear probing: blob number + 1, 0 for a free slot. At most half full.
   * IDs are keyed hashes, so their first word is already uniform and serves as the hash.
   */
  private table = new Int32Array(INITIAL_BLOBS * 2);
  /** The ID being looked up, decoded from hex. */
  private readonly probe = Buffer.alloc(ID_BYTES);
  private readonly probeWords = new Int32Array(this.probe.buffer, this.probe.byteOffset, ID_WORDS);

  /** Adds loaded index files, honouring `supersedes`. */
  load(files: ReadonlyMap<string, IndexFile>): void {
    const superseded = new Set<string>();
    for (const f of files.values()) for (const s of f.supersedes) superseded.add(s);
    let blobs = 0;
    for (const f of files.values()) for (const p of f.packs) blobs += p.blobs.length;
    this.reserve(this.count + blobs);
    for (const [name, f] of files) {
      if (superseded.has(name)) {
        this.supersededNames.add(name);
        continue;
      }
      this.indexNames.add(name);
      if (f.repairMark !== undefined) this.repairMarks.add(f.repairMark);
      for (const p of f.packs) this.addPack(p);
    }
  }

  /** The whole index as columns: views of its arrays, valid until something is added. */
  columns(): IndexColumns {
    const n = this.count;
    const names = new Map<string, boolean>();
    for (const name of this.indexNames) names.set(name, true);
    for (const name of this.supersededNames) names.set(name, false);
    return {
      names,
      repairMarks: [...this.repairMarks],
      packs: this.packs.map((p) => ({ ...p })),
      ids: this.ids.subarray(0, n * ID_WORDS),
      packOf: this.packOf.subarray(0, n),
      offsets: this.offsets.subarray(0, n),
      lengths: this.lengths.subarray(0, n),
      rawLengths: this.rawLengths.subarray(0, n),
      flags: this.flags.subarray(0, n),
    };
  }

  /** Fills an empty index from columns (the index cache); the columns are taken, not copied. */
  restore(c: IndexColumns): void {
    if (this.count > 0 || this.packs.length > 0) throw new Error('MasterIndex.restore: the index is not empty');
    for (const [name, inUse] of c.names) (inUse ? this.indexNames : this.supersededNames).add(name);
    for (const mark of c.repairMarks) this.repairMarks.add(mark);
    for (const p of c.packs) {
      this.packNumbers.set(p.id, this.packs.length);
      this.packs.push({ id: p.id, type: p.type, size: p.size });
    }
    this.ids = c.ids;
    this.packOf = c.packOf;
    this.offsets = c.offsets;
    this.lengths = c.lengths;
    this.rawLengths = c.rawLengths;
    this.flags = c.flags;
    this.count = c.packOf.length;
    this.rehash(this.tableSizeFor(this.count), this.count);
  }

  /** Adds a pack and its blobs; a blob already indexed keeps its first location. */
  addPack(p: IndexPack): void {
    let pack = this.packNumbers.get(p.id);
    if (pack === undefined) {
      pack = this.packs.length;
      this.packs.push({ id: p.id, type: p.type, size: p.size });
      this.packNumbers.set(p.id, pack);
    }
    for (const b of p.blobs) {
      if (!this.decode(b.id)) throw new Error(`index: bad blob ID ${JSON.stringify(b.id)} in pack ${p.id}`);
      if (this.lookup() >= 0) continue;
      const e = this.append();
      this.ids.set(this.probeWords, e * ID_WORDS);
      this.packOf[e] = pack;
      this.offsets[e] = b.offset;
      this.lengths[e] = b.length;
      this.rawLengths[e] = b.rawLength;
      this.flags[e] = (b.type === 'tree' ? TREE : 0) | (b.compressed ? COMPRESSED : 0);
      this.insert(e);
    }
  }

  has(id: string): boolean {
    return this.find(id) >= 0;
  }

  get(id: string): BlobLocation | undefined {
    const e = this.find(id);
    if (e < 0) return undefined;
    const pack = this.packs[this.packOf[e]!]!;
    const flags = this.flags[e]!;
    return {
      pack: pack.id,
      packType: pack.type,
      type: flags & TREE ? 'tree' : 'data',
      offset: this.offsets[e]!,
      length: this.lengths[e]!,
      rawLength: this.rawLengths[e]!,
      compressed: (flags & COMPRESSED) !== 0,
    };
  }

  /** The IDs of the packs the index describes. */
  packIds(): string[] {
    return this.packs.map((p) => p.id);
  }

  /** A pack the index describes: its ID, type and size (a copy). */
  pack(id: string): { id: string; type: PackType; size: number } | undefined {
    const n = this.packNumbers.get(id);
    return n === undefined ? undefined : { ...this.packs[n]! };
  }

  /** Blobs (each ID once: count, raw and stored bytes) by type, and packs (count and bytes) by type. */
  totals(): IndexTotals {
    const blobs = () => ({ count: 0, rawBytes: 0, storedBytes: 0 });
    const t: IndexTotals = { data: blobs(), tree: blobs(), packs: { data: { count: 0, bytes: 0 }, meta: { count: 0, bytes: 0 } } };
    for (let e = 0; e < this.count; e++) {
      const k = this.flags[e]! & TREE ? t.tree : t.data;
      k.count++;
      k.rawBytes += this.rawLengths[e]!;
      k.storedBytes += this.lengths[e]!;
    }
    for (const p of this.packs) {
      t.packs[p.type].count++;
      t.packs[p.type].bytes += p.size;
    }
    return t;
  }

  get blobCount(): number {
    return this.count;
  }

  private find(id: string): number {
    return this.decode(id) ? this.lookup() : -1;
  }

  /** Puts the ID into `probe`; false if it is not 64 hex digits. */
  private decode(id: string): boolean {
    return id.length === ID_BYTES * 2 && this.probe.write(id, 'hex') === ID_BYTES;
  }

  /** The number of the blob whose ID is in `probe`, or -1. */
  private lookup(): number {
    const w = this.probeWords;
    const mask = this.table.length - 1;
    for (let slot = w[0]! & mask; ; slot = (slot + 1) & mask) {
      const e = this.table[slot]! - 1;
      if (e < 0) return -1;
      const at = e * ID_WORDS;
      const ids = this.ids;
      if (ids[at] === w[0] && ids[at + 1] === w[1] && ids[at + 2] === w[2] && ids[at + 3] === w[3] &&
          ids[at + 4] === w[4] && ids[at + 5] === w[5] && ids[at + 6] === w[6] && ids[at + 7] === w[7]) {
        return e;
      }
    }
  }

  /** Makes room for one more blob and returns its number; the caller fills it in, then insert(). */
  private append(): number {
    if (this.count === this.packOf.length) this.reserve(Math.max(INITIAL_BLOBS, this.count * 2));
    return this.count++;
  }

  /** Grows the arrays to hold n blobs, all at once when the index is loaded. */
  private reserve(n: number): void {
    if (n > this.packOf.length) {
      this.ids = grow(this.ids, n * ID_WORDS);
      this.packOf = grow(this.packOf, n);
      this.offsets = grow(this.offsets, n);
      this.lengths = grow(this.lengths, n);
      this.rawLengths = grow(this.rawLengths, n);
      this.flags = grow(this.flags, n);
    }
    const size = this.tableSizeFor(n);
    if (size > this.table.length) this.rehash(size, this.count);
  }

  /** Table slots for n blobs: at least twice as many, a power of two. */
  private tableSizeFor(n: number): number {
    let size = this.table.length;
    while (n * 2 > size) size *= 2;
    return size;
  }

  /** Puts blob e, the latest one appended, into the hash table. */
  private insert(e: number): void {
    if ((e + 1) * 2 > this.table.length) this.rehash(this.table.length * 2, e);
    this.place(e);
  }

  /** A new table of `size` slots holding blobs 0..placed-1. */
  private rehash(size: number, placed: number): void {
    this.table = new Int32Array(size);
    for (let i = 0; i < placed; i++) this.place(i);
  }

  private place(e: number): void {
    const mask = this.table.length - 1;
    let slot = this.ids[e * ID_WORDS]! & mask;
    while (this.table[slot] !== 0) slot = (slot + 1) & mask;
    this.table[slot] = e + 1;
  }
}

function grow<T extends Int32Array | Uint32Array | Float64Array | Uint8Array>(a: T, length: number): T {
  const b = new (a.constructor as new (n: number) => T)(length);
  b.set(a);
  return b;
}
