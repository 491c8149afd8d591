// Shared by the test/cli/s3-*.test.ts files: s3rver behind the cold proxy, and running the CLI
// against it without blocking this process (the proxy lives here and must keep answering, so the
// synchronous snap() helper would deadlock).
import { S3Backend } from '../../src/backend/s3.js';
import { snapEnv, snapRun, type RunResult } from '../helpers/cli.js';
import { startColdProxy, type ColdProxy, type ColdProxyOptions } from '../helpers/cold-proxy.js';
import { startS3Server, type S3Server } from '../helpers/s3server.js';

export interface S3Cli {
  s3: S3Server;
  proxy: ColdProxy;
  /** The bucket on s3rver directly (not through the proxy, so not counted). */
  direct: S3Backend;
  env: Record<string, string>;
  run(args: string[]): Promise<RunResult>;
  stop(): Promise<void>;
}

export async function startS3Cli(bucket: string, cacheDir: string, proxyOpts: Partial<ColdProxyOptions> = {}): Promise<S3Cli> {
  const s3 = await startS3Server();
  const proxy = await startColdProxy({ upstream: s3.endpoint, credentials: { S3RVER: 'S3RVER' }, ...proxyOpts });
  const direct = new S3Backend({ endpoint: s3.endpoint, bucket, prefix: 'repo', credentials: s3.credentials, region: s3.region });
  await direct.create();
  const env = snapEnv(`s3:${proxy.endpoint}/${bucket}/repo`, {
    AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
    AWS_REGION: s3.region,
    NODE_NO_WARNINGS: '1',
  });
  return {
    s3,
    proxy,
    direct,
    env,
    run: (args) => snapRun(['--cache-dir', cacheDir, ...args], env),
    stop: async () => {
      await direct.close();
      await proxy.close();
      await s3.stop();
    },
  };
}
