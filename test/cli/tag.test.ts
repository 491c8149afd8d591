// snap tag through the compiled CLI: tags are added, removed and replaced on the snapshots chosen by
// ID or by filter; a changed snapshot is saved anew (same tree, time and summary; `original` names
// the first ID) and the old one is gone; bad input changes nothing; the catalog follows.
// Also: repeatable flags take one value per use (`--tag a /path` backs up /path).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initRepo, snap, tempDir, jsonLines as lines, lastJson as last } from '../helpers/cli.js';

interface Listed {
  id: string;
  tags: string[];
  tree: string;
  time: string;
  original?: string;
  summary: unknown;
}

describe('snap tag', () => {
  const tmp = tempDir();
  const src = join(tmp.path, 'src');
  const repo = join(tmp.path, 'repo');
  let env: Record<string, string>;
  const list = (): Listed[] => JSON.parse(snap(['snapshots', '--json'], env).stdout);
  const byId = (id: string) => list().find((s) => s.id === id)!;
  let first: Listed;
  let second: Listed;

  beforeAll(() => {
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'f'), 'some data');
    env = { ...initRepo(repo), XDG_CACHE_HOME: join(tmp.path, 'cache') };
    // The flag before the path: the path is not taken for a second tag.
    const a = snap(['backup', '--tag', 'a,b', src, '--json', '--time', '2026-01-01T00:00:00Z'], env);
    expect(a.code, a.stderr).toBe(0);
    const b = snap(['backup', src, '--tag', 'c', '--exclude', '*.tmp', '--json', '--time', '2026-01-02T00:00:00Z'], env);
    expect(b.code, b.stderr).toBe(0);
    first = byId(last(a.stdout).snapshot_id);
    second = byId(last(b.stdout).snapshot_id);
    expect(first.tags).toEqual(['a', 'b']);
    expect(second.tags).toEqual(['c']);
  });
  afterAll(() => tmp.cleanup());

  it('--add without IDs changes every snapshot; each is saved anew with only its tags changed', () => {
    const r = snap(['tag', '--add', 'x', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const report = last(r.stdout);
    expect(report.changed.map((c: { from: string }) => c.from).sort()).toEqual([first.id, second.id].sort());
    const now = list();
    expect(now.map((s) => s.id)).not.toContain(first.id);
    expect(now.map((s) => s.id)).not.toContain(second.id);
    const f = now.find((s) => s.original === first.id)!;
    expect(f.tags).toEqual(['a', 'b', 'x']);
    const rest = (s: Listed) => ({ ...s, id: undefined, short_id: undefined, tags: undefined, original: undefined });
    expect(rest(f)).toEqual(rest(first));
    expect(now.find((s) => s.original === second.id)!.tags).toEqual(['c', 'x']);
    expect(readdirSync(join(repo, 'snapshots'))).toHaveLength(2);
    // Filters as in forget and restic: comma means all of them, a repeat means any.
    expect(list().length).toBe(2);
    expect(JSON.parse(snap(['snapshots', '--json', '--tag', 'a,c'], env).stdout)).toHaveLength(0);
    expect(JSON.parse(snap(['snapshots', '--json', '--tag', 'a', '--tag', 'c'], env).stdout)).toHaveLength(2);
  });

  it('--dry-run changes nothing; filters choose; original keeps the first ID', () => {
    const before = list();
    const dry = snap(['tag', '--remove', 'a', '--tag', 'a,b', '--dry-run'], env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('1 of 1 snapshots would change');
    expect(list()).toEqual(before);
    const r = snap(['tag', '--remove', 'a', '--tag', 'a,b', '--json'], env);
    expect(last(r.stdout).changed).toHaveLength(1);
    const f = list().find((s) => s.original === first.id)!;
    expect(f.tags).toEqual(['b', 'x']);
    // A change that alters nothing saves nothing.
    expect(last(snap(['tag', '--add', 'x', '--json'], env).stdout).changed).toEqual([]);
  });

  it('--set replaces the tags of the snapshot named after it; --set "" removes them all', () => {
    const s = list().find((x) => x.original === second.id)!;
    const r = snap(['tag', '--set', '', s.id.slice(0, 8), '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const now = list();
    expect(now.find((x) => x.original === second.id)!.tags).toEqual([]);
    expect(now.find((x) => x.original === first.id)!.tags).toEqual(['b', 'x']);
    const set = snap(['tag', '--set', 'p,q', '--set', 'r', '--tag', 'b'], env);
    expect(set.code, set.stderr).toBe(0);
    expect(list().find((x) => x.original === first.id)!.tags).toEqual(['p', 'q', 'r']);
  });

  it('bad input is refused and changes nothing', () => {
    const before = list();
    const cases: [string[], number, RegExp][] = [
      [['tag', 'latest'], 2, /nothing to do: give --add, --remove or --set/],
      [['tag', '--set', 'q', '--add', 'r'], 2, /--set replaces all tags/],
      [['tag', '--add', 'y', before[0]!.id.slice(0, 8), 'deadbeef'], 1, /no snapshot with ID deadbeef/],
    ];
    for (const [args, code, message] of cases) {
      const r = snap(args, env);
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.stderr).toMatch(message);
    }
    expect(list()).toEqual(before);
  });

  it('the repository checks out, and the catalog lists the new snapshots only', () => {
    expect(snap(['check'], env).code).toBe(0);
    const ids = list().map((s) => s.id);
    const found = lines(snap(['find', 'f', '--all', '--json'], env).stdout);
    const held = found.flatMap((v: { snapshots: { id: string }[] }) => v.snapshots.map((s) => s.id));
    expect(held.sort()).toEqual([...ids].sort());
  });
});
