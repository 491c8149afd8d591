// What every command needs: the parsed global options, output, the backend, the repository.
import type { Backend } from '../backend/backend.js';
import { openBackend } from '../backend/location.js';
import { Repository } from '../repository/repository.js';
import { UsageError } from '../errors.js';
import { Output } from './output.js';
import { getPassword } from './password.js';

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
}

export class Context {
  readonly out: Output;
  private backendInstance: Backend | undefined;
  private repoInstance: Repository | undefined;

  constructor(readonly args: GlobalArgs, readonly signal: AbortSignal) {
    this.out = new Output(args.json, args.quiet);
  }

  get location(): string {
    const loc = this.args.repo ?? process.env.SNAP_REPOSITORY;
    if (!loc) throw new UsageError('no repository given', { hint: 'use --repo PATH|s3:... or set SNAP_REPOSITORY' });
    return loc;
  }

  backend(): Backend {
    this.backendInstance ??= openBackend(this.location, {
      ...(this.args.s3Region ? { s3Region: this.args.s3Region } : {}),
      ...(this.args.limitUpload ? { limitUploadKiBps: this.args.limitUpload } : {}),
      ...(this.args.limitDownload ? { limitDownloadKiBps: this.args.limitDownload } : {}),
    });
    return this.backendInstance;
  }

  password(prompt?: string, confirm = false): Promise<string> {
    return getPassword(this.args, prompt, confirm);
  }

  /** Opens the repository (and loads its index unless told not to). */
  async repository(opts: { index?: boolean } = {}): Promise<Repository> {
    if (this.repoInstance) return this.repoInstance;
    const backend = this.backend();
    const repo = await Repository.open(backend, await this.password());
    if (opts.index !== false) await repo.loadIndex();
    this.repoInstance = repo;
    return repo;
  }

  async close(): Promise<void> {
    await this.backendInstance?.close();
  }
}
