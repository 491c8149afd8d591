// Prune after forgetting a third of the snapshots of a versioned corpus (12 versions of 24 files of
// 256 KiB, one third of the files rewritten per version): wall time and peak RSS of `snap prune`,
// next to `restic forget --prune` on the same data when restic is on PATH.
// Run: node dist/bench/prune.js
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pseudoRandomBytes } from './chunker.js';
import { SNAP } from './main.js';

const VERSIONS = 12;
const FILES = 24;

/** Runs a command under /usr/bin/time: wall seconds and peak RSS in MiB. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv): { seconds: number; rssMiB: number } {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', cmd, ...args], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  const [sec, kb] = r.stderr.trim().split('\n').pop()!.split(' ');
  return { seconds: Number(sec), rssMiB: Number(kb) / 1024 };
}

function writeVersion(dir: string, v: number): void {
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < FILES; i++) {
    const gen = i % 3 === v % 3 ? v : 0;
    writeFileSync(join(dir, `f${i}.bin`), pseudoRandomBytes(256 * 1024, 1 + i * 1000 + gen));
  }
}

export async function benchPrune(): Promise<Record<string, number | string>> {
  const root = mkdtempSync(join(tmpdir(), 'snap-bench-prune-'));
  const env = { ...process.env, SNAP_PASSWORD: 'bench', RESTIC_PASSWORD: 'bench' };
  const src = join(root, 'src');
  const snapRepo = join(root, 'snap');
  const resticRepo = join(root, 'restic');
  const hasRestic = spawnSync('restic', ['version']).status === 0;
  try {
    execFileSync(SNAP, ['-r', snapRepo, 'init', '--kdf-n', '1024', '--chunk-min', '16K', '--chunk-avg', '64K', '--chunk-max', '256K'], { env });
    if (hasRestic) execFileSync('restic', ['-r', resticRepo, 'init', '-q'], { env });
    for (let v = 0; v < VERSIONS; v++) {
      writeVersion(src, v);
      const time = new Date(Date.UTC(2024, v, 1)).toISOString();
      execFileSync(SNAP, ['-r', snapRepo, '-q', 'backup', src, '--time', time], { env });
      if (hasRestic) execFileSync('restic', ['-r', resticRepo, '-q', 'backup', src, '--time', time.replace('T', ' ').slice(0, 19)], { env });
    }
    // Forget every third snapshot (about a third), then prune.
    const ids = (JSON.parse(execFileSync(SNAP, ['-r', snapRepo, '--json', 'snapshots'], { env, encoding: 'utf8' })) as { id: string }[]).map((s) => s.id);
    const forget = ids.filter((_, i) => i % 3 === 0);
    execFileSync(SNAP, ['-r', snapRepo, '-q', 'forget', ...forget], { env });
    const snapRun = timed(SNAP, ['-r', snapRepo, '-q', 'prune'], env);
    const out: Record<string, number | string> = { versions: VERSIONS, forgotten: forget.length, snap_prune_s: snapRun.seconds, snap_prune_peak_rss_mib: Math.round(snapRun.rssMiB) };
    if (hasRestic) {
      const rids = (JSON.parse(execFileSync('restic', ['-r', resticRepo, '--json', 'snapshots'], { env, encoding: 'utf8' })) as { id: string }[]).map((s) => s.id);
      const r = timed('restic', ['-r', resticRepo, '-q', 'forget', '--prune', ...rids.filter((_, i) => i % 3 === 0)], env);
      out.restic_forget_prune_s = r.seconds;
      out.restic_forget_prune_peak_rss_mib = Math.round(r.rssMiB);
    } else out.restic = 'not on PATH';
    return out;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  benchPrune().then((r) => console.log(JSON.stringify(r)), (e) => {
    console.error(e);
    process.exit(1);
  });
}
