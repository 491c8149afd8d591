// `npm run bench`: backup / re-backup / restore throughput, peak memory and repository size on a
// deterministic generated corpus (or --corpus DIR), next to restic when it is on PATH; then the
// component benchmarks (chunker, catalog, S3, prune) where they exist. Not part of `npm test`.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { xorshift32 } from './prng.js';

/** The snap command as package.json's bin installs it (the launcher, which starts the program). */
export const SNAP = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/cli/snap');
const MiB = 1024 * 1024;

interface Args {
  corpus?: string;
  sizeMiB: number;
  json: boolean;
  only?: string;
  /** Rounds of the core benchmark, each tool once per round, alternating. */
  repeat: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { sizeMiB: 1024, json: false, repeat: 1 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--corpus') a.corpus = argv[++i];
    else if (argv[i] === '--size') a.sizeMiB = Number(argv[++i]);
    else if (argv[i] === '--json') a.json = true;
    else if (argv[i] === '--only') a.only = argv[++i];
    else if (argv[i] === '--repeat') a.repeat = Number(argv[++i]);
    else throw new Error(`unknown argument ${argv[i]} (use --corpus DIR, --size MiB, --only core|chunker|catalog|s3|prune, --repeat N, --json)`);
  }
  if (!Number.isInteger(a.repeat) || a.repeat < 1) throw new Error('--repeat takes a whole number of rounds, at least 1');
  return a;
}


const WORDS = 'const let function return if else for while import export from class new this await async try catch throw switch case break default null undefined true false string number interface type extends implements public private static readonly value result error index count buffer length data file path name size time'.split(' ');

/**
 * A deterministic corpus of about `sizeMiB`: 30% source-like text in many files, 25% binaries
 * (compressible structure with random runs), 40% incompressible data in large files, 5% tiny files.
 */
export function generateCorpus(dir: string, sizeMiB: number): void {
  const r = xorshift32(2026);
  const total = sizeMiB * MiB;
  const text = (n: number) => {
    const parts: string[] = [];
    let len = 0;
    while (len < n) {
      const line = Array.from({ length: 3 + (r.next() % 9) }, () => WORDS[r.next() % WORDS.length]).join(' ') + ';\n';
      parts.push('  '.repeat(r.next() % 4) + line);
      len += line.length + 2;
    }
    return parts.join('').slice(0, n);
  };
  let written = 0;
  const put = (rel: string, data: Buffer | string) => {
    const p = join(dir, rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, data);
    written += data.length;
  };
  for (let i = 0; written < total * 0.3; i++) put(`src/mod${i % 97}/file${i}.ts`, text(2000 + (r.next() % 30000)));
  for (let i = 0; written < total * 0.55; i++) {
    const parts: Buffer[] = [];
    for (let j = 0; j < 64; j++) parts.push(j % 3 === 0 ? r.bytes(16384) : Buffer.from(text(16384)));
    put(`bin/tool${i}`, Buffer.concat(parts));
  }
  for (let i = 0; written < total * 0.95; i++) put(`media/blob${i}.bin`, r.bytes(32 * MiB));
  for (let i = 0; written < total; i++) put(`etc/conf${i % 50}/small${i}.conf`, text(64 + (r.next() % 2000)));
}

interface Run {
  seconds: number;
  peakRssMiB: number;
  code: number;
}

/** Runs a command, sampling its peak RSS (VmHWM) from /proc until it exits. */
function measure(cmd: string, args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let peak = 0;
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const sample = () => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peak = Math.max(peak, Number(m[1]) / 1024);
      } catch {
        // exited
      }
    };
    const timer = setInterval(sample, 20);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearInterval(timer);
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      if (code !== 0 && code !== 3) reject(new Error(`${cmd} ${args.join(' ')} failed (${code}): ${stderr.slice(0, 500)}`));
      else resolvePromise({ seconds, peakRssMiB: peak, code: code ?? -1 });
    });
  });
}

function duBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) total += statSync(join(e.parentPath, e.name)).size;
  return total;
}

