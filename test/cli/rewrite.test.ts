// snap rewrite through the compiled CLI: a file backed up by mistake leaves the snapshots that hold
// it. A dry run changes nothing; a rewrite saves new snapshots (same time and tags, `original`
// set) whose trees lack exactly the matched entries; --forget removes the originals; once no
// snapshot holds a file, prune frees its data; the repository checks out and the catalog follows.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initRepo, snap, tempDir, jsonLines as lines, lastJson as last } from '../helpers/cli.js';
import { prng } from '../helpers/tree.js';

interface Listed {
  id: string;
  tags: string[];
  tree: string;
  time: string;
  original?: string;
  summary: Record<string, number | string>;
}

function dirBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true }) as import('node:fs').Dirent[]) if (e.isFile()) n += statSync(join(e.parentPath, e.name)).size;
  return n;
}

describe('snap rewrite', () => {
  const tmp = tempDir();
  const src = join(tmp.path, 'src');
  const repo = join(tmp.path, 'repo');
  let env: Record<string, string>;
  const list = (): Listed[] => JSON.parse(snap(['snapshots', '--json'], env).stdout);
  const files = (id: string) =>
    lines(snap(['ls', id, '--json'], env).stdout)
      .filter((n) => n.message_type === 'node' && n.type === 'file')
      .map((n) => n.path.slice(src.length + 1))
      .sort();
  const holding = (name: string): string[] =>
    lines(snap(['find', name, '--all', '--json'], env).stdout).flatMap((v: { snapshots: { id: string }[] }) => v.snapshots.map((s) => s.id)).sort();
  const originals: string[] = [];

  beforeAll(() => {
    for (const d of ['keep', 'secret', 'logs']) mkdirSync(join(src, d), { recursive: true });
    writeFileSync(join(src, 'keep', 'a.txt'), 'version 1');
    writeFileSync(join(src, 'secret', 'key.pem'), 'PRIVATE KEY');
    writeFileSync(join(src, 'logs', 'x.LOG'), 'log');
    writeFileSync(join(src, 'big.bin'), prng(7).bytes(600_000));
    env = { ...initRepo(repo), XDG_CACHE_HOME: join(tmp.path, 'cache') };
    for (const [i, time] of ['2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z'].entries()) {
      if (i === 1) writeFileSync(join(src, 'keep', 'a.txt'), 'version 2');
      const r = snap(['backup', src, '--tag', 'daily', '--time', time, '--json'], env);
      expect(r.code, r.stderr).toBe(0);
      originals.push(last(r.stdout).snapshot_id);
    }
  });
  afterAll(() => tmp.cleanup());

  it('--dry-run shows what would be left out and changes nothing', () => {
    const before = list();
    const r = snap(['rewrite', '--exclude', '*.pem', '--iexclude', '*.log', '--dry-run'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`would leave out ${join(src, 'secret', 'key.pem')}`);
    expect(r.stdout).toContain(`would leave out ${join(src, 'logs', 'x.LOG')}`);
    expect(r.stdout).toContain('dry run: 2 of 2 snapshots would be rewritten');
    expect(list()).toEqual(before);
  });

  it('saves new snapshots without exactly the matched entries, and keeps the originals', () => {
    const r = snap(['rewrite', '--exclude', '*.pem', '--iexclude', '*.log', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const report = last(r.stdout);
    expect(report.rewritten.map((x: { from: string }) => x.from).sort()).toEqual([...originals].sort());
    expect(report.rewritten.every((x: { excluded: number }) => x.excluded === 2)).toBe(true);
    const all = list();
    expect(all).toHaveLength(4);
    for (const [i, orig] of originals.entries()) {
      const o = all.find((s) => s.id === orig)!;
      const n = all.find((s) => s.original === orig)!;
      expect({ time: n.time, tags: n.tags }).toEqual({ time: o.time, tags: o.tags });
      // The summary counts what the snapshot now holds (restic's rewrite does too), and keeps the
      // rest of the backup's statistics.
      expect(o.summary).toMatchObject({ total_files_processed: 4, total_bytes_processed: 600_000 + 9 + 11 + 3 });
      expect(n.summary).toEqual({ ...o.summary, total_files_processed: 2, total_bytes_processed: 600_000 + 9 });
      expect(files(orig)).toEqual(['big.bin', 'keep/a.txt', 'logs/x.LOG', 'secret/key.pem']);
      expect(files(n.id)).toEqual(['big.bin', 'keep/a.txt']);
      // What is left restores byte for byte.
      const target = join(tmp.path, `restore-${i}`);
      expect(snap(['restore', n.id, '--target', target], env).code).toBe(0);
      expect(readFileSync(join(target, src, 'keep', 'a.txt'), 'utf8')).toBe(`version ${i + 1}`);
      expect(readFileSync(join(target, src, 'big.bin')).equals(readFileSync(join(src, 'big.bin')))).toBe(true);
    }
    // Nothing more to leave out: nothing is saved again.
    const again = snap(['rewrite', '--exclude', '*.pem', '--iexclude', '*.log', '--json', ...all.filter((s) => s.original).map((s) => s.id)], env);
    expect(last(again.stdout).rewritten).toEqual([]);
  });

  it('--forget removes the originals; once no snapshot holds a file, prune frees its data', () => {
    const r = snap(['rewrite', '--exclude', 'big.bin', '--forget', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(last(r.stdout).rewritten.filter((x: { forgotten: boolean }) => x.forgotten)).toHaveLength(4);
    const all = list();
    expect(all).toHaveLength(4);
    for (const s of all) expect(files(s.id)).not.toContain('big.bin');
    expect(holding('big.bin')).toEqual([]);
    // The key is still in the two snapshots rewritten from the originals: forget those.
    const withKey = holding('key.pem');
    expect(withKey).toHaveLength(2);
    expect(snap(['forget', ...withKey], env).code).toBe(0);
    const before = dirBytes(join(repo, 'data'));
    const p = snap(['prune'], env);
    expect(p.code, p.stderr).toBe(0);
    expect(before - dirBytes(join(repo, 'data'))).toBeGreaterThan(600_000);
    expect(holding('key.pem')).toEqual([]);
    const c = snap(['check', '--read-data'], env);
    expect(c.code, c.stdout + c.stderr).toBe(0);
    for (const s of list()) expect(files(s.id)).toEqual(['keep/a.txt']);
  });

  it('a pattern applies where a tree is, not to every place the same tree appears', () => {
    // A directory renamed between two backups: its subdirectory keeps its tree ID under a new path.
    const moved = join(tmp.path, 'moved');
    mkdirSync(join(moved, 'old', 'sub'), { recursive: true });
    writeFileSync(join(moved, 'old', 'sub', 'f'), 'f');
    const ids = [snap(['backup', moved, '--json'], env)];
    renameSync(join(moved, 'old'), join(moved, 'new'));
    ids.push(snap(['backup', moved, '--json'], env));
    const [before, after] = ids.map((r) => last(r.stdout).snapshot_id as string);
    const r = snap(['rewrite', '--exclude', join(moved, 'old', 'sub', 'f'), '--json', before!, after!], env);
    expect(r.code, r.stderr).toBe(0);
    expect(last(r.stdout).rewritten.map((x: { from: string }) => x.from)).toEqual([before]);
    const rewritten = last(r.stdout).rewritten[0].to;
    const paths = (id: string) => lines(snap(['ls', id, '--json'], env).stdout).filter((n) => n.message_type === 'node' && n.path.startsWith(moved)).map((n) => n.path.slice(moved.length));
    expect(paths(rewritten)).toEqual(['', '/old', '/old/sub']);
    expect(paths(after!)).toEqual(['', '/new', '/new/sub', '/new/sub/f']);
  });

  it('without a pattern, or with an unknown snapshot, nothing is changed', () => {
    const before = list();
    const none = snap(['rewrite'], env);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/nothing to do: give --exclude/);
    const unknown = snap(['rewrite', '--exclude', '*', 'deadbeef'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no snapshot with ID deadbeef/);
    expect(list()).toEqual(before);
  });
});
