// MetadataCache on its own: copies are used only when they match their name, and names that are
// not object IDs never become paths (a hostile listing cannot read or delete files elsewhere).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256Hex } from '../../src/crypto/hash.js';
import { MetadataCache } from '../../src/repository/metadata-cache.js';

describe('MetadataCache', () => {
  let dir: string;
  let cache: MetadataCache;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'snap-mcache-'));
    cache = new MetadataCache(join(dir, 'metadata'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('returns a stored copy; drops one that does not match its name', async () => {
    const bytes = Buffer.from('sealed index object');
    const name = sha256Hex(bytes);
    expect(await cache.get('index', name)).toBeUndefined();
    await cache.put('index', name, bytes);
    expect((await cache.get('index', name))?.equals(bytes)).toBe(true);
    expect(await cache.get('snapshot', name)).toBeUndefined();
    writeFileSync(join(dir, 'metadata', 'index', name), 'bit rot');
    expect(await cache.get('index', name)).toBeUndefined();
    expect(existsSync(join(dir, 'metadata', 'index', name))).toBe(false);
  });

  it('retain() removes copies of objects no longer listed, and nothing else', async () => {
    const a = Buffer.from('a');
    const b = Buffer.from('b');
    await cache.put('snapshot', sha256Hex(a), a);
    await cache.put('snapshot', sha256Hex(b), b);
    writeFileSync(join(dir, 'metadata', 'snapshot', 'README'), 'not a copy');
    await cache.retain('snapshot', new Set([sha256Hex(b)]));
    expect(await cache.get('snapshot', sha256Hex(a))).toBeUndefined();
    expect((await cache.get('snapshot', sha256Hex(b)))?.equals(b)).toBe(true);
    expect(readFileSync(join(dir, 'metadata', 'snapshot', 'README'), 'utf8')).toBe('not a copy');
  });

  it('never turns a name that is not an object ID into a path', async () => {
    mkdirSync(join(dir, 'metadata', 'index'), { recursive: true });
    const outside = join(dir, 'precious');
    writeFileSync(outside, 'keep me');
    expect(await cache.get('index', '../../precious')).toBeUndefined();
    await cache.put('index', '../../precious', Buffer.from('overwritten'));
    expect(readFileSync(outside, 'utf8')).toBe('keep me');
  });
});
