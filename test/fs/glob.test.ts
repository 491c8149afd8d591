// Exclude/include patterns as restic users write them, and --files-from's glob expansion.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expandGlob, PathMatcher } from '../../src/fs/glob.js';
import { tempDir } from '../helpers/cli.js';

describe('PathMatcher', () => {
  const cases: [pattern: string, path: string, matches: boolean][] = [
    // Without "/": a name at any depth, and everything under it.
    ['*.log', '/var/log/syslog.log', true],
    ['*.log', '/var/logs/x', false],
    ['cache', '/home/u/cache/a/b', true],
    ['cache', '/home/u/cached', false],
    ['?.txt', '/a/b.txt', true],
    ['?.txt', '/a/bb.txt', false],
    ['[ab].c', '/x/b.c', true],
    ['[!ab].c', '/x/b.c', false],
    ['[!ab].c', '/x/z.c', true],
    ['a\\*b', '/x/a*b', true],
    ['a\\*b', '/x/aXb', false],
    // Absolute: anchored at the root.
    ['/var/cache', '/var/cache', true],
    ['/var/cache', '/var/cache/apt/x.deb', true],
    ['/var/cache', '/srv/var/cache', false],
    ['/var/cache/', '/var/cache/apt', true],
    ['/home/*/.cache', '/home/u/.cache/x', true],
    ['/home/*/.cache', '/home/u/v/.cache', false],
    ['/home/**/.cache', '/home/u/v/.cache', true],
    ['/**/sparse', '/sparse', true],
    // Relative with "/": any suffix of whole components.
    ['log/*.gz', '/var/log/a.gz', true],
    ['log/*.gz', '/var/xlog/a.gz', false],
    // * stays within a component; ** spans them.
    ['/srv/*.conf', '/srv/a/b.conf', false],
    ['/srv/**.conf', '/srv/a/b.conf', true],
  ];
  it.each(cases)('%s against %s: %s', (pattern, path, matches) => {
    expect(new PathMatcher([pattern]).matches(path)).toBe(matches);
  });

  it('ignores case only for the patterns given as such', () => {
    const m = new PathMatcher(['*.TXT'], ['/Var/LOG']);
    expect(m.matches('/a/b.TXT')).toBe(true);
    expect(m.matches('/a/b.txt')).toBe(false);
    expect(m.matches('/var/log/x')).toBe(true);
    expect(new PathMatcher([]).empty).toBe(true);
    expect(new PathMatcher([], ['x']).empty).toBe(false);
  });

  it('refuses a pattern it cannot read', () => {
    expect(() => new PathMatcher(['a[b'])).toThrow(/unclosed \[/);
    expect(() => new PathMatcher([''])).toThrow(/empty pattern/);
  });
});

describe('expandGlob', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('expands each component against the directory, sorted; a literal names itself when it exists', () => {
    const d = tmp.path;
    for (const sub of ['a1', 'a2', 'b', '.hidden']) mkdirSync(join(d, sub, 'x'), { recursive: true });
    for (const f of ['a1/x/one.conf', 'a2/x/two.conf', 'b/x/three.conf', '.hidden/x/four.conf', 'a1/x/skip.txt']) writeFileSync(join(d, f), f);
    writeFileSync(join(d, 'a*'), 'a file named a*');
    expect(expandGlob(`${d}/a?/x/*.conf`)).toEqual([`${d}/a1/x/one.conf`, `${d}/a2/x/two.conf`]);
    // Names beginning with a dot are not special (Go's filepath.Glob).
    expect(expandGlob(`${d}/*/x/f*.conf`)).toEqual([`${d}/.hidden/x/four.conf`]);
    expect(expandGlob(`${d}/[ab]*/x`)).toEqual([`${d}/a*`, `${d}/a1`, `${d}/a2`, `${d}/b`].filter((p) => !p.endsWith('*')).map((p) => `${p}/x`));
    expect(expandGlob(`${d}/a\\*`)).toEqual([`${d}/a*`]);
    expect(expandGlob(`${d}/b/x/three.conf`)).toEqual([`${d}/b/x/three.conf`]);
    expect(expandGlob(`${d}/nothing/*.conf`)).toEqual([]);
    expect(expandGlob(`${d}/b/x/missing.conf`)).toEqual([]);
    // A file in the middle of a pattern matches nothing below it.
    expect(expandGlob(`${d}/a1/x/one.conf/*`)).toEqual([]);
  });
});
