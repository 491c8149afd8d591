// Recovery from bit rot in an S3 repository: check names the damaged pack, `repair packs` keeps its
// intact blobs and removes it, and the next backup stores the lost blob again from the file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lastJson, tempDir } from '../helpers/cli.js';
import { describeTree, prng } from '../helpers/tree.js';
import { startS3Cli, type S3Cli } from './s3-cli.js';

describe('repair packs on S3', () => {
  const tmp = tempDir();
  const src = join(tmp.path, 'src');
  let cli: S3Cli;

  beforeAll(async () => {
    cli = await startS3Cli('rot', join(tmp.path, 'cache'));
    mkdirSync(src, { recursive: true });
    for (let i = 0; i < 4; i++) writeFileSync(join(src, `f${i}`), prng(90 + i).bytes(200_000));
    const init = await cli.run(['init', '--kdf-n', '1024', '--chunk-min', '16K', '--chunk-avg', '64K', '--chunk-max', '256K', '--pack-size', '256K']);
    expect(init.code, init.stderr).toBe(0);
    const b = await cli.run(['backup', src]);
    expect(b.code, b.stderr).toBe(0);
  }, 30_000);

  afterAll(async () => {
    await cli?.stop();
    tmp.cleanup();
  });

  it('salvages a pack with a rotten blob, and a backup heals the repository', async () => {
    const packs: string[] = [];
    for await (const f of cli.direct.list('data')) packs.push(f.name);
    const rotten = packs.sort()[0]!;
    const bytes = await cli.direct.load({ type: 'data', name: rotten });
    bytes[100] ^= 0x01;
    await cli.direct.save({ type: 'data', name: rotten }, bytes);

    const c = await cli.run(['check', '--read-data']);
    expect(c.code).toBe(1);
    expect(c.stdout).toContain(`hint: \`snap repair packs ${rotten.slice(0, 8)}\``);

    const saveDir = join(tmp.path, 'saved');
    const r = await cli.run(['repair', 'packs', rotten, '--save-dir', saveDir, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const [pack] = lastJson(r.stdout).packs;
    expect(pack).toMatchObject({ id: rotten, salvaged: pack.blobs - 1 });
    expect(pack.lost).toHaveLength(1);
    expect(existsSync(join(saveDir, rotten))).toBe(true);
    const left: string[] = [];
    for await (const f of cli.direct.list('data')) left.push(f.name);
    expect(left).not.toContain(rotten);

    expect((await cli.run(['backup', src])).code).toBe(0);
    const after = await cli.run(['check', '--read-data']);
    expect(after.code, after.stdout).toBe(0);
    const target = join(tmp.path, 'out');
    expect((await cli.run(['restore', `latest:${src}`, '--target', target])).code).toBe(0);
    expect(describeTree(target)).toEqual(describeTree(src));
  }, 60_000);
});
