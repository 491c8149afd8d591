// snap init creates the bucket; a repository on S3 round-trips; a missing bucket is a clear error.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { snapEnv, snapRun, tempDir } from '../helpers/cli.js';
import { describeTree, prng } from '../helpers/tree.js';
import { startS3Server, type S3Server } from '../helpers/s3server.js';

describe('S3 repository through the CLI', () => {
  const tmp = tempDir();
  let s3: S3Server;
  let env: (bucket: string) => Record<string, string>;

  beforeAll(async () => {
    s3 = await startS3Server();
    env = (bucket) =>
      snapEnv(`s3:${s3.endpoint}/${bucket}/some/prefix`, {
        AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
        AWS_REGION: s3.region,
        XDG_CACHE_HOME: join(tmp.path, 'cache'),
      });
  });
  afterAll(async () => {
    await s3?.stop();
    tmp.cleanup();
  });

  it('init creates a missing bucket; backup and restore round-trip byte-identical', async () => {
    const src = join(tmp.path, 'src');
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'sub', 'a'), prng(11).bytes(2_500_000));
    writeFileSync(join(src, 'b'), 'bee');
    const e = env('fresh-bucket');
    const init = await snapRun(['init', '--kdf-n', '1024'], e);
    expect(init.stderr).toBe('');
    expect(init.code).toBe(0);
    expect((await snapRun(['init', '--kdf-n', '1024'], e)).code).toBe(1);
    expect((await snapRun(['backup', src], e)).code).toBe(0);
    const target = join(tmp.path, 'out');
    expect((await snapRun(['restore', 'latest', '--target', target], e)).code).toBe(0);
    expect(describeTree(join(target, src))).toEqual(describeTree(src));
  }, 60_000);

  it('a missing bucket on an existing-repository command is one clear line naming it', async () => {
    const r = await snapRun(['snapshots'], env('no-such-bucket'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('no-such-bucket');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  }, 30_000);
});