/**
 * Reads every file of a tree once, so that a backup starts with the corpus in the page cache (and
 * a restore with the repository).
 * Pages of a file read minutes ago were found evicted on the shared benchmark machine (a backup
 * then took 17-40 s instead of 9-10 s), and whichever tool ran first paid for it.
 */
function readWhole(dir: string): void {
  const buf = Buffer.allocUnsafe(1 << 20);
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const fd = openSync(join(e.parentPath, e.name), 'r');
    try {
      while (readSync(fd, buf, 0, buf.length, null) > 0);
    } finally {
      closeSync(fd);
    }
  }
}

interface ToolResult {
  backupS: number;
  backupMBps: number;
  rebackupS: number;
  restoreS: number;
  restoreMBps: number;
  peakRssMiB: number;
  /** Peak RSS of each step: the overall peak says which step to look at. */
  rssMiB: { backup: number; rebackup: number; restore: number };
  repoMiB: number;
}

async function runTool(name: 'snap' | 'restic', corpus: string, work: string, corpusBytes: number, round: number): Promise<ToolResult> {
  const repo = join(work, `${name}-repo`);
  rmSync(repo, { recursive: true, force: true });
  // Restore targets stay until the end of the bench. On ext4, creating files within minutes of
  // deleting tens of thousands (the previous restore) spent half of a restore's CPU in the
  // kernel's inode allocator (perf: recently_deleted under ext4_create), for whichever tool came
  // next: that measured the bench, not the tools.
  const target = join(work, `${name}-restore-${round}`);
  const base = { ...(process.env as Record<string, string>) };
  // Each tool's cache (snap's holds the catalog) in the work directory, removed with it.
  const env = name === 'snap' ? { ...base, SNAP_PASSWORD: 'bench', SNAP_REPOSITORY: repo, XDG_CACHE_HOME: join(work, 'snap-cache') } : { ...base, RESTIC_PASSWORD: 'bench', RESTIC_REPOSITORY: repo, RESTIC_CACHE_DIR: join(work, 'restic-cache') };
  const cmd = name === 'snap' ? SNAP : 'restic';
  // Flush dirty pages first: otherwise one step pays for the previous step's (or tool's) writeback.
  const run = (args: string[]) => {
    spawnSync('sync');
    return measure(cmd, args, env);
  };
  await run(['init']);
  readWhole(corpus);
  const b1 = await run(['-q', 'backup', corpus]);
  readWhole(corpus);
  const b2 = await run(['-q', 'backup', corpus]);
  // Each restore starts with the repository in the page cache, as each backup starts with the
  // corpus in it. snap drops its data packs from the cache as it writes them and restic keeps
  // them: without this, the restore would compare a read from disk with one from memory.
  readWhole(repo);
  const rs = await run(['-q', 'restore', 'latest', '--target', target]);
  const repoBytes = duBytes(repo);
  const mbps = (s: number) => corpusBytes / MiB / s;
  return {
    backupS: b1.seconds,
    backupMBps: mbps(b1.seconds),
    rebackupS: b2.seconds,
    restoreS: rs.seconds,
    restoreMBps: mbps(rs.seconds),
    peakRssMiB: Math.max(b1.peakRssMiB, b2.peakRssMiB, rs.peakRssMiB),
    rssMiB: { backup: b1.peakRssMiB, rebackup: b2.peakRssMiB, restore: rs.peakRssMiB },
    repoMiB: repoBytes / MiB,
  };
}

