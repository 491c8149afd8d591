import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { backup } from '../../src/engine/archiver.js';
import { initRepo, randomBytesSeeded, rm, snap, tempDir } from '../engine/helpers.js';

let root: string;
let repo: string;
// Text: the CLI helper reads stdout as UTF-8.
const content = Buffer.from(`${randomBytesSeeded(16, 7).toString('hex')}\n${'a line of text\n'.repeat(200)}`);

beforeAll(async () => {
  root = await tempDir();
  repo = join(root, 'repo');
  const r = await initRepo(repo);
  const src = join(root, 'src');
  await mkdir(src);
  await writeFile(join(src, 'one.bin'), content);
  await backup(r, { paths: [src] });
  await r.close();
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** The node of `name` found by walking down the snapshot's trees with `cat tree`. */
async function nodeOf(name: string): Promise<{ type: string; content?: string[]; subtree?: string }> {
  let tree = JSON.parse((await snap(['-r', repo, 'cat', 'snapshot', 'latest'])).stdout).tree as string;
  for (;;) {
    const r = await snap(['-r', repo, 'cat', 'tree', tree]);
    expect(r.code).toBe(0);
    const nodes = JSON.parse(r.stdout).nodes as { name: string; type: string; content?: string[]; subtree?: string }[];
    const found = nodes.find((n) => n.name === name);
    if (found) return found;
    expect(nodes).toHaveLength(1); // one directory on the way down to the backed-up one
    tree = nodes[0]!.subtree!;
  }
}

describe('snap cat blob / tree', () => {
  it('prints a tree as JSON and a data blob as its bytes', async () => {
    const file = await nodeOf('one.bin');
    expect(file.type).toBe('file');
    expect(file.content).toHaveLength(1);
    const r = await snap(['-r', repo, 'cat', 'blob', file.content![0]!]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(content.toString());
  });

  it('an ID the repository lacks is not-found (exit 1), not damage; a malformed one or a data blob as tree is a usage error', async () => {
    const file = await nodeOf('one.bin');
    const absent = 'ab'.repeat(32);
    const missing = await snap(['-r', repo, 'cat', 'blob', absent]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`snap: no blob ${absent} in this repository's index\n`);
    const malformed = await snap(['-r', repo, 'cat', 'blob', 'zz']);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain('"zz" is not a blob ID (64 hex digits)');
    const short = await snap(['-r', repo, 'cat', 'tree', file.content![0]!.slice(0, 12)]);
    expect(short.code).toBe(2);
    const notTree = await snap(['-r', repo, 'cat', 'tree', file.content![0]!]);
    expect(notTree.code).toBe(2);
    expect(notTree.stderr).toContain('is a data blob, not a tree');
  });
});
