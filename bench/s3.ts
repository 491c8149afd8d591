// S3 benchmark: backup and restore throughput of the CLI against s3rver on 127.0.0.1, next to the
// local backend on the same corpus (bench/main.ts generateCorpus, 200 MiB mixed by default; set
// SNAP_BENCH_S3_MIB), and thaw amplification of single-directory restores: bytes of the packs a
// restore of one directory needs (what a cold restore thaws, from `restore --plan`) / bytes restored.
// Amplification is measured at the default 16 MiB packs and at --pack-size 2M (local repository:
// placement does not depend on the backend).
// Run: node dist/bench/s3.js
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { S3Backend } from '../src/backend/s3.js';
import { generateCorpus, SNAP } from './main.js';

const MiB = 1024 * 1024;

interface S3rverInstance {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
}
type S3rverClass = new (o: { address: string; port: number; directory: string; silent: boolean }) => S3rverInstance;

/** Runs snap in a child process; async because s3rver answers from this process. */
function snapRun(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string; seconds: number }> {
  const start = process.hrtime.bigint();
  const child = spawn(SNAP, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      const r = { code: code ?? -1, stdout, stderr, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
      if (r.code !== 0) reject(new Error(`snap ${args.join(' ')} failed (${r.code}): ${stderr.trim()}`));
      else resolve(r);
    });
  });
}

function treeBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) n += treeBytes(p);
    else if (e.isFile()) n += statSync(p).size;
  }
  return n;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Thaw amplification of restoring each of `dirs` (paths inside the corpus) alone. */
async function amplification(corpus: string, dirs: string[], env: Record<string, string>, cache: string): Promise<number[]> {
  const out: number[] = [];
  for (const d of dirs) {
    const r = await snapRun(['--cache-dir', cache, 'restore', `latest:${join(corpus, d)}`, '--plan', '--json'], env);
    const plan = JSON.parse(r.stdout.trim().split('\n').pop()!) as { total: { bytes: number } };
    out.push(plan.total.bytes / treeBytes(join(corpus, d)));
  }
  return out;
}

export async function benchS3(opts: { sizeMiB?: number } = {}): Promise<Record<string, number | string>> {
  const sizeMiB = opts.sizeMiB ?? Number(process.env.SNAP_BENCH_S3_MIB ?? 200);
  const work = mkdtempSync(join(tmpdir(), 'snap-bench-s3-'));
  const S3rver = createRequire(import.meta.url)('s3rver') as S3rverClass;
  const server = new S3rver({ address: '127.0.0.1', port: 0, directory: join(work, 's3rver'), silent: true });
  const { port } = await server.run();
  const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  try {
    const corpus = join(work, 'corpus');
    generateCorpus(corpus, sizeMiB);
    const bytes = treeBytes(corpus);
    const bucket = new S3Backend({ endpoint: `http://127.0.0.1:${port}`, bucket: 'bench', prefix: 'repo', credentials, region: 'us-east-1' });
    await bucket.create();
    await bucket.close();
    const cache = join(work, 'cache');
    const envFor = (repo: string) => ({
      ...(process.env as Record<string, string>),
      SNAP_REPOSITORY: repo,
      SNAP_PASSWORD: 'bench',
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      AWS_REGION: 'us-east-1',
      NODE_NO_WARNINGS: '1',
    });
    const out: Record<string, number | string> = { corpusMiB: bytes / MiB };
    const s3Env = envFor(`s3:http://127.0.0.1:${port}/bench/repo`);
    for (const [name, env] of [['local', envFor(join(work, 'repo-local'))], ['s3', s3Env]] as const) {
      await snapRun(['init', '--kdf-n', '1024'], env);
      const b = await snapRun(['--cache-dir', cache, 'backup', '--quiet', corpus], env);
      out[`${name}BackupMiBps`] = bytes / MiB / b.seconds;
      const r = await snapRun(['--cache-dir', cache, 'restore', 'latest', '--target', join(work, `restore-${name}`)], env);
      out[`${name}RestoreMiBps`] = bytes / MiB / r.seconds;
      rmSync(join(work, `restore-${name}`), { recursive: true, force: true });
    }
    out.s3BackupVsLocal = (out.s3BackupMiBps as number) / (out.localBackupMiBps as number);
    out.s3RestoreVsLocal = (out.s3RestoreMiBps as number) / (out.localRestoreMiBps as number);

    // Top-level directories (tens of MiB) and small ones (well under one pack).
    const top = readdirSync(corpus).sort();
    const small = ['src/mod1', 'src/mod50', 'etc/conf7', 'etc/conf30'].filter((d) => existsSync(join(corpus, d)));
    const bigDirs = top.filter((d) => treeBytes(join(corpus, d)) >= 8 * MiB);
    const ampTop = await amplification(corpus, bigDirs, s3Env, cache);
    const ampSmall = await amplification(corpus, small, s3Env, cache);
    out.amplificationTopDirsMax = Math.max(...ampTop);
    out.amplificationTopDirsMedian = median(ampTop);
    out.amplificationSmallDirsMedian = median(ampSmall);
    out.topDirs = bigDirs.map((d, i) => `${d}=${ampTop[i]!.toFixed(2)}`).join(' ');

    const small2m = envFor(join(work, 'repo-2m'));
    await snapRun(['init', '--kdf-n', '1024', '--pack-size', '2M'], small2m);
    await snapRun(['--cache-dir', cache, 'backup', '--quiet', corpus], small2m);
    const ampTop2 = await amplification(corpus, bigDirs, small2m, cache);
    const ampSmall2 = await amplification(corpus, small, small2m, cache);
    out.amplificationTopDirsMaxPack2M = Math.max(...ampTop2);
    out.amplificationSmallDirsMedianPack2M = median(ampSmall2);
    out.amplificationTarget = 1.5;
    return out;
  } finally {
    await server.close();
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  benchS3().then(
    (r) => process.stdout.write(JSON.stringify(r, (_, v) => (typeof v === 'number' ? Math.round(v * 1000) / 1000 : v), 2) + '\n'),
    (e) => {
      process.stderr.write(`bench s3: ${(e as Error).message}\n`);
      process.exit(1);
    },
  );
}
