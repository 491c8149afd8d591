// A backup through the cold proxy with 5% injected faults (500, 503 SlowDown, connection resets,
// latency) completes, and the repository it leaves passes `snap check --read-data` and restores
// byte-identical.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/cli.js';
import { describeTree, prng } from '../helpers/tree.js';
import { startS3Cli, type S3Cli } from './s3-cli.js';

const KiB = 1024;

describe('backup under injected S3 faults', () => {
  const tmp = tempDir();
  const src = join(tmp.path, 'src');
  let cli: S3Cli;

  beforeAll(async () => {
    cli = await startS3Cli('faulty', join(tmp.path, 'cache'), { seed: 9, latencyMs: [5, 40] });
    const r = prng(3);
    for (let d = 0; d < 4; d++) {
      mkdirSync(join(src, `dir${d}`), { recursive: true });
      for (let f = 0; f < 8; f++) writeFileSync(join(src, `dir${d}`, `file${f}`), r.bytes((f * 97 + d * 31) * KiB + 123));
    }
    const init = await cli.run(['init', '--kdf-n', '1024', '--chunk-min', '16K', '--chunk-avg', '64K', '--chunk-max', '256K', '--pack-size', '64K']);
    expect(init.code, init.stderr).toBe(0);
  }, 20_000);

  afterAll(async () => {
    await cli?.stop();
    tmp.cleanup();
  });

  it('completes with 5% faults, then check --read-data passes and a full restore matches', async () => {
    const { proxy } = cli;
    proxy.setFaultRate(0.05);
    const b = await cli.run(['backup', src]);
    proxy.setFaultRate(0);
    expect(b.code, b.stderr).toBe(0);
    const injected = proxy.faults.internal + proxy.faults.slowdown + proxy.faults.reset;
    // The faults really happened, on uploads too.
    expect(injected, `${proxy.log.length} requests`).toBeGreaterThan(0);
    expect(proxy.count({ method: 'PUT', fault: 'internal' }) + proxy.count({ method: 'PUT', fault: 'slowdown' }) + proxy.count({ method: 'PUT', fault: 'reset' })).toBeGreaterThan(0);

    const check = await cli.run(['check', '--read-data']);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    const target = join(tmp.path, 'out');
    const r = await cli.run(['restore', `latest:${src}`, '--target', target]);
    expect(r.code, r.stderr).toBe(0);
    expect(describeTree(target)).toEqual(describeTree(src));
  }, 40_000);
});
