// findUses (snap find --blob/--pack): which entries of a snapshot use given blobs or packs,
// against an independent walk of the same trees.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { backup } from '../../src/engine/archiver.js';
import { findUses, walkTree } from '../../src/engine/walk.js';
import type { Repository } from '../../src/repository/repository.js';
import type { TreeNode } from '../../src/model/tree.js';
import { initRepo, randomBytesSeeded, rm, tempDir } from './helpers.js';

let root: string;
let repo: Repository;
let src: string;
const trees: string[] = [];

beforeAll(async () => {
  root = await tempDir();
  repo = await initRepo(join(root, 'repo'));
  src = join(root, 'src');
  await mkdir(join(src, 'one', 'deep'), { recursive: true });
  await mkdir(join(src, 'two'));
  const shared = randomBytesSeeded(20_000, 1);
  await writeFile(join(src, 'one', 'a'), shared);
  await writeFile(join(src, 'one', 'deep', 'b'), randomBytesSeeded(50_000, 2));
  await writeFile(join(src, 'two', 'c'), shared); // the same blobs as one/a
  await writeFile(join(src, 'two', 'd'), randomBytesSeeded(3_000, 3));
  trees.push((await backup(repo, { paths: [src] })).snapshot.tree);
  // The second snapshot changes two/d only: one/ is the same tree in both.
  await writeFile(join(src, 'two', 'd'), randomBytesSeeded(3_000, 4));
  trees.push((await backup(repo, { paths: [src] })).snapshot.tree);
});
afterAll(async () => {
  await repo.close();
  await rm(root, { recursive: true, force: true });
});

/** Every entry of a snapshot by its path below src ("one/a"). */
async function entries(tree: string): Promise<Map<string, TreeNode>> {
  const out = new Map<string, TreeNode>();
  for await (const e of walkTree(repo, tree)) {
    const p = e.path.toString();
    if (p.startsWith(src + '/')) out.set(p.slice(src.length + 1), e.node);
  }
  return out;
}

const rel = (uses: { path: Buffer }[]) => uses.map((u) => u.path.toString().slice(src.length + 1));

/** Counts the trees read while `fn` runs. */
async function treesRead(fn: () => Promise<unknown>): Promise<number> {
  const load = repo.loadTree.bind(repo);
  let n = 0;
  repo.loadTree = (id) => {
    n++;
    return load(id);
  };
  try {
    await fn();
  } finally {
    repo.loadTree = load;
  }
  return n;
}

describe('findUses', () => {
  it('finds every file using a blob, in walk order, shared content included', async () => {
    const e = await entries(trees[0]!);
    const blob = e.get('one/a')!.content![0]!;
    const uses = await findUses(repo, trees[0]!, (id) => (id === blob ? id : undefined), new Set());
    expect(rel(uses)).toEqual(['one/a', 'two/c']);
    for (const u of uses) expect(u.uses).toEqual([blob]);
  });

  it('finds the files with blobs in a pack: exactly those an independent walk finds, each pack named once', async () => {
    const e = await entries(trees[1]!);
    const pack = repo.index.get(e.get('one/deep/b')!.content![0]!)!.pack;
    const inPack = (id: string) => (repo.index.get(id)?.pack === pack ? pack : undefined);
    const expected = [...e].filter(([, n]) => n.type === 'file' && (n.content ?? []).some((id) => inPack(id))).map(([p]) => p);
    expect(expected).toContain('one/deep/b');
    const uses = await findUses(repo, trees[1]!, inPack, new Set());
    expect(rel(uses).sort()).toEqual(expected.sort());
    for (const u of uses) expect(u.uses).toEqual([pack]);
  });

  it('a tree ID finds its directory, whose tree is not read; trees found clean are not read again', async () => {
    const e = await entries(trees[0]!);
    const deep = e.get('one/deep')!.subtree!;
    let uses: Awaited<ReturnType<typeof findUses>> = [];
    // Read: the root, the directories down to src, src, one (deep is the match) and two.
    const depth = src.split('/').length - 1;
    const read = await treesRead(async () => (uses = await findUses(repo, trees[0]!, (id) => (id === deep ? id : undefined), new Set())));
    expect(rel(uses)).toEqual(['one/deep']);
    expect(uses[0]!.node.type).toBe('dir');
    expect(read).toBe(depth + 3);

    // A blob of two/d in the first snapshot only: the first walk finds one/ clean, and the second
    // snapshot, which shares it, does not read it (nor what is under it) again.
    const d = e.get('two/d')!.content![0]!;
    const clean = new Set<string>();
    const first = await findUses(repo, trees[0]!, (id) => (id === d ? id : undefined), clean);
    expect(rel(first)).toEqual(['two/d']);
    expect(clean.has(e.get('one')!.subtree!)).toBe(true);
    expect(clean.has(e.get('two')!.subtree!)).toBe(false);
    let second: typeof first = [];
    const readAgain = await treesRead(async () => (second = await findUses(repo, trees[1]!, (id) => (id === d ? id : undefined), clean)));
    expect(second).toEqual([]);
    expect(readAgain).toBe(depth + 2); // the root down to src, src, and the changed two/
  });

  it('a snapshot whose root tree matches is reported as "/" and nothing is read', async () => {
    const read = await treesRead(async () => {
      const uses = await findUses(repo, trees[1]!, (id) => (id === trees[1] ? 'x' : undefined), new Set());
      expect(uses.map((u) => [u.path.toString(), u.uses])).toEqual([['/', ['x']]]);
    });
    expect(read).toBe(0);
  });
});
