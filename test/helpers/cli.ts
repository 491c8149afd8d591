// Runs the compiled snap CLI as a user would, in a child process.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The snap command as package.json's bin installs it: the launcher, which runs the compiled program. */
export const SNAP = resolve(import.meta.dirname, '../../src/cli/snap');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The JSON messages of a --json run, one per line (any: each command has its own shapes). */
export const jsonLines = (s: string): any[] => s.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
/** The last JSON message of a --json run (a command's summary). */
export const lastJson = (s: string): any => jsonLines(s).pop();

export function snapEnv(repo: string, extra: Record<string, string> = {}): Record<string, string> {
  return { ...(process.env as Record<string, string>), SNAP_REPOSITORY: repo, SNAP_PASSWORD: 'correct horse', ...extra };
}

/**
 * Runs snap synchronously; `input` is fed to stdin. With `timeoutMs`, a snap still running then is
 * killed (code -1): for a run that might never end.
 */
export function snap(args: string[], env: Record<string, string>, input?: Buffer | string, timeoutMs?: number): RunResult {
  const deadline = timeoutMs === undefined ? {} : { timeout: timeoutMs, killSignal: 'SIGKILL' as const };
  const r = spawnSync(SNAP, args, { env, input: input ?? '', maxBuffer: 256 << 20, ...deadline });
  return { code: r.status ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** Runs snap asynchronously (for killing it mid-way). */
export function snapAsync(args: string[], env: Record<string, string>) {
  return spawn(SNAP, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
}

export interface AsyncRunResult extends RunResult {
  /** The signal that ended snap (code is then -1), or null. */
  signal: NodeJS.Signals | null;
}

/**
 * Runs snap without blocking this process (servers and proxies living in this process keep
 * answering; several runs can overlap); resolves with its output once it exits.
 */
export function snapRun(args: string[], env: Record<string, string>): Promise<AsyncRunResult> & { pid: number } {
  const child = snapAsync(args, env);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<AsyncRunResult>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code: code ?? -1, signal, stdout, stderr }));
  });
  return Object.assign(done, { pid: child.pid! });
}

/**
 * Runs snap and sends it `signal` once, as soon as `ready()` holds (polled every `pollMs`);
 * resolves with how it exited and whether the signal was sent before it did.
 */
export async function snapSignalled(args: string[], env: Record<string, string>, signal: NodeJS.Signals, ready: () => boolean, pollMs: number): Promise<{ code: number | null; stderr: string; sent: boolean }> {
  const child = snapAsync(args, env);
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  let sent = false;
  const poll = setInterval(() => {
    if (!sent && ready()) {
      sent = true;
      child.kill(signal);
    }
  }, pollMs);
  const code = await exited;
  clearInterval(poll);
  return { code, stderr, sent };
}

/**
 * One Ctrl-C (a single SIGINT: a second would mean "stop now" and skip the clean-up) as soon as
 * `ready()` holds.
 */
export function snapInterrupted(args: string[], env: Record<string, string>, ready: () => boolean, pollMs: number): Promise<{ code: number | null; stderr: string }> {
  return snapSignalled(args, env, 'SIGINT', ready, pollMs);
}

/** A fresh repository with a fast KDF (tests only). */
export function initRepo(repo: string, extraArgs: string[] = []): Record<string, string> {
  const env = snapEnv(repo);
  const r = snap(['init', '--kdf-n', '1024', ...extraArgs], env);
  if (r.code !== 0) throw new Error(`snap init failed: ${r.stderr}`);
  return env;
}

export function tempDir(prefix = 'snap-test-'): { path: string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}
