// snap dump: one file version out of a snapshot, byte-identical, into a pipe.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, linkSync, mkdirSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initRepo, snap, SNAP, tempDir } from '../helpers/cli.js';
import { describeTree, prng } from '../helpers/tree.js';

describe('dump', () => {
  const tmp = tempDir();
  const src = join(tmp.path, 'src');
  const big = join(src, 'db', 'dump.sql');
  let env: Record<string, string>;
  let first: string;
  let second: string;
  let firstBytes: Buffer;

  /** Runs snap dump with stdout as raw bytes. */
  const dump = (args: string[]) => {
    const r = spawnSync(SNAP, ['dump', ...args], { env, maxBuffer: 64 << 20 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
  };

  beforeAll(() => {
    mkdirSync(join(src, 'db'), { recursive: true });
    // Several chunks with these chunker settings, so blobs are written in order from several packs.
    firstBytes = prng(5).bytes(3_000_000);
    writeFileSync(big, firstBytes);
    writeFileSync(join(src, 'notes.txt'), 'version one\n');
    env = initRepo(join(tmp.path, 'repo'), ['--pack-size', '256K', '--chunk-min', '16K', '--chunk-avg', '64K', '--chunk-max', '256K']);
    first = JSON.parse(snap(['backup', src, '--json'], env).stdout.trim().split('\n').pop()!).snapshot_id;
    writeFileSync(big, prng(6).bytes(2_000_000));
    writeFileSync(join(src, 'notes.txt'), 'version two\n');
    second = JSON.parse(snap(['backup', src, '--json'], env).stdout.trim().split('\n').pop()!).snapshot_id.slice(0, 8);
  }, 60_000);
  afterAll(() => tmp.cleanup());

  it('writes a file of the latest snapshot, or of an older one, byte-identical', () => {
    const now = dump([`latest:${big}`]);
    expect(now.code, now.stderr).toBe(0);
    expect(now.stdout.equals(readFileSync(big))).toBe(true);
    // The version of a snapshot years back: SNAPSHOT PATH works as well as SNAPSHOT:PATH.
    const then = dump([first.slice(0, 8), big]);
    expect(then.code, then.stderr).toBe(0);
    expect(then.stdout.equals(firstBytes)).toBe(true);
    expect(dump([`${first.slice(0, 8)}:${join(src, 'notes.txt')}`]).stdout.toString()).toBe('version one\n');
  });

  it('a reader that stops early ends the dump quietly', () => {
    const r = spawnSync('bash', ['-c', `set -o pipefail; "${SNAP}" dump latest:${big} | head -c 100 | wc -c`], { env });
    expect({ code: r.status, out: r.stdout.toString().trim(), err: r.stderr.toString() }).toEqual({ code: 0, out: '100', err: '' });
  });

  it('a directory comes out as a tar archive that tar extracts to the tree as it was', () => {
    const tree = join(tmp.path, 'tree');
    mkdirSync(join(tree, 'sub'), { recursive: true });
    writeFileSync(join(tree, 'data'), prng(9).bytes(700_000));
    writeFileSync(join(tree, 'empty'), '');
    writeFileSync(join(tree, 'sub', 'x'.repeat(150)), 'a name longer than ustar holds');
    writeFileSync(join(tree, 'sub', 'ünïcödé'), 'utf-8');
    writeFileSync(Buffer.concat([Buffer.from(join(tree, 'sub', 'raw-')), Buffer.from([0xff])]), 'raw bytes');
    chmodSync(join(tree, 'empty'), 0o640);
    symlinkSync('data', join(tree, 'link'));
    linkSync(join(tree, 'data'), join(tree, 'hard'));
    spawnSync('mkfifo', [join(tree, 'fifo')]);
    utimesSync(join(tree, 'sub'), new Date('2001-02-03T04:05:06.789Z'), new Date('2001-02-03T04:05:06.789Z'));
    expect(snap(['backup', tree], env).code).toBe(0);
    const archive = dump([`latest:${tree}`]);
    expect(archive.code, archive.stderr).toBe(0);
    expect(archive.stderr).toBe('');
    const out = join(tmp.path, 'untarred');
    mkdirSync(out);
    const x = spawnSync('tar', ['-x', '-C', out], { input: archive.stdout });
    expect(x.status, x.stderr.toString()).toBe(0);
    expect(describeTree(join(out, tree.slice(1)))).toEqual(describeTree(tree));
  });

  it('a special file, a missing path or a tampered blob: one line and an exit code, and no wrong byte', () => {
    const fifo = dump([`latest:${join(tmp.path, 'tree', 'fifo')}`]);
    expect(fifo.code).toBe(2);
    expect(fifo.stderr).toMatch(/a fifo in this snapshot; dump writes a file, or a directory as a tar archive/);
    const missing = dump([`${second}:${join(src, 'nope')}`]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/not found in this snapshot/);
    // A flipped byte in every data pack: the dump stops at the first blob that fails to open,
    // naming it, and what it wrote before is the file's true beginning.
    const packs = readdirSync(join(tmp.path, 'repo', 'data'), { recursive: true, encoding: 'utf8' }).filter((f) => /^[0-9a-f]{64}$/.test(f.split('/').pop()!));
    expect(packs.length).toBeGreaterThan(1);
    for (const p of packs) {
      const file = join(tmp.path, 'repo', 'data', p);
      const bytes = readFileSync(file);
      bytes[30] ^= 0xff;
      writeFileSync(file, bytes);
    }
    const truth = readFileSync(big);
    const bad = dump([`${second}:${big}`]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/data blob [0-9a-f]{64} in data\/[0-9a-f]{2}\/[0-9a-f]{64}/);
    expect(bad.stdout.length).toBeLessThan(truth.length);
    expect(bad.stdout.equals(truth.subarray(0, bad.stdout.length))).toBe(true);
  });
});
