import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, open, readdir, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { LocalBackend } from '../../src/backend/local.js';
import { BackendError, NotFoundError } from '../../src/errors.js';
import { runBackendSuite } from '../backend-suite/suite.js';
import { residencyUnobservable, residentBytes } from '../helpers/page-cache.js';

runBackendSuite('local', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'snap-local-suite-'));
  return { backend: new LocalBackend(join(dir, 'repo')), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

const name = (c: string) => c.repeat(64).slice(0, 64);

describe('LocalBackend specifics', () => {
  let dir: string;
  let root: string;
  let backend: LocalBackend;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'snap-local-'));
    root = join(dir, 'repo');
    backend = new LocalBackend(root);
    await backend.create();
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates the type directories; data subdirectories on demand', async () => {
    expect((await readdir(root)).sort()).toEqual(['data', 'index', 'keys', 'locks', 'meta', 'snapshots']);
    expect(await readdir(join(root, 'data'))).toEqual([]);
    await backend.save({ type: 'data', name: name('c') }, Buffer.from('x'));
    expect(await readdir(join(root, 'data'))).toEqual(['cc']);
    expect(backend.location).toBe(`local:${root}`);
  });

  it('leaves data packs out of the page cache once saved; metadata stays cached for its readers', async (ctx) => {
    const why = residencyUnobservable(dir);
    if (why) ctx.skip(why);
    const bytes = Buffer.alloc(4 << 20, 1);
    await backend.save({ type: 'data', name: name('a') }, bytes);
    await backend.save({ type: 'meta', name: name('b') }, bytes);
    await backend.save({ type: 'index', name: name('c') }, bytes);
    expect(residentBytes(join(root, 'data', 'aa', name('a')))).toBe(0);
    expect(residentBytes(join(root, 'meta', 'bb', name('b')))).toBe(bytes.length);
    expect(residentBytes(join(root, 'index', name('c')))).toBe(bytes.length);
    expect((await backend.load({ type: 'data', name: name('a') })).equals(bytes)).toBe(true);
  });

  it('leaves no temporary file visible after save', async () => {
    await backend.save({ type: 'data', name: name('a') }, Buffer.from('payload'));
    await backend.save({ type: 'key', name: name('b') }, Buffer.from('key'));
    await backend.save({ type: 'config', name: '' }, Buffer.from('cfg'));
    await backend.save({ type: 'config', name: '' }, Buffer.from('cfg2'));
    expect(await readdir(join(root, 'data', 'aa'))).toEqual([name('a')]);
    expect(await readdir(join(root, 'keys'))).toEqual([name('b')]);
    expect((await readdir(root)).filter((f) => f.startsWith('.tmp-'))).toEqual([]);
  });

  it('list ignores .tmp-* files (interrupted saves)', async () => {
    await backend.save({ type: 'data', name: name('d') }, Buffer.from('x'));
    await writeFile(join(root, 'data', 'dd', `.tmp-${name('e')}-123456`), 'partial');
    await writeFile(join(root, 'keys', `.tmp-${name('f')}-abcdef`), 'partial');
    const data: string[] = [];
    for await (const fi of backend.list('data')) data.push(fi.name);
    const keys: string[] = [];
    for await (const fi of backend.list('key')) keys.push(fi.name);
    expect(data).toEqual([name('d')]);
    expect(keys).toEqual([]);
  });

  it('stages a pack in a temporary file: invisible until committed, then an object like any other', async () => {
    const staged = await backend.stage('data');
    const parts = [Buffer.from('head'), Buffer.alloc(0), Buffer.alloc(3 << 20, 7), ...Array.from({ length: 2000 }, (_, i) => Buffer.from([i & 0xff]))];
    await staged.append(parts.slice(0, 3));
    await staged.append(parts.slice(3));
    const listed = async () => {
      const names: string[] = [];
      for await (const fi of backend.list('data')) names.push(fi.name);
      return names;
    };
    expect(await listed()).toEqual([]);
    await staged.commit(name('e'));
    expect(await listed()).toEqual([name('e')]);
    expect((await backend.load({ type: 'data', name: name('e') })).equals(Buffer.concat(parts))).toBe(true);
    expect(await readdir(join(root, 'data'))).toEqual(['ee']);
    await expect(staged.append([Buffer.from('late')])).rejects.toBeInstanceOf(BackendError);
  });

  it('discarding a staged file removes it', async () => {
    const staged = await backend.stage('meta');
    await staged.append([Buffer.from('partial pack')]);
    expect((await readdir(join(root, 'meta'))).filter((f) => f.startsWith('.tmp-'))).toHaveLength(1);
    await staged.discard();
    expect(await readdir(join(root, 'meta'))).toEqual([]);
  });

  it('reads only the requested range (an 8 GiB sparse file cannot be read whole into a Buffer)', async () => {
    const n = name('9');
    const path = join(root, 'data', '99', n);
    await mkdir(join(root, 'data', '99'));
    const fh = await open(path, 'w');
    const offset = 6 * 1024 ** 3;
    await fh.truncate(8 * 1024 ** 3);
    await fh.write(Buffer.from('needle'), 0, 6, offset);
    await fh.close();
    const got = await backend.load({ type: 'data', name: n }, { offset, length: 6 });
    expect(got.toString()).toBe('needle');
    expect((await backend.stat({ type: 'data', name: n })).size).toBe(8 * 1024 ** 3);
  });

  it('maps ENOENT to NotFoundError naming the object path', async () => {
    const err = await backend.load({ type: 'index', name: name('1') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toContain(`index/${name('1')}`);
    expect((err as Error).message).toContain(root);
  });

  it('refuses to save into a repository that was never created', async () => {
    const b = new LocalBackend(join(dir, 'missing'));
    const err = await b.save({ type: 'key', name: name('2') }, Buffer.from('x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect((err as BackendError).transient).toBe(false);
    expect((err as Error).message).toMatch(/does not exist/);
    await expect(readdir(join(dir, 'missing'))).rejects.toThrow(/ENOENT/);
  });

  const unwritable = makeUnwritableStrategy();
  it.skipIf(!unwritable)('a permission error is a permanent BackendError with a clear message', async () => {
    const keys = join(root, 'keys');
    await unwritable!.lock(keys);
    try {
      const err = await backend.save({ type: 'key', name: name('3') }, Buffer.from('x')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BackendError);
      expect((err as BackendError).transient).toBe(false);
      expect((err as Error).message).toMatch(/permission denied/);
      expect((err as Error).message).toContain('keys/');
      expect(await readdir(keys)).toEqual([]);
    } finally {
      await unwritable!.unlock(keys);
    }
  });
});

/**
 * chmod does not stop root, so as root use the immutable attribute (EPERM) when the file system
 * supports it; otherwise chmod (EACCES). Undefined when neither works here.
 */
function makeUnwritableStrategy(): { lock(d: string): Promise<void>; unlock(d: string): Promise<void> } | undefined {
  if (process.getuid?.() !== 0) {
    return { lock: (d) => chmod(d, 0o500), unlock: (d) => chmod(d, 0o700) };
  }
  try {
    execFileSync('chattr', ['--help'], { stdio: 'ignore' });
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return undefined;
  }
  return {
    lock: async (d) => void execFileSync('chattr', ['+i', d], { stdio: 'ignore' }),
    unlock: async (d) => void execFileSync('chattr', ['-i', d], { stdio: 'ignore' }),
  };
}
