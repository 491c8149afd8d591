// Deduplication as a user sees it: what a second backup adds to the repository.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initRepo, snap, tempDir } from '../helpers/cli.js';
import { prng, randomData } from '../helpers/tree.js';

const MiB = 1024 * 1024;

/** Bytes the repository occupies on disk: what the user pays for. */
function repoBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) total += statSync(join(e.parentPath, e.name)).size;
  return total;
}

function summary(r: { code: number; stdout: string; stderr: string }) {
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as { data_added: number; data_added_packed: number; files_unchanged: number; files_new: number; total_bytes_processed: number };
}

describe('deduplication', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('adds less than 1% when an unchanged tree is backed up again', () => {
    const src = join(tmp.path, 'tree');
    const r = prng(7);
    let sourceBytes = 0;
    for (let d = 0; d < 20; d++) {
      mkdirSync(join(src, `d${d}`), { recursive: true });
      for (let f = 0; f < 20; f++) {
        const data = r.bytes(1000 + (r.next() % 200_000));
        sourceBytes += data.length;
        writeFileSync(join(src, `d${d}`, `f${f}`), data);
      }
    }
    const repo = join(tmp.path, 'repo1');
    const env = initRepo(repo);
    const first = summary(snap(['backup', src, '--json'], env));
    const size1 = repoBytes(repo);
    // --force reads every file again: dedup must come from content, not from the parent shortcut.
    const forced = summary(snap(['backup', src, '--json', '--force'], env));
    const second = summary(snap(['backup', src, '--json'], env));
    const size3 = repoBytes(repo);
    expect(first.total_bytes_processed).toBe(sourceBytes);
    expect(forced.total_bytes_processed).toBe(sourceBytes);
    // Random contents: everything read is new the first time (plus the tree blobs).
    expect(first.data_added).toBeGreaterThan(sourceBytes);
    expect(forced.data_added).toBeLessThan(first.data_added * 0.01);
    expect(forced.files_unchanged).toBe(0);
    expect(second.files_unchanged).toBe(400);
    expect(second.data_added).toBeLessThan(first.data_added * 0.01);
    expect(size3 - size1).toBeLessThan(size1 * 0.01);
    expect(size3).toBeGreaterThan(size1);
    // stats: three snapshots of the same tree hold three times its bytes, once after dedup; the
    // packs are what is on disk (data and meta, without the small metadata objects).
    const st = JSON.parse(snap(['stats', '--json'], env).stdout);
    expect(st).toMatchObject({ snapshots: 3, hosts: 1, restore_bytes: 3 * sourceBytes, restore_files: 3 * 400, data_bytes: sourceBytes });
    expect(st.data_pack_bytes + st.meta_pack_bytes).toBeLessThan(size3);
    expect(st.data_pack_bytes + st.meta_pack_bytes).toBeGreaterThan(size3 * 0.95);
    expect(snap(['stats'], env).stdout).toMatch(/after deduplication \(3\.00x\)/);
  }, 60_000);

  it('stats of chosen snapshots counts what their trees reach, once', () => {
    const r = prng(17);
    const a = join(tmp.path, 'host-a');
    const b = join(tmp.path, 'host-b');
    mkdirSync(a);
    mkdirSync(b);
    const files = [r.bytes(300_000), r.bytes(200_000), r.bytes(100_000), r.bytes(50_000)];
    files.slice(0, 3).forEach((f, i) => writeFileSync(join(a, `f${i}`), f));
    // b holds a copy of one of a's files and one of its own.
    writeFileSync(join(b, 'copy'), files[0]!);
    writeFileSync(join(b, 'own'), files[3]!);
    const env = initRepo(join(tmp.path, 'repo-stats'));
    expect(snap(['backup', a, '--host', 'a'], env).code).toBe(0);
    expect(snap(['backup', b, '--host', 'b'], env).code).toBe(0);
    const stats = (args: string[]) => {
      const res = snap(['stats', '--json', ...args], env);
      expect(res.code, res.stderr).toBe(0);
      return JSON.parse(res.stdout);
    };
    const whole = stats([]);
    expect(whole).toMatchObject({ selected: false, snapshots: 2, restore_bytes: 950_000, data_bytes: 650_000 });
    // b alone: both its files, the one shared with a included.
    expect(stats(['--host', 'b'])).toMatchObject({ selected: true, snapshots: 1, hosts: 1, restore_bytes: 350_000, data_bytes: 350_000 });
    expect(stats(['--host', 'a'])).toMatchObject({ snapshots: 1, restore_bytes: 600_000, data_bytes: 600_000 });
    // Both, by ID: the shared file once, as in the whole repository.
    const ids = JSON.parse(snap(['snapshots', '--json'], env).stdout).map((x: { id: string }) => x.id);
    const both = stats(ids);
    expect(both).toMatchObject({ selected: true, snapshots: 2, data_bytes: 650_000, data_blobs: whole.data_blobs, tree_blobs: whole.tree_blobs });
    expect(both.data_stored_bytes).toBe(whole.data_stored_bytes);
    expect(stats(['--host', 'nobody'])).toMatchObject({ snapshots: 0, data_bytes: 0, tree_blobs: 0 });
    expect(snap(['stats', '--host', 'b'], env).stdout).toMatch(/1 selected of 1 hosts/);
  });

  it('re-stores only a few chunks after one byte is inserted at the front of a 64 MiB file', () => {
    const src = join(tmp.path, 'big');
    mkdirSync(src);
    const data = randomData(64 * MiB);
    writeFileSync(join(src, 'file'), data);
    const env = initRepo(join(tmp.path, 'repo2'));
    const first = summary(snap(['backup', src, '--json'], env));
    writeFileSync(join(src, 'file'), Buffer.concat([Buffer.from([0x42]), data]));
    const second = summary(snap(['backup', src, '--json'], env));
    expect(first.data_added).toBeGreaterThanOrEqual(64 * MiB);
    // Default chunks average 1 MiB and are at most 8 MiB: "a few chunks" is at most 2 max-size ones.
    expect(second.data_added).toBeLessThan(16 * MiB);
    expect(second.data_added).toBeGreaterThan(0);
  }, 60_000);
});
