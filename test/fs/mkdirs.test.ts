// mkdir -p that fails where Node's recursive mkdir would spin forever (src/fs/mkdirs.ts).
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { mkdirsSync } from '../../src/fs/mkdirs.js';
import { tempDir } from '../helpers/cli.js';

const MODULE = pathToFileURL(resolve(import.meta.dirname, '../../dist/src/fs/mkdirs.js')).href;

describe('mkdirsSync', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('creates the missing parents with the mode and returns the first one it created', () => {
    const first = join(tmp.path, 'a');
    const deep = join(first, 'b', 'c');
    expect(mkdirsSync(deep, 0o700)).toBe(first);
    for (const d of [first, join(first, 'b'), deep]) {
      expect(statSync(d).isDirectory()).toBe(true);
      expect(statSync(d).mode & 0o777).toBe(0o700);
    }
    // There already: nothing created, no error.
    expect(mkdirsSync(deep)).toBeUndefined();
    expect(mkdirsSync(join(deep, 'd'))).toBe(join(deep, 'd'));
  });

  it('takes raw byte paths (not UTF-8) and gives back bytes', () => {
    const name = Buffer.from([0x66, 0xff, 0xfe]);
    const path = Buffer.concat([Buffer.from(tmp.path + '/raw/'), name]);
    const made = mkdirsSync(path);
    expect(Buffer.isBuffer(made)).toBe(true);
    expect((made as Buffer).equals(Buffer.from(tmp.path + '/raw'))).toBe(true);
    expect(statSync(path).isDirectory()).toBe(true);
  });

  it('fails on a file in the way and on a dangling symlink', () => {
    writeFileSync(join(tmp.path, 'file'), '');
    expect(() => mkdirsSync(join(tmp.path, 'file'))).toThrow(/EEXIST/);
    expect(() => mkdirsSync(join(tmp.path, 'file', 'sub'))).toThrow(/ENOTDIR/);
    symlinkSync(join(tmp.path, 'nowhere'), join(tmp.path, 'dangling'));
    // The link is there but is no directory.
    expect(() => mkdirsSync(join(tmp.path, 'dangling', 'sub'))).toThrow(/EEXIST.*dangling/);
    expect(existsSync(join(tmp.path, 'nowhere'))).toBe(false);
  });

  it.runIf(existsSync('/proc/self'))('fails at once under /proc, where mkdir answers ENOENT below a directory that exists', () => {
    // In a child with a deadline: Node's own recursive mkdir never returns here, and neither would a
    // regression of this one.
    const script = `import { mkdirsSync } from ${JSON.stringify(MODULE)};
      try { mkdirsSync('/proc/snap-test-mkdirs/sub'); console.log('created'); } catch (e) { console.log(e.code); }`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000, killSignal: 'SIGKILL' });
    expect(r.signal).toBeNull();
    expect(r.stdout.toString().trim()).toBe('ENOENT');
  });
});
