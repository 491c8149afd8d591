// Typed errors. Library code throws these and never prints or exits; src/cli/exit.ts maps them to
// exit codes in one place. Every message is one line that names the object or setting at fault.

/** Exit codes, documented in README.md. Close to restic's so operators' scripts carry over. */
export const ExitCode = {
  ok: 0,
  error: 1,
  usage: 2,
  incomplete: 3,
  thawPending: 4,
  repositoryMissing: 10,
  lockFailed: 11,
  wrongPassword: 12,
  interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export class SnapError extends Error {
  /** A stable machine-readable code, printed with --json. */
  readonly code: string = 'error';
  readonly exitCode: ExitCode = ExitCode.error;
  /** What the user can do about it, when there is something to say. */
  readonly hint?: string;
  constructor(message: string, options?: { cause?: unknown; hint?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    if (options?.hint) this.hint = options.hint;
  }
}

/** Bad flags or arguments. */
export class UsageError extends SnapError {
  override readonly code = 'usage';
  override readonly exitCode = ExitCode.usage;
}

export class RepositoryNotFoundError extends SnapError {
  override readonly code = 'repository_not_found';
  override readonly exitCode = ExitCode.repositoryMissing;
}

export class RepositoryExistsError extends SnapError {
  override readonly code = 'repository_exists';
}

export class WrongPasswordError extends SnapError {
  override readonly code = 'wrong_password';
  override readonly exitCode = ExitCode.wrongPassword;
}

export class LockError extends SnapError {
  override readonly code = 'lock_failed';
  override readonly exitCode = ExitCode.lockFailed;
}

/** A stored object failed authentication, does not hash to its name, or does not parse. */
export class IntegrityError extends SnapError {
  override readonly code = 'integrity';
  /** The object at fault, e.g. "data/3f/3f9a…" or "blob 9c1e…". */
  readonly object: string;
  constructor(object: string, message: string, options?: { cause?: unknown; hint?: string }) {
    super(`${object}: ${message}`, options);
    this.object = object;
  }
}

/** The repository uses a format version this build does not know. */
export class UnsupportedFormatError extends SnapError {
  override readonly code = 'unsupported_format';
}

/** A backend object does not exist. */
export class NotFoundError extends SnapError {
  override readonly code = 'not_found';
}

/**
 * A backend operation failed. `transient` errors (5xx, throttling, timeouts, resets) may be retried;
 * permanent ones (access denied, missing bucket, bad request) must not be.
 */
export class BackendError extends SnapError {
  override readonly code = 'backend';
  readonly transient: boolean;
  constructor(message: string, options: { transient: boolean; cause?: unknown; hint?: string }) {
    super(message, options);
    this.transient = options.transient;
  }
}

/** An archived (Glacier / Deep Archive) object must be thawed before it can be read. */
export class ColdObjectError extends SnapError {
  override readonly code = 'cold_object';
  readonly object: string;
  constructor(object: string, message = 'object is in an archive storage class and not restored', options?: { cause?: unknown; hint?: string }) {
    super(`${object}: ${message}`, options);
    this.object = object;
  }
}

/** Some requested objects are still being thawed; a later identical command resumes. */
export class ThawPendingError extends SnapError {
  override readonly code = 'thaw_pending';
  override readonly exitCode = ExitCode.thawPending;
}

/** A user-named thing (snapshot ID, path in a snapshot, file to back up) does not exist. */
export class NoSuchItemError extends SnapError {
  override readonly code = 'not_found';
}

export class InterruptedError extends SnapError {
  override readonly code = 'interrupted';
  override readonly exitCode = ExitCode.interrupted;
  constructor(message = 'interrupted') {
    super(message);
  }
}

/** Writes failed on the local side (restore target not writable, disk full). */
export class LocalIOError extends SnapError {
  override readonly code = 'local_io';
}
