// The test S3 server must never outlive the test run.

import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { s3rverCommand, startS3Server } from '../helpers/s3server.js';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !alive(pid);
}

describe('startS3Server', () => {
  it('listens on 127.0.0.1, and stop() kills it and removes its directory', async () => {
    const s = await startS3Server();
    try {
      expect(s.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(s.port).toBeGreaterThan(0);
      const res = await fetch(s.endpoint); // ListBuckets (s3rver lets unsigned requests through)
      expect(res.status).toBe(200);
      expect(await res.text()).toMatch(/<ListAllMyBucketsResult/);
      expect((await stat(s.directory)).isDirectory()).toBe(true);
    } finally {
      await s.stop();
    }
    expect(await waitGone(s.pid, 2000)).toBe(true);
    await expect(stat(s.directory)).rejects.toThrow(/ENOENT/);
    await s.stop(); // idempotent
  });

  it('the s3rver child exits by itself when its parent process dies', { timeout: 15_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'snap-s3rver-orphan-'));
    const { command, args } = s3rverCommand(dir);
    // A parent that starts the child the way the helper does, reports its pid, then is killed hard.
    const parentScript = `
      const { spawn } = require('node:child_process');
      const [command, ...args] = JSON.parse(process.env.CHILD);
      const c = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'] });
      c.stdout.on('data', (d) => { if (String(d).includes('READY')) console.log('CHILD ' + c.pid); });
      setInterval(() => {}, 1000);
    `;
    const parent = spawn(process.execPath, ['-e', parentScript], {
      env: { ...process.env, CHILD: JSON.stringify([command, ...args]) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const childPid = await new Promise<number>((resolve, reject) => {
        let out = '';
        parent.stdout!.on('data', (d: Buffer) => {
          out += String(d);
          const m = /CHILD (\d+)/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        parent.on('exit', () => reject(new Error('parent exited early')));
        setTimeout(() => reject(new Error('child did not start')), 10_000);
      });
      expect(alive(childPid)).toBe(true);
      parent.kill('SIGKILL');
      expect(await waitGone(childPid, 3000)).toBe(true);
    } finally {
      parent.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  });
});
