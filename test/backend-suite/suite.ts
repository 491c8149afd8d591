// The one test suite every Backend implementation must pass (local, memory, S3 on s3rver).
// It checks the contract written in src/backend/backend.ts.
//
//   runBackendSuite('local', async () => ({ backend: new LocalBackend(dir), cleanup: () => rm(dir) }));
//
// make() returns a fresh, empty, not yet created backend; the suite calls create() itself.

import { createHash, randomBytes } from 'node:crypto';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { FILE_TYPES, type Backend, type FileInfo, type FileType, type Handle } from '../../src/backend/backend.js';
import { BackendError, NotFoundError, SnapError } from '../../src/errors.js';

export interface BackendSuiteOptions {
  /** Objects in the "many objects" listing test; > 1000 so S3 listings must paginate. */
  manyObjects?: number;
  /** Size of the large-object test; larger than the S3 part size so it goes up in parts. */
  largeObjectSize?: number;
}

const MiB = 1024 * 1024;

export function runBackendSuite(
  name: string,
  make: () => Promise<{ backend: Backend; cleanup(): Promise<void> }>,
  opts: BackendSuiteOptions = {},
): void {
  const manyObjects = opts.manyObjects ?? 1050;
  const largeSize = opts.largeObjectSize ?? 20 * MiB + 12345;

  describe(`backend suite: ${name}`, () => {
    let backend: Backend;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ backend, cleanup } = await make());
      await backend.create();
    });
    afterEach(async () => {
      await backend.close();
      await cleanup();
    });

    it('create() leaves an empty repository and may be called again', async () => {
      for (const t of FILE_TYPES) expect(await names(backend, t), t).toEqual([]);
      await backend.create();
      const h = handle('index');
      await backend.save(h, Buffer.from('x'));
      await backend.create();
      expect(await names(backend, 'index')).toEqual([h.name]);
      expect(typeof backend.location).toBe('string');
      expect(backend.location.length).toBeGreaterThan(0);
    });

    it('saves and loads every type; each type lists only its own objects', async () => {
      const saved = new Map<FileType, { h: Handle; data: Buffer }>();
      let size = 1;
      for (const t of FILE_TYPES) {
        const h = handle(t);
        const data = randomBytes((size = size * 3 + 7));
        await backend.save(h, data);
        saved.set(t, { h, data });
      }
      for (const [t, { h, data }] of saved) {
        const got = await backend.load(h);
        expect(Buffer.isBuffer(got), t).toBe(true);
        expect(got.equals(data), `${t} round trip`).toBe(true);
        const st = await backend.stat(h);
        expect(st.size, `${t} size`).toBe(data.length);
        expect(st.name, `${t} name`).toBe(h.name);
        expect(await names(backend, t), `${t} listing`).toEqual([h.name]);
      }
    });

    it('loads exactly the requested range', async () => {
      const data = randomBytes(10_000);
      const h = handle('data');
      await backend.save(h, data);
      const cases: Array<[number | undefined, number | undefined]> = [
        [0, 100], // start
        [4321, 1000], // middle
        [9900, 100], // end
        [9000, undefined], // offset to the end
        [undefined, 5], // length from the start
        [0, 10_000], // everything, explicitly
        [0, 0], // zero-length at the start
        [5000, 0], // zero-length in the middle
        [10_000, 0], // zero-length at the end
        [10_000, undefined], // offset == size: empty
        [9999, 1], // last byte
      ];
      for (const [offset, length] of cases) {
        const got = await backend.load(h, { ...(offset !== undefined ? { offset } : {}), ...(length !== undefined ? { length } : {}) });
        const start = offset ?? 0;
        const end = length === undefined ? data.length : start + length;
        expect(got.length, `range ${offset},${length}`).toBe(end - start);
        expect(got.equals(data.subarray(start, end)), `range ${offset},${length}`).toBe(true);
      }
    });

    it('rejects ranges past the end with a permanent BackendError', async () => {
      const h = handle('meta');
      await backend.save(h, randomBytes(1000));
      for (const r of [
        { offset: 990, length: 20 },
        { offset: 1001 },
        { offset: 1001, length: 0 },
        { offset: 2000, length: 10 },
        { offset: 0, length: 1001 },
      ]) {
        const err = await backend.load(h, r).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, JSON.stringify(r)).toBeInstanceOf(BackendError);
        expect((err as BackendError).transient, JSON.stringify(r)).toBe(false);
      }
    });

    it('stat reports the size, including empty objects', async () => {
      for (const size of [0, 1, 4096, 65_537]) {
        const h = handle('snapshot');
        await backend.save(h, randomBytes(size));
        expect((await backend.stat(h)).size).toBe(size);
        expect((await backend.load(h)).length).toBe(size);
      }
    });

    it('lists data and meta objects stored in subdirectories, with sizes', async () => {
      const expected = new Map<string, number>();
      for (const t of ['data', 'meta'] as const) {
        for (const first of ['00', '0f', '3a', 'ff', '3a']) {
          const h = { type: t, name: first + randomBytes(31).toString('hex') };
          const size = 10 + expected.size;
          await backend.save(h, randomBytes(size));
          expected.set(`${t}/${h.name}`, size);
        }
      }
      const got = new Map<string, number>();
      for (const t of ['data', 'meta'] as const) {
        for (const fi of await all(backend, t)) {
          expect(got.has(`${t}/${fi.name}`), `duplicate ${fi.name}`).toBe(false);
          got.set(`${t}/${fi.name}`, fi.size);
        }
      }
      expect(got).toEqual(expected);
    });

    it(`lists ${manyObjects} objects, each exactly once`, { timeout: 60_000 }, async () => {
      const want: string[] = [];
      for (let i = 0; i < manyObjects; i++) want.push(randomBytes(32).toString('hex'));
      await inParallel(want, 32, (n, i) => backend.save({ type: 'data', name: n }, Buffer.from([i & 0xff, 1, 2])));
      const listed = await all(backend, 'data');
      const listedNames = listed.map((f) => f.name);
      expect(listedNames.length).toBe(manyObjects);
      expect(new Set(listedNames).size).toBe(manyObjects);
      expect([...listedNames].sort()).toEqual([...want].sort());
      expect(listed.every((f) => f.size === 3)).toBe(true);
    });

    it('removes objects; afterwards they are gone and removing again is NotFoundError', async () => {
      const a = handle('index');
      const b = handle('index');
      await backend.save(a, Buffer.from('a'));
      await backend.save(b, Buffer.from('b'));
      await backend.remove(a);
      await expect(backend.load(a)).rejects.toBeInstanceOf(NotFoundError);
      await expect(backend.stat(a)).rejects.toBeInstanceOf(NotFoundError);
      await expect(backend.remove(a)).rejects.toBeInstanceOf(NotFoundError);
      expect(await names(backend, 'index')).toEqual([b.name]);
      expect((await backend.load(b)).toString()).toBe('b');
      const c = { type: 'config', name: '' } as const;
      await backend.save(c, Buffer.from('cfg'));
      await backend.remove(c);
      expect(await names(backend, 'config')).toEqual([]);
    });

    it('answers NotFoundError for absent objects of every type', async () => {
      for (const t of FILE_TYPES) {
        const h = handle(t);
        await expect(backend.load(h), `load ${t}`).rejects.toBeInstanceOf(NotFoundError);
        await expect(backend.load(h, { offset: 1, length: 2 }), `ranged load ${t}`).rejects.toBeInstanceOf(NotFoundError);
        await expect(backend.stat(h), `stat ${t}`).rejects.toBeInstanceOf(NotFoundError);
        await expect(backend.remove(h), `remove ${t}`).rejects.toBeInstanceOf(NotFoundError);
      }
      const err = await backend.load(handle('data')).catch((e: unknown) => e);
      expect((err as Error).message).toMatch(/data\/[0-9a-f]{2}\/[0-9a-f]{64}/);
    });

    it('accepts saving the same bytes under the same name again', async () => {
      const h = handle('data');
      const data = randomBytes(3000);
      await backend.save(h, data);
      await backend.save(h, Buffer.from(data));
      expect((await backend.load(h)).equals(data)).toBe(true);
      expect(await names(backend, 'data')).toEqual([h.name]);
      expect((await backend.stat(h)).size).toBe(3000);
    });

    it('replaces config and lock objects whole', async () => {
      const c = { type: 'config', name: '' } as const;
      await backend.save(c, Buffer.from('first version of the config, longer'));
      await backend.save(c, Buffer.from('second'));
      expect((await backend.load(c)).toString()).toBe('second');
      expect((await backend.stat(c)).size).toBe(6);
      expect(await names(backend, 'config')).toEqual(['']);
      const l = handle('lock');
      await backend.save(l, Buffer.from('lock-1'));
      await backend.save(l, Buffer.from('lock-2-refreshed'));
      expect((await backend.load(l)).toString()).toBe('lock-2-refreshed');
    });

    it(`saves and loads a large object (${(largeSize / MiB).toFixed(1)} MiB)`, { timeout: 60_000 }, async () => {
      const data = randomBytes(largeSize);
      const h = handle('data');
      await backend.save(h, data);
      expect((await backend.stat(h)).size).toBe(largeSize);
      const got = await backend.load(h);
      expect(got.length).toBe(largeSize);
      expect(sha256(got)).toBe(sha256(data));
      // Ranges across the 8 MiB and 16 MiB boundaries (S3 part edges) and at the very end.
      for (const [offset, length] of [
        [8 * MiB - 100, 200],
        [16 * MiB - 1, 2],
        [largeSize - 1000, 1000],
      ] as const) {
        expect((await backend.load(h, { offset, length })).equals(data.subarray(offset, offset + length))).toBe(true);
      }
    });

    it('handles concurrent saves and loads', { timeout: 30_000 }, async () => {
      const objs = Array.from({ length: 64 }, (_, i) => ({ h: handle(i % 2 ? 'data' : 'index'), data: randomBytes(1 + i * 997) }));
      await Promise.all(objs.map((o) => backend.save(o.h, o.data)));
      const loaded = await Promise.all(objs.map((o) => backend.load(o.h)));
      loaded.forEach((got, i) => expect(got.equals(objs[i]!.data), `object ${i}`).toBe(true));
      expect((await names(backend, 'data')).length).toBe(32);
      expect((await names(backend, 'index')).length).toBe(32);
    });

    it('keeps stored bytes intact: all byte values, views, and no aliasing with caller buffers', async () => {
      const all256 = Buffer.alloc(256 * 4);
      for (let i = 0; i < all256.length; i++) all256[i] = i & 0xff;
      const h1 = handle('data');
      await backend.save(h1, all256);
      expect((await backend.load(h1)).equals(all256)).toBe(true);

      // A Uint8Array view into a larger buffer: only the view's bytes are stored.
      const big = randomBytes(1000);
      const view = new Uint8Array(big.buffer, big.byteOffset + 100, 300);
      const h2 = handle('meta');
      await backend.save(h2, view);
      expect((await backend.load(h2)).equals(big.subarray(100, 400))).toBe(true);

      // Mutating the caller's buffer after save, or a loaded buffer, changes nothing stored.
      const src = randomBytes(500);
      const copy = Buffer.from(src);
      const h3 = handle('index');
      await backend.save(h3, src);
      src.fill(0);
      const first = await backend.load(h3);
      expect(first.equals(copy)).toBe(true);
      first.fill(1);
      expect((await backend.load(h3)).equals(copy)).toBe(true);
    });

    it('honours an aborted signal', async () => {
      const ac = new AbortController();
      ac.abort();
      const h = handle('data');
      await expect(backend.save(h, Buffer.from('x'), { signal: ac.signal })).rejects.toBeInstanceOf(SnapError);
      await expect(backend.stat(h)).rejects.toBeInstanceOf(NotFoundError);
      await backend.save(h, Buffer.from('y'));
      await expect(backend.load(h, { signal: ac.signal })).rejects.toBeInstanceOf(SnapError);
    });

    it('rejects object names that could escape the repository', async () => {
      for (const bad of ['../../etc/passwd', 'a/b', '.tmp-x', '']) {
        const err = await backend.save({ type: 'key', name: bad }, Buffer.from('x')).catch((e: unknown) => e);
        expect(err, bad).toBeInstanceOf(BackendError);
        expect((err as BackendError).transient, bad).toBe(false);
      }
      expect(await names(backend, 'key')).toEqual([]);
    });
  });
}

// --- helpers ---------------------------------------------------------------------------------

function handle(type: FileType): Handle {
  return { type, name: type === 'config' ? '' : randomBytes(32).toString('hex') };
}

async function all(backend: Backend, type: FileType): Promise<FileInfo[]> {
  const out: FileInfo[] = [];
  for await (const fi of backend.list(type)) out.push(fi);
  return out;
}

async function names(backend: Backend, type: FileType): Promise<string[]> {
  return (await all(backend, type)).map((f) => f.name).sort();
}

function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

async function inParallel<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}
