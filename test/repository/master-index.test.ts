// The master index in flat arrays with its own hash table: every blob added is found with its
// location, through the table's growth, and nothing else is found.
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { MasterIndex } from '../../src/repository/index.js';
import type { IndexFile, IndexPack } from '../../src/format/index.js';

const id = (s: string): string => createHash('sha256').update(s).digest('hex');

function pack(name: string, blobs: number, from = 0, type: 'data' | 'meta' = 'data'): IndexPack {
  return {
    id: id(`pack ${name}`),
    type,
    size: 1000 + blobs,
    blobs: Array.from({ length: blobs }, (_, i) => ({
      id: id(`blob ${from + i}`),
      type: type === 'data' ? ('data' as const) : ('tree' as const),
      // Offsets past 2^32 must survive: a pack may be that large.
      offset: i * 5_000_000_000 + 7,
      length: 40 + i,
      rawLength: 4_000_000_000 + i,
      compressed: i % 2 === 1,
    })),
  };
}

describe('MasterIndex', () => {
  it('finds every blob it was given, with its location, across growth of its arrays and table', () => {
    const index = new MasterIndex();
    const packs = [pack('a', 3000), pack('b', 2000, 3000, 'meta'), pack('c', 10, 5000)];
    for (const p of packs) index.addPack(p);
    expect(index.blobCount).toBe(5010);
    for (const p of packs) {
      for (const b of p.blobs) {
        expect(index.get(b.id)).toEqual({ pack: p.id, packType: p.type, type: b.type, offset: b.offset, length: b.length, rawLength: b.rawLength, compressed: b.compressed });
      }
    }
    expect(index.pack(packs[1]!.id)).toEqual({ id: packs[1]!.id, type: 'meta', size: packs[1]!.size });
    expect(index.has(id('blob 5010'))).toBe(false);
    expect(index.get(id('blob 5010'))).toBeUndefined();
    expect(index.pack(id('pack z'))).toBeUndefined();
  });

  it('keeps the first location of a blob stored twice, and finds nothing for malformed IDs', () => {
    const index = new MasterIndex();
    const first = pack('a', 5);
    const second = pack('b', 5);
    index.addPack(first);
    index.addPack(second);
    expect(index.blobCount).toBe(5);
    expect(index.get(first.blobs[3]!.id)!.pack).toBe(first.id);
    for (const bad of ['', 'xyz', first.blobs[0]!.id.slice(1), `${first.blobs[0]!.id}00`, 'g'.repeat(64)]) {
      expect(index.has(bad)).toBe(false);
    }
    expect(() => index.addPack({ ...first, blobs: [{ ...first.blobs[0]!, id: 'not an id' }] })).toThrow(/bad blob ID/);
  });

  it('honours supersedes when loading index files, and remembers which names it merged', () => {
    const files = new Map<string, IndexFile>([
      [id('index 1'), { supersedes: [], packs: [pack('old', 4)] }],
      [id('index 2'), { supersedes: [id('index 1')], packs: [pack('new', 2)] }],
    ]);
    const index = new MasterIndex();
    index.load(files);
    expect([...index.indexNames]).toEqual([id('index 2')]);
    expect([...index.supersededNames]).toEqual([id('index 1')]);
    expect(index.blobCount).toBe(2);
    expect(index.get(id('blob 0'))!.pack).toBe(id('pack new'));
    expect(index.has(id('blob 3'))).toBe(false);
  });

  it('restores from its columns to an index that answers the same, and grows from there', () => {
    const index = new MasterIndex();
    index.load(new Map([[id('index 1'), { supersedes: [], packs: [pack('a', 700), pack('b', 300, 700, 'meta')] }]]));
    const copy = new MasterIndex();
    const c = index.columns();
    copy.restore({ ...c, ids: c.ids.slice(), packOf: c.packOf.slice(), offsets: c.offsets.slice(), lengths: c.lengths.slice(), rawLengths: c.rawLengths.slice(), flags: c.flags.slice() });
    expect(copy.blobCount).toBe(1000);
    expect([...copy.indexNames]).toEqual([id('index 1')]);
    for (let i = 0; i < 1000; i++) expect(copy.get(id(`blob ${i}`))).toEqual(index.get(id(`blob ${i}`)));
    const more = pack('c', 2000, 1000);
    copy.addPack(more);
    expect(copy.get(id('blob 2999'))!.pack).toBe(more.id);
    expect(copy.get(id('blob 5'))!.pack).toBe(id('pack a'));
    expect(() => copy.restore(c)).toThrow(/not empty/);
  });
});
