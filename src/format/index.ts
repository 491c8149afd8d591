// Index objects (format-spec ch. 6).
import { randomBytes } from 'node:crypto';
import { isId } from '../model/ids.js';
import { FLAG_ZSTD, type PackEntry } from './pack.js';

export type PackType = 'data' | 'meta';

/** An index lists the same facts per blob as the pack header does. */
export type IndexBlob = PackEntry;

export interface IndexPack {
  id: string;
  type: PackType;
  size: number;
  blobs: IndexBlob[];
}

export interface IndexFile {
  supersedes: string[];
  /** Set by a rewrite of the index that may have dropped blobs snapshots use (ch. 6). */
  repairMark?: string;
  packs: IndexPack[];
}

/**
 * The repair mark of an index object that supersedes those in use (ch. 6): a fresh one when blobs
 * a snapshot may use were dropped or the marks in use differ, else the one in use, if any.
 */
export function nextRepairMark(dropped: boolean, marksInUse: ReadonlySet<string>): string | undefined {
  if (dropped || marksInUse.size > 1) return randomBytes(32).toString('hex');
  return marksInUse.values().next().value;
}

export function indexToJson(f: IndexFile): unknown {
  return {
    version: 1,
    supersedes: f.supersedes,
    ...(f.repairMark !== undefined ? { repair_mark: f.repairMark } : {}),
    packs: f.packs.map((p) => ({
      id: p.id,
      type: p.type,
      size: p.size,
      blobs: p.blobs.map((b) => [b.id, b.type === 'data' ? 0 : 1, b.offset, b.length, b.rawLength, b.compressed ? FLAG_ZSTD : 0]),
    })),
  };
}

/** Throws Error with a reason on a malformed document; the caller names the object. */
export function indexFromJson(doc: Record<string, unknown>): IndexFile {
  const supersedes = doc.supersedes ?? [];
  if (!Array.isArray(supersedes) || !supersedes.every(isId)) throw new Error('bad supersedes list');
  const repairMark = doc.repair_mark;
  if (repairMark !== undefined && !isId(repairMark)) throw new Error('bad repair mark');
  if (!Array.isArray(doc.packs)) throw new Error('no packs list');
  const packs = doc.packs.map((p: Record<string, unknown>): IndexPack => {
    if (!isId(p.id) || (p.type !== 'data' && p.type !== 'meta') || typeof p.size !== 'number' || !Array.isArray(p.blobs)) {
      throw new Error('bad pack entry');
    }
    return {
      id: p.id,
      type: p.type,
      size: p.size,
      blobs: p.blobs.map((b: unknown[]): IndexBlob => {
        const [id, type, offset, length, rawLength, flags] = b as [unknown, unknown, unknown, unknown, unknown, unknown];
        if (!isId(id) || (type !== 0 && type !== 1) || typeof offset !== 'number' || typeof length !== 'number' || typeof rawLength !== 'number' || typeof flags !== 'number') {
          throw new Error(`bad blob entry in pack ${String(p.id)}`);
        }
        return { id, type: type === 0 ? 'data' : 'tree', offset, length, rawLength, compressed: (flags & FLAG_ZSTD) !== 0 };
      }),
    };
  });
  return { supersedes, ...(repairMark !== undefined ? { repairMark } : {}), packs };
}
