// snap's command line: parse flags, run one command, exit with its code (loaded by main.ts).
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ExitCode } from '../errors.js';
import { programVersion } from '../paths.js';
import { isNativeAvailable, setMmapThreshold } from '../native/binding.js';
import { interrupt, outcome } from './command.js';
import { Output } from './output.js';
import { registerBackup } from './commands/backup.js';
import { registerCat } from './commands/cat.js';
import { registerDebug } from './commands/debug.js';
import { registerDiff } from './commands/diff.js';
import { registerDump } from './commands/dump.js';
import { registerInit } from './commands/init.js';
import { registerKey } from './commands/key.js';
import { registerLs } from './commands/ls.js';
import { registerRestore } from './commands/restore.js';
import { registerSnapshots } from './commands/snapshots.js';
import { registerFind } from './commands/find.js';
import { registerVersions } from './commands/versions.js';
import { registerCalendar } from './commands/calendar.js';
import { registerCatalog } from './commands/catalog.js';
import { registerCheck } from './commands/check.js';
import { registerUnlock } from './commands/unlock.js';
import { registerForget } from './commands/forget.js';
import { registerPrune } from './commands/prune.js';
import { registerRepair } from './commands/repair.js';
import { registerStats } from './commands/stats.js';
import { registerTag } from './commands/tag.js';
import { registerRewrite } from './commands/rewrite.js';
import { registerCopy } from './commands/copy.js';

const commands = [registerInit, registerBackup, registerSnapshots, registerLs, registerRestore, registerDump, registerDiff, registerCat, registerKey, registerDebug, registerCheck, registerUnlock, registerFind, registerVersions, registerCalendar, registerCatalog, registerForget, registerPrune, registerRepair, registerStats, registerTag, registerRewrite, registerCopy];

// The AWS SDK warns on every run under Node 20 about its future releases; snap pins a release that
// supports Node 20, so the warning only adds noise to cron mail.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** Buffers of 256 KiB and more (chunks, sealed blobs, packs) are unmapped when freed: bounds peak RSS. */
const MMAP_THRESHOLD = 256 * 1024;

/** Flags whose value may be `-` (standard input), as restic users write them. */
const STDIN_FLAGS = new Set(['--files-from', '--files-from-verbatim', '--files-from-raw']);

/** yargs takes a lone `-` for a positional argument: `--files-from -` reaches it as `--files-from=-`. */
function joinStdinValues(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--') return [...out, ...argv.slice(i)];
    if (STDIN_FLAGS.has(argv[i]!) && argv[i + 1] === '-') out.push(`${argv[i++]}=-`);
    else out.push(argv[i]!);
  }
  return out;
}

async function main(argv: string[]): Promise<number> {
  // Before any large buffer exists, so that the setting applies to the worker threads' too. Without
  // the addon, the command that needs it reports that.
  if (isNativeAvailable()) setMmapThreshold(MMAP_THRESHOLD);
  // If the event loop ever drains while a command is still pending (a promise nobody resolves),
  // Node exits on its own: make that a failure, never a silent success.
  process.exitCode = ExitCode.error;
  let interrupted = 0;
  process.on('SIGINT', () => {
    // First ^C: stop cleanly (no snapshot is written for an unfinished backup). Second: now.
    if (++interrupted > 1) process.exit(ExitCode.interrupted);
    interrupt.abort();
  });
  process.on('SIGTERM', () => interrupt.abort());
  // A reader that goes away (`snap ls latest | head`) breaks the pipe: the rest of the output is
  // dropped and the command finishes as it would have (a backup still saves its snapshot), where
  // Node would die of the EPIPE with a stack trace.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
    });
  }
  const json = argv.includes('--json');
  let parser = yargs(argv)
    .scriptName('snap')
    .usage('$0 <command> [options]\n\nDeduplicating, encrypted backups to a local directory or S3 (incl. Glacier / Deep Archive).')
    .option('repo', { alias: 'r', type: 'string', describe: 'repository: a directory, s3:https://HOST/BUCKET[/PREFIX] or s3:BUCKET[/PREFIX] (env SNAP_REPOSITORY)' })
    .option('password-file', { alias: 'p', type: 'string', describe: 'read the password from a file (env SNAP_PASSWORD_FILE)' })
    .option('password-command', { type: 'string', describe: 'run a shell command that prints the password (env SNAP_PASSWORD_COMMAND)' })
    .option('json', { type: 'boolean', default: false, describe: 'machine-readable output on stdout' })
    .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no progress, and no summary of a command that succeeded (listings and warnings stay)' })
    .option('s3-region', { type: 'string', describe: 'S3 region (default: from the AWS environment/profile)' })
    .option('limit-upload', { type: 'number', describe: 'limit uploads to KiB/s' })
    .option('limit-download', { type: 'number', describe: 'limit downloads to KiB/s' })
    .option('lock', { type: 'boolean', default: true, describe: 'lock the repository (--no-lock: for commands that only read it, on a repository that cannot be written: a backup disk mounted read-only, read-only S3 credentials)' })
    .option('retry-lock', { type: 'string', describe: 'wait up to DURATION (e.g. 5m) for a conflicting lock to go away (default: fail at once)' })
    .option('cache-dir', { type: 'string', describe: 'local cache and catalog directory (default $XDG_CACHE_HOME/snap)' })
    .option('cache', { type: 'boolean', default: true, describe: 'keep the index cache, copies of index and snapshot objects of remote repositories, and the directory cache of backup in the cache directory (--no-cache: load every index object, download them every time, and compare every directory with the parent snapshot)' })
    // A repeatable flag takes one value per use, as in restic: `backup --exclude '*.log' /srv`
    // must not read /srv as a second pattern.
    .parserConfiguration({ 'greedy-arrays': false })
    .strict()
    .demandCommand(1, 'name a command; see snap --help')
    .recommendCommands()
    .version(programVersion().replace('snap ', ''))
    .completion('completion', 'print a bash completion script for commands and flags (snap completion >> ~/.bashrc)')
    .help()
    .wrap(Math.min(110, process.stdout.columns ?? 100))
    .fail((msg, err) => {
      throw err ?? new Error(msg);
    });
  for (const register of commands) parser = register(parser);
  try {
    await parser.parseAsync();
  } catch (e) {
    // Flag and command errors from yargs: a usage error, exit code 2.
    new Output(json, false).error((e as Error).message, 'see snap --help');
    return ExitCode.usage;
  }
  return outcome.exitCode;
}

main(joinStdinValues(hideBin(process.argv))).then(
  (code) => {
    process.exitCode = code;
    // Worker threads and sockets are closed by the commands; exit promptly regardless.
    setImmediate(() => process.exit(code));
  },
  (e) => {
    process.stderr.write(`snap: internal error: ${(e as Error).message}\n`);
    process.exit(ExitCode.error);
  },
);
