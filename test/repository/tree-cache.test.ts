// The repository's cache of decoded trees: concurrent loads (the archiver prefetches parent trees)
// share one copy, and the cache stays bounded by nodes.
import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { backup } from '../../src/engine/archiver.js';
import { initRepo, openRepo, rm, tempDir, writeTree } from '../engine/helpers.js';

describe('tree cache', () => {
  let root: string;
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('two concurrent loads of one tree give the same object', async () => {
    root = await tempDir();
    const repo0 = await initRepo(join(root, 'repo'));
    await writeTree(join(root, 'src'), 1);
    const { id } = await backup(repo0, { paths: [join(root, 'src')] });
    await repo0.close();
    const repo = await openRepo(join(root, 'repo'));
    const tree = (await repo.loadSnapshot(id!)).tree;
    const [a, b] = await Promise.all([repo.loadTree(tree), repo.loadTree(tree)]);
    expect(a).toBe(b);
    expect(await repo.loadTree(tree)).toBe(a);
    await repo.close();
  });
});
