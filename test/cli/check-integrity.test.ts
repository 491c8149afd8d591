import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { backup } from '../../src/engine/archiver.js';
import { flipBit, initRepo, listFiles, rm, snap, tempDir, writeTree } from '../engine/helpers.js';

let root: string;
let template: string;

beforeAll(async () => {
  root = await tempDir();
  template = join(root, 'template');
  const repo = await initRepo(template);
  const src = join(root, 'src');
  for (let v = 0; v < 3; v++) {
    await writeTree(src, v);
    await backup(repo, { paths: [src], time: new Date(Date.UTC(2024, 0, 1 + v)) });
  }
  await repo.close();
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function copy(name: string): Promise<string> {
  const d = join(root, name);
  await cp(template, d, { recursive: true });
  return d;
}

describe('snap check', () => {
  it('passes on an intact repository, with and without --read-data', async () => {
    const repo = await copy('ok');
    for (const extra of [[], ['--read-data'], ['--read-data-subset', '1/3'], ['--read-data-subset', '50%']]) {
      const r = await snap(['-r', repo, 'check', ...extra]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('no errors were found');
    }
    const j = JSON.parse((await snap(['-r', repo, '--json', 'check', '--read-data'])).stdout);
    expect(j.ok).toBe(true);
    expect(j.blobsVerified).toBeGreaterThan(10);
    expect(j.packsRead).toBe(j.packs);
  });

  it('names a flipped bit in a data pack (with --read-data), and the default check reads headers only', async () => {
    const repo = await copy('datapack');
    const packs = await listFiles(join(repo, 'data'));
    const victim = packs[0]!;
    await flipBit(victim, 100);
    const r = await snap(['-r', repo, 'check', '--read-data']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`error: data/${basename(victim).slice(0, 2)}/${basename(victim)}: content does not match its name`);
    expect(r.stdout).toMatch(new RegExp(`error: data blob [0-9a-f]{64} in data/../${basename(victim)}: authentication failed`));
    // Without read-data the blob body is not read, but the header is: still consistent.
    expect((await snap(['-r', repo, 'check'])).code).toBe(0);
  });

  it('names a flipped bit in a pack header without --read-data', async () => {
    const repo = await copy('header');
    const victim = (await listFiles(join(repo, 'data')))[1]!;
    const { size } = await import('node:fs/promises').then((f) => f.stat(victim));
    await flipBit(victim, size - 10);
    const r = await snap(['-r', repo, 'check']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`error: data/${basename(victim).slice(0, 2)}/${basename(victim)}: pack header authentication failed`);
  });

  it('names a flipped bit in a meta pack, an index object and a snapshot object, all in one run', async () => {
    const repo = await copy('meta-index-snap');
    const index = (await listFiles(join(repo, 'index')))[0]!;
    // The damaged meta pack must be named by another index: a pack only the damaged index names is
    // (rightly) reported as unreferenced, not as damaged.
    const cat = await snap(['-r', repo, '--json', 'cat', 'index', basename(index)]);
    const named = (JSON.parse(cat.stdout) as { packs: { id: string }[] }).packs.map((p) => p.id);
    const meta = (await listFiles(join(repo, 'meta'))).find((m) => !named.includes(basename(m)))!;
    expect(meta).toBeDefined();
    const snapObj = (await listFiles(join(repo, 'snapshots')))[0]!;
    await flipBit(meta);
    await flipBit(index);
    await flipBit(snapObj);
    const r = await snap(['-r', repo, 'check']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`error: meta/${basename(meta).slice(0, 2)}/${basename(meta)}: content does not match its name`);
    expect(r.stdout).toContain(`error: index/${basename(index)}: content does not match its name`);
    expect(r.stdout).toContain(`error: snapshots/${basename(snapObj)}: content does not match its name`);
  });

  it('names a pack missing from the repository and reports unreferenced packs as info only', async () => {
    const repo = await copy('missing');
    const packs = await listFiles(join(repo, 'data'));
    await rm(packs[0]!);
    const r = await snap(['-r', repo, 'check']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`error: data/${basename(packs[0]!).slice(0, 2)}/${basename(packs[0]!)}: named in the index but missing`);
    expect(r.stdout).toMatch(/error: data blob [0-9a-f]{64}: .*not in the index|error: data\/.*missing/);

    const repo2 = await copy('unref');
    // An index removed: its packs become unreferenced (info) and the snapshots' blobs missing (errors).
    const idx = await listFiles(join(repo2, 'index'));
    await rm(idx[0]!);
    const r2 = await snap(['-r', repo2, 'check']);
    expect(r2.stdout).toMatch(/info: (data|meta)\/..\/[0-9a-f]{64}: not referenced by any index/);
    expect(r2.code).toBe(1);
    expect(r2.stdout).toMatch(/error: (tree|data blob) [0-9a-f]{64}: used by snapshots\//);
  });

  it('rejects bad --read-data-subset values with exit code 2', async () => {
    const repo = await copy('usage');
    for (const bad of ['4/3', 'x', '101%']) {
      const r = await snap(['-r', repo, 'check', '--read-data-subset', bad]);
      expect(r.code).toBe(2);
    }
  });
});
