// Where the password comes from: --password-file, --password-command, then the environment
// (SNAP_PASSWORD_FILE, SNAP_PASSWORD_COMMAND, SNAP_PASSWORD, in restic's order), or a prompt on
// the terminal (never echoed, never logged).
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { UsageError } from '../errors.js';

export interface PasswordSources {
  passwordFile?: string | undefined;
  passwordCommand?: string | undefined;
}

/**
 * The names of one repository's flags and variables: those of the repository a command works on,
 * or those of `copy`'s source (--from-repo, SNAP_FROM_PASSWORD, ... as restic's).
 */
export interface RepositoryNames {
  /** Flag prefix: '' or 'from-'. */
  flag: string;
  /** Variable prefix: 'SNAP_' or 'SNAP_FROM_'. */
  env: string;
  /** What the prompt calls it. */
  what: string;
}

export const MAIN_REPOSITORY: RepositoryNames = { flag: '', env: 'SNAP_', what: 'repository' };
export const SOURCE_REPOSITORY: RepositoryNames = { flag: 'from-', env: 'SNAP_FROM_', what: 'source repository' };

function stripNewline(s: string): string {
  return s.replace(/\r?\n$/, '');
}

/** `from` names the flag or variable, for the message. */
function readPasswordFile(file: string, from: string): string {
  try {
    return stripNewline(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`cannot read ${from} ${file}: ${(e as { code?: string }).code ?? (e as Error).message}`);
  }
}

function runPasswordCommand(command: string, from: string): string {
  try {
    return stripNewline(execFileSync('/bin/sh', ['-c', command], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }));
  } catch {
    throw new UsageError(`${from} failed (non-zero exit)`);
  }
}

/** The password of the repository (also the first one of `init`). */
export async function getPassword(src: PasswordSources, prompt?: string, confirm = false, names = MAIN_REPOSITORY): Promise<string> {
  const flag = `--${names.flag}password`;
  if (src.passwordFile) return readPasswordFile(src.passwordFile, `${flag}-file`);
  if (src.passwordCommand) return runPasswordCommand(src.passwordCommand, `${flag}-command`);
  const env = process.env;
  const v = `${names.env}PASSWORD`;
  if (env[`${v}_FILE`]) return readPasswordFile(env[`${v}_FILE`]!, `${v}_FILE`);
  if (env[`${v}_COMMAND`]) return runPasswordCommand(env[`${v}_COMMAND`]!, `${v}_COMMAND`);
  if (env[v] !== undefined) return env[v];
  return promptPassword(prompt ?? `enter password for ${names.what}: `, confirm, `set ${v} or ${v}_FILE, or use ${flag}-file or ${flag}-command`);
}

/**
 * A password to add (`key add`, `key passwd`): from `file`, else asked twice on the terminal. Never
 * from the environment, which holds the current password: a cron job's SNAP_PASSWORD must not
 * become a second key with the same password.
 */
export async function getNewPassword(file: string | undefined): Promise<string> {
  if (file) return readPasswordFile(file, '--new-password-file');
  return promptPassword('enter new password: ', true, 'use --new-password-file');
}

async function promptPassword(prompt: string, confirm: boolean, hint: string): Promise<string> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) throw new UsageError('no password given', { hint: `${hint} (no terminal to prompt on)` });
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