function ratiosOf(snap: ToolResult, restic: ToolResult): Record<string, number> {
  return {
    backup: snap.backupS / restic.backupS,
    rebackup: snap.rebackupS / restic.rebackupS,
    restore: snap.restoreS / restic.restoreS,
    repoSize: snap.repoMiB / restic.repoMiB,
    peakRss: snap.peakRssMiB / restic.peakRssMiB,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function medianRecord<R extends Record<string, number>>(rs: R[]): R {
  return Object.fromEntries(Object.keys(rs[0]!).map((k) => [k, median(rs.map((r) => r[k]!))])) as R;
}

/** Each figure's median over the rounds (so the result may mix rounds). */
function medianResult(rs: ToolResult[]): ToolResult {
  const m = (f: (r: ToolResult) => number) => median(rs.map(f));
  return {
    backupS: m((r) => r.backupS),
    backupMBps: m((r) => r.backupMBps),
    rebackupS: m((r) => r.rebackupS),
    restoreS: m((r) => r.restoreS),
    restoreMBps: m((r) => r.restoreMBps),
    peakRssMiB: m((r) => r.peakRssMiB),
    rssMiB: medianRecord(rs.map((r) => r.rssMiB)),
    repoMiB: m((r) => r.repoMiB),
  };
}

function hasRestic(): boolean {
  return spawnSync('restic', ['version']).status === 0;
}

async function core(args: Args): Promise<Record<string, unknown>> {
  const work = mkdtempSync(join(tmpdir(), 'snap-bench-'));
  try {
    const corpus = args.corpus ? resolve(args.corpus) : join(work, 'corpus');
    if (!args.corpus) {
      process.stderr.write(`generating a ${args.sizeMiB} MiB corpus...\n`);
      generateCorpus(corpus, args.sizeMiB);
    }
    if (!existsSync(corpus)) throw new Error(`--corpus ${corpus} does not exist`);
    const bytes = duBytes(corpus);
    process.stderr.write(`corpus: ${(bytes / MiB).toFixed(0)} MiB\n`);
    const restic = hasRestic();
    // On a shared machine single runs vary by 20% and more: with --repeat the tools alternate,
    // and the medians (of each figure, and of the ratios within a round) are reported.
    const rounds: { snap: ToolResult; restic?: ToolResult; ratios?: Record<string, number> }[] = [];
    for (let r = 0; r < args.repeat; r++) {
      const tag = args.repeat > 1 ? ` (round ${r + 1} of ${args.repeat})` : '';
      process.stderr.write(`snap${tag}...\n`);
      const s = await runTool('snap', corpus, work, bytes, r);
      if (!restic) {
        rounds.push({ snap: s });
        continue;
      }
      process.stderr.write(`restic${tag}...\n`);
      const t = await runTool('restic', corpus, work, bytes, r);
      rounds.push({ snap: s, restic: t, ratios: ratiosOf(s, t) });
    }
    const out: Record<string, unknown> = { corpusMiB: bytes / MiB, snap: medianResult(rounds.map((r) => r.snap)) };
    if (restic) {
      out.restic = medianResult(rounds.map((r) => r.restic!));
      out.ratios = medianRecord(rounds.map((r) => r.ratios!));
      out.targets = { backup: 0.6, rebackup: 0.4, restore: 0.8, repoSize: 0.9, peakRss: 1.5 };
    } else out.restic = 'not installed (apt-get install restic)';
    if (args.repeat > 1) out.rounds = rounds;
    return out;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function optional(name: string, file: string, fn: string): Promise<unknown> {
  const url = new URL(`./${file}.js`, import.meta.url);
  if (!existsSync(fileURLToPath(url))) return 'not built';
  const mod = (await import(url.href)) as Record<string, (() => Promise<unknown>) | undefined>;
  const f = mod[fn];
  if (!f) return 'missing';
  process.stderr.write(`${name}...\n`);
  return f();
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const results: Record<string, unknown> = {};
  const want = (k: string) => !args.only || args.only === k;
  if (want('core')) results.core = await core(args);
  if (want('chunker')) results.chunker = await optional('chunker', 'chunker', 'benchChunker');
  if (want('catalog')) results.catalog = await optional('catalog', 'catalog', 'benchCatalog');
  if (want('s3')) results.s3 = await optional('s3', 's3', 'benchS3');
  if (want('prune')) results.prune = await optional('prune', 'prune', 'benchPrune');
  process.stdout.write(JSON.stringify(results, (_, v) => (typeof v === 'number' ? Math.round(v * 1000) / 1000 : v), args.json ? undefined : 2) + '\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main().catch((e) => {
  process.stderr.write(`bench: ${(e as Error).message}\n`);
  process.exit(1);
});
