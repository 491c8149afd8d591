// The repository's in-memory master index: blob ID -> where it is stored (format-spec ch. 6).
import type { BlobType } from '../model/ids.js';
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

export class MasterIndex {
  private readonly blobs = new Map<string, BlobLocation>();
  private readonly packs = new Map<string, { type: PackType; size: number }>();
  /** Names of the index objects merged in, minus superseded ones. */
  readonly indexNames = new Set<string>();

  /** Adds loaded index files, honouring `supersedes`. */
  load(files: ReadonlyMap<string, IndexFile>): void {
    const superseded = new Set<string>();
    for (const f of files.values()) for (const s of f.supersedes) superseded.add(s);
    for (const [name, f] of files) {
      if (superseded.has(name)) continue;
      this.indexNames.add(name);
      for (const p of f.packs) this.addPack(p);
    }
  }

  addPack(p: IndexPack): void {
    this.packs.set(p.id, { type: p.type, size: p.size });
    for (const b of p.blobs) {
      if (!this.blobs.has(b.id)) {
        this.blobs.set(b.id, { pack: p.id, packType: p.type, type: b.type, offset: b.offset, length: b.length, rawLength: b.rawLength, compressed: b.compressed });
      }
    }
  }

  has(id: string): boolean {
    return this.blobs.has(id);
  }

  get(id: string): BlobLocation | undefined {
    return this.blobs.get(id);
  }

  pack(id: string): { type: PackType; size: number } | undefined {
    return this.packs.get(id);
  }

  get blobCount(): number {
    return this.blobs.size;
  }

  packIds(): IterableIterator<string> {
    return this.packs.keys();
  }

  entries(): IterableIterator<[string, BlobLocation]> {
    return this.blobs.entries();
  }
}
