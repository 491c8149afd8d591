// The snap command that package.json's bin installs (src/cli/snap): a shell launcher that starts
// node with the flags V8 reads only at start-up. npm links it from elsewhere, so it is run here
// through a symlink in a directory whose name holds a space.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { initRepo, lastJson, SNAP, snapEnv, tempDir } from '../helpers/cli.js';

const MAIN = resolve(import.meta.dirname, '../../dist/src/cli/main.js');

describe('the snap launcher', () => {
  const tmp = tempDir();
  const linked = join(tmp.path, 'bin dir', 'snap');
  let env: Record<string, string>;

  beforeAll(() => {
    mkdirSync(join(tmp.path, 'bin dir'));
    symlinkSync(SNAP, linked);
    env = initRepo(join(tmp.path, 'repo'));
  });
  afterAll(() => tmp.cleanup());

  it('passes arguments, standard input and output, and the exit code through', () => {
    const data = Buffer.from('select 1;\n'.repeat(1000));
    const backup = spawnSync(linked, ['backup', '--stdin', '--stdin-filename', 'a name.sql', '--json'], { env, input: data });
    expect(backup.status, backup.stderr.toString()).toBe(0);
    expect(lastJson(backup.stdout.toString())).toMatchObject({ message_type: 'summary' });
    const dump = spawnSync(linked, ['dump', 'latest:/a name.sql'], { env });
    expect(dump.status, dump.stderr.toString()).toBe(0);
    expect(dump.stdout.equals(data)).toBe(true);
    const missing = spawnSync(linked, ['snapshots'], { env: snapEnv(join(tmp.path, 'no such repo')) });
    expect(missing.status).toBe(10);
  });

  it('becomes node, with --single-threaded-gc, running the program in the same process', async () => {
    const child = spawn(linked, ['backup', '--stdin', '--stdin-filename', 'x'], { env, stdio: ['pipe', 'ignore', 'pipe'] });
    const exited = new Promise<number | null>((res) => child.once('close', res));
    // The launcher's shell first, then (exec, same PID) node; wait for node while snap waits for input.
    let argv: string[] = [];
    for (let i = 0; i < 400 && !argv.includes(MAIN); i++) {
      await sleep(50);
      argv = readFileSync(`/proc/${child.pid}/cmdline`, 'latin1').split('\0').slice(0, -1);
      argv = argv.map((a) => (a.endsWith('main.js') ? resolve(a) : a));
    }
    child.stdin.end('data');
    expect(await exited).toBe(0);
    expect(argv.slice(1)).toEqual(['--single-threaded-gc', MAIN, 'backup', '--stdin', '--stdin-filename', 'x']);
  });
});
