// snap copy through the compiled CLI: snapshots go from one repository into another with other keys
// and other chunk sizes. The copies keep time, host, paths and tags, record their source in
// `original`, list the same files with the same metadata and restore byte-identical; data the
// destination holds already is not stored again; a second copy skips what is there; the
// destination checks out; bad input changes nothing. A repository made with init
// --copy-chunker-params cuts files as the source does, so its own backups reuse copied chunks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, readFileSync, readdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initRepo, snap, snapEnv, tempDir, jsonLines as lines } from '../helpers/cli.js';
import { prng } from '../helpers/tree.js';

interface Listed {
  id: string;
  time: string;
  hostname: string;
  paths: string[];
  tags: string[];
  parent?: string;
  original?: string;
}

describe('snap copy', () => {
  const tmp = tempDir();
  const src = join(tmp.path, 'src');
  const from = join(tmp.path, 'from');
  const to = join(tmp.path, 'to');
  let fromEnv: Record<string, string>;
  let toEnv: Record<string, string>;
  /** Runs against the destination, with the source given as copy reads it. */
  let copyEnv: Record<string, string>;
  const list = (env: Record<string, string>): Listed[] => JSON.parse(snap(['snapshots', '--json'], env).stdout);
  /** Every node of a snapshot as ls prints it, without what differs between repositories. */
  const nodes = (env: Record<string, string>, id: string) =>
    lines(snap(['ls', id, '--json', '-l'], env).stdout)
      .filter((n) => n.message_type === 'node')
      .map(({ content: _c, subtree: _s, ...n }) => n);
  const big = prng(11).bytes(3_000_000);

  beforeAll(() => {
    mkdirSync(join(src, 'etc'), { recursive: true });
    writeFileSync(join(src, 'etc', 'hosts'), '127.0.0.1 localhost\n');
    writeFileSync(join(src, 'big.bin'), big);
    writeFileSync(join(src, 'empty'), '');
    symlinkSync('etc/hosts', join(src, 'link'));
    chmodSync(join(src, 'etc', 'hosts'), 0o640);
    utimesSync(join(src, 'big.bin'), 1_600_000_000, 1_600_000_000);
    fromEnv = { ...initRepo(from), XDG_CACHE_HOME: join(tmp.path, 'cache') };
    // Other keys and other chunk sizes: every blob ID differs between the two.
    toEnv = { ...snapEnv(to, { SNAP_PASSWORD: 'another one' }), XDG_CACHE_HOME: join(tmp.path, 'cache') };
    expect(snap(['init', '--kdf-n', '1024', '--chunk-min', '64K', '--chunk-avg', '256K', '--chunk-max', '1M'], toEnv).code).toBe(0);
    copyEnv = { ...toEnv, SNAP_FROM_REPOSITORY: from, SNAP_FROM_PASSWORD: 'correct horse' };
    for (const [i, time] of ['2026-02-01T00:00:00Z', '2026-02-02T00:00:00Z'].entries()) {
      if (i === 1) writeFileSync(join(src, 'etc', 'motd'), 'hello');
      const r = snap(['backup', src, '--tag', 'nightly', '--time', time, '--json'], fromEnv);
      expect(r.code, r.stderr).toBe(0);
    }
  });
  afterAll(() => tmp.cleanup());

  it('bad input copies nothing: a wrong source password, no source, an unknown ID', () => {
    const wrong = snap(['copy'], { ...copyEnv, SNAP_FROM_PASSWORD: 'wrong' });
    expect(wrong.code).toBe(12);
    // Which of the two repositories, and where its password came from.
    expect(wrong.stderr).toContain('source repository: wrong password');
    expect(wrong.stderr).toContain('SNAP_FROM_PASSWORD');
    const none = { ...copyEnv };
    delete none.SNAP_FROM_REPOSITORY;
    const r = snap(['copy'], none);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--from-repo');
    expect(snap(['copy', 'abcdef12'], copyEnv).code).toBe(1);
    const self = snap(['copy', '--from-repo', from], { ...fromEnv, SNAP_FROM_PASSWORD: 'correct horse' });
    expect(self.code).toBe(2);
    expect(self.stderr).toContain('--from-repo is this repository');
    expect(list(fromEnv)).toHaveLength(2);
    expect(snap(['copy', '--dry-run'], copyEnv).stdout).toContain('dry run: 2 of 2 snapshots would be copied');
    expect(list(toEnv)).toEqual([]);
  });

  it('copies every snapshot: same time, host, paths, tags and files, restoring byte-identical', { timeout: 60_000 }, () => {
    const r = snap(['copy', '--json'], copyEnv);
    expect(r.code, r.stderr).toBe(0);
    const copied = lines(r.stdout).filter((m) => m.message_type === 'copied');
    expect(copied.map((c) => c.skipped)).toEqual([false, false]);
    const summary = lines(r.stdout).pop();
    expect([summary.message_type, summary.selected, summary.copied, summary.skipped]).toEqual(['copy', 2, 2, 0]);
    expect(summary.added).toBe(copied[0].added + copied[1].added);
    // The second snapshot shares all but one small file with the first: its blobs are there.
    expect(copied[0].added).toBeGreaterThan(big.length);
    expect(copied[1].added).toBeLessThan(10_000);
    const source = list(fromEnv);
    const dest = list(toEnv);
    expect(dest).toHaveLength(2);
    for (const [i, s] of source.entries()) {
      const d = dest[i]!;
      expect(d.id).toBe(copied[i].to);
      expect([d.time, d.hostname, d.paths, d.tags]).toEqual([s.time, s.hostname, s.paths, s.tags]);
      expect(d.original).toBe(s.id);
      expect(d.parent).toBeUndefined();
      expect(nodes(toEnv, d.id)).toEqual(nodes(fromEnv, s.id));
    }
    const target = join(tmp.path, 'restored');
    expect(snap(['restore', dest[1]!.id, '--target', target], toEnv).code).toBe(0);
    const out = join(target, src);
    expect(readFileSync(join(out, 'big.bin')).equals(big)).toBe(true);
    expect(readFileSync(join(out, 'etc', 'motd'), 'utf8')).toBe('hello');
    expect(readdirSync(out).sort()).toEqual(['big.bin', 'empty', 'etc', 'link']);
    const check = snap(['check', '--read-data'], toEnv);
    expect(check.code, check.stderr).toBe(0);
  });

  it('a second copy skips the snapshots already there, and copies a new one', { timeout: 60_000 }, () => {
    const again = lines(snap(['copy', '--json'], copyEnv).stdout).filter((m) => m.message_type === 'copied');
    expect(again.map((c) => c.skipped)).toEqual([true, true]);
    expect(list(toEnv)).toHaveLength(2);
    // A snapshot retagged in the source is another snapshot (its tags differ): it is copied.
    const first = list(fromEnv)[0]!;
    expect(snap(['tag', first.id, '--add', 'keep'], fromEnv).code).toBe(0);
    const third = lines(snap(['copy', '--json'], copyEnv).stdout).filter((m) => m.message_type === 'copied');
    expect(third.map((c) => c.skipped).sort()).toEqual([false, true]);
    expect(third.find((c) => !c.skipped).added).toBeLessThan(10_000);
    const dest = list(toEnv);
    expect(dest).toHaveLength(3);
    expect(dest.filter((d) => d.original === first.id).map((d) => d.tags.join(',')).sort()).toEqual(['keep,nightly', 'nightly']);
  });

  it('init --copy-chunker-params: copied data and the repository\'s own backups share chunks, and copies keep tree IDs', { timeout: 60_000 }, () => {
    const sameEnv = { ...snapEnv(join(tmp.path, 'same'), { SNAP_PASSWORD: 'third' }), XDG_CACHE_HOME: join(tmp.path, 'cache'), SNAP_FROM_REPOSITORY: from, SNAP_FROM_PASSWORD: 'correct horse' };
    expect(snap(['init', '--kdf-n', '1024', '--copy-chunker-params', '--chunk-avg', '2M'], sameEnv).code).toBe(2);
    expect(snap(['init', '--kdf-n', '1024', '--copy-chunker-params'], { ...sameEnv, SNAP_FROM_PASSWORD: 'wrong' }).code).toBe(12);
    const init = snap(['init', '--kdf-n', '1024', '--copy-chunker-params'], sameEnv);
    expect(init.code, init.stderr).toBe(0);
    const chunker = (env: Record<string, string>) => JSON.parse(snap(['cat', 'config'], env).stdout).chunker;
    expect(chunker(sameEnv)).toEqual(chunker(fromEnv));
    expect(chunker(toEnv)).not.toEqual(chunker(fromEnv));
    // Copy the snapshots in, then back up the same files here and in `to` (other parameters),
    // reading every file (--force: the copies would be parents): only here are the chunks the ones
    // already stored.
    expect(snap(['copy'], sameEnv).code).toBe(0);
    expect(snap(['copy'], copyEnv).code).toBe(0);
    // The blob ID key came along: every copied snapshot has its source's tree ID (with another key,
    // as in `to`, none has).
    const trees = (env: Record<string, string>) => new Set(JSON.parse(snap(['snapshots', '--json'], env).stdout).map((x: { tree: string }) => x.tree));
    const sourceTrees = trees(fromEnv);
    expect(trees(sameEnv)).toEqual(sourceTrees);
    expect([...trees(toEnv)].some((t) => sourceTrees.has(t))).toBe(false);
    expect(snap(['check', '--read-data'], sameEnv).code).toBe(0);
    const added = (env: Record<string, string>) => lines(snap(['backup', src, '--force', '--json'], env).stdout).pop().data_added;
    expect(added(sameEnv)).toBeLessThan(10_000);
    expect(added(toEnv)).toBeGreaterThan(1_000_000);
  });
});
