// What every command needs: the parsed global options, output, the backend, the repository.
import type { Backend } from '../backend/backend.js';
import { join } from 'node:path';
import { openBackend, parseLocation } from '../backend/location.js';
import { MetadataCache } from '../repository/metadata-cache.js';
import { repositoryCacheDir } from '../paths.js';
import { Repository } from '../repository/repository.js';
import { Lock, parseWaitDuration, type LockMode } from '../repository/lock.js';
import { BackendError, UsageError, WrongPasswordError } from '../errors.js';
import { Output } from './output.js';
import { getPassword, MAIN_REPOSITORY, SOURCE_REPOSITORY, type RepositoryNames } from './password.js';

export interface GlobalArgs {
  repo?: string | undefined;
  passwordFile?: string | undefined;
  passwordCommand?: string | undefined;
  json: boolean;
  quiet: boolean;
  s3Region?: string | undefined;
  limitUpload?: number | undefined;
  limitDownload?: number | undefined;
  cacheDir?: string | undefined;
  /** false with --no-cache: every index and snapshot object is downloaded. */
  cache?: boolean | undefined;
  retryLock?: string | undefined;
  /** false with --no-lock: commands that only read take no lock. */
  lock?: boolean | undefined;
}

export class Context {
  readonly out: Output;
  private backendInstance: Backend | undefined;
  private repoInstance: Repository | undefined;
  private lockInstance: Lock | undefined;

  /** `names`: of the flags and variables that give the repository and its password (copy's source has its own). */
  constructor(readonly args: GlobalArgs, readonly signal: AbortSignal, private readonly names: RepositoryNames = MAIN_REPOSITORY) {
    this.out = new Output(args.json, args.quiet);
  }

  get location(): string {
    const variable = `${this.names.env}REPOSITORY`;
    const loc = this.args.repo ?? process.env[variable];
    if (!loc) throw new UsageError(`no ${this.names.what} given`, { hint: `use --${this.names.flag}repo PATH|s3:... or set ${variable}` });
    return loc;
  }

  async backend(): Promise<Backend> {
    this.backendInstance ??= await openBackend(this.location, {
      ...(this.args.s3Region ? { s3Region: this.args.s3Region } : {}),
      ...(this.args.limitUpload ? { limitUploadKiBps: this.args.limitUpload } : {}),
      ...(this.args.limitDownload ? { limitDownloadKiBps: this.args.limitDownload } : {}),
    });
    return this.backendInstance;
  }

  password(prompt?: string, confirm = false): Promise<string> {
    return getPassword(this.args, prompt, confirm, this.names);
  }

  /**
   * Opens the repository, locks it (shared unless told otherwise, like restic; released in close())
   * and loads its index unless told not to. The lock comes before the index so a prune cannot
   * change the index under us. `readOnly`: the command never writes to the repository, so
   * --no-lock may leave it unlocked.
   */
  async repository(opts: { index?: boolean; lock?: LockMode | 'none'; cache?: boolean; readOnly?: boolean } = {}): Promise<Repository> {
    if (this.repoInstance) return this.repoInstance;
    if (this.args.lock === false && !opts.readOnly) throw new UsageError('--no-lock is only for commands that read the repository: this one writes to it');
    const backend = await this.backend();
    const repo = await Repository.open(backend, await this.password()).catch((e: unknown) => {
      if (!(e instanceof WrongPasswordError)) throw e;
      const { flag, env, what } = this.names;
      throw new WrongPasswordError(this.names === MAIN_REPOSITORY ? e.message : `${what}: ${e.message}`, { hint: `check ${env}PASSWORD, ${env}PASSWORD_FILE, ${env}PASSWORD_COMMAND, --${flag}password-file or --${flag}password-command` });
    });
    // The index cache serves every repository. Remote repositories also keep index and snapshot
    // objects in the local cache; a local repository is its own fast copy. `check` reads the
    // repository's own objects only.
    if (opts.cache !== false && this.args.cache !== false) {
      const dir = repositoryCacheDir(repo.config.id, this.args.cacheDir);
      repo.useIndexCache(join(dir, 'index'));
      if (parseLocation(this.location).kind !== 'local') repo.useMetadataCache(new MetadataCache(join(dir, 'metadata')));
    }
    const mode = this.args.lock === false ? 'none' : (opts.lock ?? 'shared');
    if (mode !== 'none') {
      try {
        this.lockInstance = await Lock.acquire(repo, mode, {
          retryMs: this.args.retryLock ? parseWaitDuration(this.args.retryLock, '--retry-lock') : 0,
          onStale: (l, removed) => this.out.warn(`${removed ? 'removed' : 'ignoring'} stale lock ${l.name.slice(0, 8)} (pid ${l.lock.pid} on ${l.lock.hostname}): ${l.stale}`),
          signal: this.signal,
        });
      } catch (e) {
        // A lock that cannot be written (a read-only disk or credentials) need not stop a reader.
        if (e instanceof BackendError && !e.transient && opts.readOnly) {
          throw new BackendError(`cannot lock the repository: ${e.message}`, { transient: false, cause: e, hint: 'this command only reads: run it with --no-lock' });
        }
        throw e;
      }
    }
    if (opts.index !== false) await repo.loadIndex();
    this.repoInstance = repo;
    return repo;
  }

  async close(): Promise<void> {
    await this.lockInstance?.release().catch((e) => this.out.warn(`could not remove lock: ${(e as Error).message}`));
    await this.backendInstance?.close();
  }
}

/** --from-repo, --from-password-file, --from-password-command: another repository to read (copy's source). */
export const SOURCE_REPOSITORY_FLAGS = {
  'from-repo': { type: 'string', describe: 'the other repository (env SNAP_FROM_REPOSITORY)' },
  'from-password-file': { type: 'string', describe: "read the other repository's password from a file (env SNAP_FROM_PASSWORD_FILE)" },
  'from-password-command': { type: 'string', describe: "run a shell command that prints the other repository's password (env SNAP_FROM_PASSWORD_COMMAND)" },
} as const;

export interface SourceRepositoryArgs {
  fromRepo?: string;
  fromPasswordFile?: string;
  fromPasswordCommand?: string;
}

/** A context for the repository the SOURCE_REPOSITORY_FLAGS (or SNAP_FROM_*) name, with the other global options of `ctx`; close it after use. */
export function sourceContext(ctx: Context, a: SourceRepositoryArgs): Context {
  return new Context({ ...ctx.args, repo: a.fromRepo, passwordFile: a.fromPasswordFile, passwordCommand: a.fromPasswordCommand }, ctx.signal, SOURCE_REPOSITORY);
}
