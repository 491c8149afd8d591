// The local metadata cache of a remote repository: once index and snapshot objects are cached,
// commands list them but do not download them again; --no-cache and `check` always do.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/cli.js';
import { prng } from '../helpers/tree.js';
import { startS3Cli, type S3Cli } from './s3-cli.js';

describe('metadata cache of an S3 repository', () => {
  const tmp = tempDir();
  const src = join(tmp.path, 'src');
  let cli: S3Cli;
  const gets = (what: 'snapshots' | 'index') => cli.proxy.count({ method: 'GET', bucket: 'cached', keyPrefix: `repo/${what}/` });

  beforeAll(async () => {
    cli = await startS3Cli('cached', join(tmp.path, 'cache'));
    mkdirSync(src);
    const init = await cli.run(['init', '--kdf-n', '1024', '--chunk-min', '16K', '--chunk-avg', '64K', '--chunk-max', '256K', '--pack-size', '64K']);
    expect(init.code, init.stderr).toBe(0);
    const r = prng(21);
    for (let i = 0; i < 3; i++) {
      writeFileSync(join(src, `f${i}`), r.bytes(50_000));
      const b = await cli.run(['backup', src]);
      expect(b.code, b.stderr).toBe(0);
    }
  }, 60_000);

  afterAll(async () => {
    await cli?.stop();
    tmp.cleanup();
  });

  it('snapshots and index written by this host are read from the cache, not downloaded', async () => {
    cli.proxy.resetCounters();
    const s = await cli.run(['snapshots', '--json']);
    expect(s.code, s.stderr).toBe(0);
    expect(JSON.parse(s.stdout)).toHaveLength(3);
    const l = await cli.run(['ls', 'latest']);
    expect(l.code, l.stderr).toBe(0);
    expect(gets('snapshots')).toBe(0);
    expect(gets('index')).toBe(0);
    const repoId = readdirSync(join(tmp.path, 'cache')).find((n) => /^[0-9a-f]{64}$/.test(n))!;
    expect(readdirSync(join(tmp.path, 'cache', repoId, 'metadata', 'snapshot'))).toHaveLength(3);
  }, 30_000);

  it('a damaged copy is downloaded again; --no-cache and check download every object', async () => {
    const repoId = readdirSync(join(tmp.path, 'cache')).find((n) => /^[0-9a-f]{64}$/.test(n))!;
    const dir = join(tmp.path, 'cache', repoId, 'metadata', 'snapshot');
    const victim = readdirSync(dir)[0]!;
    writeFileSync(join(dir, victim), 'not the object');
    cli.proxy.resetCounters();
    expect((await cli.run(['snapshots'])).code).toBe(0);
    expect(gets('snapshots')).toBe(1);
    expect(existsSync(join(dir, victim))).toBe(true);

    cli.proxy.resetCounters();
    expect((await cli.run(['--no-cache', 'snapshots'])).code).toBe(0);
    expect(gets('snapshots')).toBe(3);

    cli.proxy.resetCounters();
    const c = await cli.run(['check']);
    expect(c.code, c.stderr).toBe(0);
    expect(gets('index')).toBeGreaterThan(0);
    expect(gets('snapshots')).toBe(3);
  }, 30_000);

  it('copies of forgotten snapshots are removed', async () => {
    const f = await cli.run(['forget', '--keep-last', '1']);
    expect(f.code, f.stderr).toBe(0);
    expect((await cli.run(['snapshots'])).code).toBe(0);
    const repoId = readdirSync(join(tmp.path, 'cache')).find((n) => /^[0-9a-f]{64}$/.test(n))!;
    expect(readdirSync(join(tmp.path, 'cache', repoId, 'metadata', 'snapshot'))).toHaveLength(1);
  }, 30_000);
});
