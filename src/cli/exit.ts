// The one place where errors become exit codes and one-line messages.
import { ExitCode, SnapError } from '../errors.js';

export interface ErrorReport {
  exitCode: number;
  code: string;
  message: string;
  hint?: string;
}

export function describeError(e: unknown): ErrorReport {
  if (e instanceof SnapError) {
    const r: ErrorReport = { exitCode: e.exitCode, code: e.code, message: e.message };
    if (e.hint) r.hint = e.hint;
    return r;
  }
  const code = (e as { code?: string })?.code;
  if (code === 'ENOSPC') return { exitCode: ExitCode.error, code: 'local_io', message: `no space left on device: ${(e as Error).message}` };
  if (code === 'EACCES' || code === 'EPERM') return { exitCode: ExitCode.error, code: 'local_io', message: `permission denied: ${(e as Error).message}` };
  // Anything else is a bug in snap: keep it to one line, but say so.
  return { exitCode: ExitCode.error, code: 'internal', message: `internal error: ${(e as Error)?.message ?? String(e)}` };
}
