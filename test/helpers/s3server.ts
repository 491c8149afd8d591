// Starts s3rver (a local S3 emulator) for tests: on 127.0.0.1, a free port, in a fresh temporary
// directory, in a child process that dies with its parent.
//
// Why a child process: s3rver encrypts ListObjectsV2 continuation tokens with DES, which OpenSSL 3
// only offers with `--openssl-legacy-provider`; without it every truncated listing fails with 500.
// The flag must be given to the node process hosting s3rver, not to the test runner.
//
// The child exits by itself when its stdin closes or its parent changes (the test process died), so a
// crashed test run never leaves a server behind. stop() kills it and removes the directory.
//
//   const s3 = await startS3Server();
//   const backend = new S3Backend({ endpoint: s3.endpoint, bucket: 'b', credentials: s3.credentials, region: s3.region });
//   ...
//   await s3.stop();

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** s3rver's built-in account. It checks the access key ID (not SigV4 signatures). */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;
export const S3RVER_REGION = 'us-east-1';

export interface S3Server {
  /** e.g. http://127.0.0.1:40123 */
  endpoint: string;
  port: number;
  credentials: { accessKeyId: string; secretAccessKey: string };
  region: string;
  /** s3rver's storage directory (removed by stop()). */
  directory: string;
  pid: number;
  stop(): Promise<void>;
}

const CHILD_SCRIPT = `
import { pathToFileURL } from 'node:url';
const [s3rverPath, directory] = process.argv.slice(1);
const { default: S3rver } = await import(pathToFileURL(s3rverPath).href);
const server = new S3rver({ address: '127.0.0.1', port: 0, directory, silent: true });
const addr = await server.run();
const parent = process.ppid;
const quit = () => process.exit(0);
process.stdin.on('end', quit);
process.stdin.on('close', quit);
process.stdin.resume();
setInterval(() => { if (process.ppid !== parent) quit(); }, 500);
process.on('SIGTERM', quit);
process.stdout.write('READY ' + addr.port + '\\n');
`;

/**
 * The command line of the s3rver child: it prints `READY <port>` on stdout, and exits when its stdin
 * closes or its parent process goes away. Exported so a test can check that it does.
 */
export function s3rverCommand(directory: string): { command: string; args: string[] } {
  const s3rverPath = createRequire(import.meta.url).resolve('s3rver');
  return {
    command: process.execPath,
    args: ['--openssl-legacy-provider', '--input-type=module', '-e', CHILD_SCRIPT, s3rverPath, directory],
  };
}

export async function startS3Server(opts: { startTimeoutMs?: number } = {}): Promise<S3Server> {
  const directory = await mkdtemp(join(tmpdir(), 'snap-s3rver-'));
  const { command, args } = s3rverCommand(directory);
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-4000);
  });
  try {
    const port = await waitReady(child, opts.startTimeoutMs ?? 15_000, () => stderr);
    let stopped: Promise<void> | undefined;
    return {
      endpoint: `http://127.0.0.1:${port}`,
      port,
      credentials: { ...S3RVER_CREDENTIALS },
      region: S3RVER_REGION,
      directory,
      pid: child.pid!,
      stop: () => (stopped ??= stopChild(child).then(() => rm(directory, { recursive: true, force: true }))),
    };
  } catch (err) {
    await stopChild(child);
    await rm(directory, { recursive: true, force: true });
    throw err;
  }
}

function waitReady(child: ChildProcess, timeoutMs: number, stderr: () => string): Promise<number> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`s3rver did not start within ${timeoutMs} ms: ${stderr()}`)), timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      reject(err);
    };
    child.once('exit', (code, signal) => fail(new Error(`s3rver exited early (${code ?? signal}): ${stderr()}`)));
    child.once('error', fail);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /READY (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.stdin?.end();
    child.kill('SIGTERM');
  });
}
