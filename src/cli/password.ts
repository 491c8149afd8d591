// Where the password comes from: SNAP_PASSWORD, --password-file, --password-command, or a prompt
// on the terminal (never echoed, never logged).
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { UsageError } from '../errors.js';

export interface PasswordSources {
  passwordFile?: string | undefined;
  passwordCommand?: string | undefined;
}

function stripNewline(s: string): string {
  return s.replace(/\r?\n$/, '');
}

export async function getPassword(src: PasswordSources, prompt = 'enter password for repository: ', confirm = false): Promise<string> {
  if (src.passwordFile) {
    try {
      return stripNewline(readFileSync(src.passwordFile, 'utf8'));
    } catch (e) {
      throw new UsageError(`cannot read --password-file ${src.passwordFile}: ${(e as { code?: string }).code ?? (e as Error).message}`);
    }
  }
  if (src.passwordCommand) {
    try {
      return stripNewline(execFileSync('/bin/sh', ['-c', src.passwordCommand], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }));
    } catch {
      throw new UsageError('--password-command failed (non-zero exit)');
    }
  }
  const env = process.env.SNAP_PASSWORD;
  if (env !== undefined) return env;
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    throw new UsageError('no password given', { hint: 'set SNAP_PASSWORD, or use --password-file or --password-command (no terminal to prompt on)' });
  }
  const pw = await readHidden(prompt);
  if (confirm) {
    const again = await readHidden('enter password again: ');
    if (again !== pw) throw new UsageError('passwords do not match');
  }
  return pw;
}

/** Reads a line from the terminal without echo. */
function readHidden(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    let buf = '';
    const onData = (d: Buffer) => {
      for (const ch of d.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          done();
          resolve(buf);
          return;
        }
        if (ch === '\u0003') {
          done();
          reject(new UsageError('interrupted at the password prompt'));
          return;
        }
        if (ch === '\u007f') buf = buf.slice(0, -1);
        else buf += ch;
      }
    };
    const done = () => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    stdin.on('data', onData);
  });
}
