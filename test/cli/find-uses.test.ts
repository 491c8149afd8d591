// snap find --blob / --pack: what a lost or damaged object affects, per snapshot.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { backup } from '../../src/engine/archiver.js';
import { walkTree } from '../../src/engine/walk.js';
import { jsonLines } from '../helpers/cli.js';
import { flipBit, initRepo, openRepo, randomBytesSeeded, rm, snap, tempDir } from '../engine/helpers.js';

let root: string;
let repoDir: string;
let src: string;
const snapshots: { id: string; tree: string }[] = [];

beforeAll(async () => {
  root = await tempDir();
  repoDir = join(root, 'repo');
  const repo = await initRepo(repoDir);
  src = join(root, 'src');
  await mkdir(join(src, 'sub'), { recursive: true });
  for (let i = 0; i < 12; i++) await writeFile(join(src, i < 6 ? '' : 'sub', `f${i}`), randomBytesSeeded(30_000, i));
  for (const host of ['web1', 'web2']) {
    const r = await backup(repo, { paths: [src], host });
    snapshots.push({ id: r.id!, tree: r.snapshot.tree });
  }
  await repo.close();
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('snap find --blob / --pack', () => {
  it('--pack lists, in every snapshot, exactly the files with blobs in that pack', async () => {
    const repo = await openRepo(repoDir);
    // An independent answer: every file of the first snapshot, by the packs its blobs are in.
    const byPack = new Map<string, string[]>();
    for await (const e of walkTree(repo, snapshots[0]!.tree)) {
      for (const id of e.node.content ?? []) {
        const pack = repo.index.get(id)!.pack;
        const l = byPack.get(pack) ?? [];
        if (!l.includes(e.path.toString())) l.push(e.path.toString());
        byPack.set(pack, l);
      }
    }
    await repo.close();
    expect(byPack.size).toBeGreaterThan(1); // small packs: the files are spread over several
    const [pack, files] = [...byPack].find(([, l]) => l.some((p) => p.includes('/sub/')))!;
    const r = await snap(['-r', repoDir, '--json', 'find', '--pack', pack.slice(0, 10)]);
    expect(r.code).toBe(0);
    const lines = jsonLines(r.stdout);
    for (const s of snapshots) {
      const mine = lines.filter((l) => l.snapshot.id === s.id);
      expect(mine.map((l) => l.path)).toEqual(files); // in walk order, as walkTree gave them
      for (const l of mine) expect(l).toMatchObject({ type: 'file', uses: [pack] });
    }
    expect(lines).toHaveLength(files.length * 2);

    // The snapshot filters apply; the text output names the pack by its short ID.
    const text = await snap(['-r', repoDir, 'find', '--pack', pack, '--host', 'web2']);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`${files.length} entries in 1 of 1 snapshots`);
    expect(text.stdout).toContain(pack.slice(0, 8));
  });

  it('--blob with a root tree ID finds "/" in the snapshots stored as that tree', async () => {
    const r = await snap(['-r', repoDir, '--json', 'find', '--blob', snapshots[0]!.tree.toUpperCase()]);
    expect(r.code).toBe(0);
    // Both hosts backed up the same files: the same root tree.
    expect(jsonLines(r.stdout).map((l) => [l.snapshot.id, l.path, l.type])).toEqual(snapshots.map((s) => [s.id, '/', 'dir']));
  });

  it('bad IDs and filters that do not go with them: one line, a documented exit code', async () => {
    const cases: [string[], number, RegExp][] = [
      [['find', '--pack', 'zz'], 2, /"zz" is not a pack ID/],
      [['find', '--pack', 'ffffffff'], 1, /no pack with ID ffffffff/],
      [['find', '--blob', 'abcd'], 2, /--blob: "abcd" is not a blob ID \(64 hex digits\)/],
      [['find', 'f1', '--blob', snapshots[0]!.tree], 2, /no name PATTERN or version filter goes with them/],
      [['find', '--pack', 'ffffffff', '--larger', '1K'], 2, /no name PATTERN or version filter/],
    ];
    for (const [args, code, message] of cases) {
      const r = await snap(['-r', repoDir, ...args]);
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
    }
  });

  it('after check finds a damaged data pack, find --pack (pointed to by its hint) lists what it affects', async () => {
    const damaged = join(root, 'damaged');
    await cp(repoDir, damaged, { recursive: true });
    const dir = (await readdir(join(damaged, 'data')))[0]!;
    const pack = (await readdir(join(damaged, 'data', dir)))[0]!;
    await flipBit(join(damaged, 'data', dir, pack));
    const check = await snap(['-r', damaged, 'check', '--read-data']);
    expect(check.code).toBe(1);
    expect(check.stdout).toContain(pack.slice(0, 8));
    expect(check.stdout).toContain('hint: `snap find --pack ID` lists');
    const r = await snap(['-r', damaged, '--json', 'find', '--pack', pack.slice(0, 8)]);
    expect(r.code).toBe(0);
    const lines = jsonLines(r.stdout);
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l.uses).toEqual([pack]);
  });
});
