// snap diff: what changed between two snapshots, from their trees.
import { afterAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initRepo, snap, tempDir, jsonLines as lines } from '../helpers/cli.js';

describe('diff', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('lists added, removed, changed and retyped entries, with counts and the data added and removed', () => {
    const src = join(tmp.path, 'src');
    mkdirSync(join(src, 'sub'), { recursive: true });
    mkdirSync(join(src, 'gone'));
    mkdirSync(join(src, 'same'));
    writeFileSync(join(src, 'a'), 'a\n');
    writeFileSync(join(src, 'sub', 'b'), 'b\n');
    writeFileSync(join(src, 'gone', 'g'), 'g\n');
    writeFileSync(join(src, 'same', 's'), 'unchanged\n');
    writeFileSync(join(src, 'mode'), 'same bytes\n');
    symlinkSync('a', join(src, 'link'));
    const env = initRepo(join(tmp.path, 'repo'));
    const id = (args: string[]) => lines(snap(['backup', ...args, '--json'], env).stdout).pop().snapshot_id.slice(0, 8);
    const first = id([src]);
    writeFileSync(join(src, 'a'), 'a, longer\n');
    rmSync(join(src, 'gone'), { recursive: true });
    mkdirSync(join(src, 'new'));
    writeFileSync(join(src, 'new', 'n'), 'n\n');
    chmodSync(join(src, 'mode'), 0o600);
    rmSync(join(src, 'link'));
    symlinkSync('sub', join(src, 'link'));
    rmSync(join(src, 'sub', 'b'));
    mkdirSync(join(src, 'sub', 'b'));
    writeFileSync(join(src, 'sub', 'b', 'x'), 'x\n');
    const second = id([src]);

    const r = snap(['diff', first, second, '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const out = lines(r.stdout);
    const changes = Object.fromEntries(out.filter((l) => l.message_type === 'change').map((l) => [l.path.slice(src.length), l.modifier]));
    // Nothing under same/ is read or reported; a directory's own mtime changed with its entries.
    expect(changes).toEqual({
      '/': 'U', '/a': 'MU', '/gone/': '-', '/gone/g': '-', '/link': 'MU', '/mode': 'U',
      '/new/': '+', '/new/n': '+', '/sub/': 'U', '/sub/b/': 'T', '/sub/b/x': '+',
    });
    const stats = out.find((l) => l.message_type === 'statistics');
    expect(stats).toMatchObject({
      files: { new: 2, removed: 1, changed: 2 }, dirs: { new: 1, removed: 1, changed: 3 }, others: { new: 0, removed: 0, changed: 1 },
      // a, b and g went (2 + 2 + 2 bytes); the new a, n and x came (10 + 2 + 2).
      data_added: 14, data_removed: 6,
    });
    // Text: one line per change, and the counts; -q keeps the changes only.
    const text = snap(['diff', first, second], env).stdout;
    expect(text).toContain(`MU   ${join(src, 'a')}\n`);
    expect(text).toMatch(/Files: +2 new, 1 removed, 2 changed/);
    expect(snap(['-q', 'diff', first, second], env).stdout.trim().split('\n')).toHaveLength(11);
    // A snapshot against itself: nothing; a subdirectory of each: only what is under it.
    expect(lines(snap(['diff', first, first, '--json'], env).stdout).filter((l) => l.message_type === 'change')).toEqual([]);
    const sub = lines(snap(['diff', `${first}:${join(src, 'sub')}`, `${second}:${join(src, 'sub')}`, '--json'], env).stdout).filter((l) => l.message_type === 'change');
    expect(sub.map((l) => l.path.slice(src.length))).toEqual(['/sub/b/', '/sub/b/x']);
    // A file is not a directory to compare.
    expect(snap(['diff', `${first}:${join(src, 'a')}`, second], env).code).toBe(2);
  });

  it('flags a file whose data changed under the same size and mtime with ?, as restic does (bitrot)', () => {
    const src = join(tmp.path, 'rot');
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'disk.img'), 'healthy sector');
    // Whole seconds: an mtime put back through utimes keeps no more precision than that.
    utimesSync(join(src, 'disk.img'), 1_700_000_000, 1_700_000_000);
    writeFileSync(join(src, 'edited'), 'v1');
    const env = initRepo(join(tmp.path, 'repo-rot'));
    const id = () => lines(snap(['backup', src, '--json'], env).stdout).pop().snapshot_id.slice(0, 8);
    const first = id();
    // Same length, mtime put back: only the ctime tells the backup to read it again.
    writeFileSync(join(src, 'disk.img'), 'healthy sectoR');
    utimesSync(join(src, 'disk.img'), 1_700_000_000, 1_700_000_000);
    writeFileSync(join(src, 'edited'), 'v2');
    utimesSync(join(src, 'edited'), new Date(2030, 0, 1), new Date(2030, 0, 1));
    const second = id();
    const changes = Object.fromEntries(lines(snap(['diff', first, second, '--json'], env).stdout).filter((l) => l.message_type === 'change').map((l) => [l.path.slice(src.length), l.modifier]));
    expect(changes['/disk.img']).toBe('?');
    expect(changes['/edited']).toBe('MU');
  });
});
