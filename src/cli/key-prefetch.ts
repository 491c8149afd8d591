// Starts deriving the repository key while the program loads. A command spends ~0.2 s loading its
// modules and then ~0.2 s in scrypt (format-spec ch. 2.3) before it can read the repository; the
// KDF runs on a libuv thread, so the two can overlap. Only in the plain case: the password from
// SNAP_PASSWORD (no password file or command, by flag or environment), a local repository from --repo/-r or
// SNAP_REPOSITORY, one key file, scrypt. Anything else, or any doubt, and the program derives the
// key itself as before; a derivation started for the wrong password is simply never taken.
import { LocalBackend } from '../backend/local.js';
import { parseLocation } from '../backend/location.js';
import { sha256Hex } from '../crypto/hash.js';
import { startDeriving, type KdfParams } from '../crypto/kdf.js';

/** Commands that open an existing repository with a password. */
const OPENING = new Set(['backup', 'calendar', 'cat', 'catalog', 'check', 'copy', 'diff', 'dump', 'find', 'forget', 'key', 'ls', 'prune', 'repair', 'restore', 'rewrite', 'snapshots', 'stats', 'tag', 'unlock', 'versions']);

function repositoryArg(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--repo' || a === '-r') return args[i + 1];
    if (a.startsWith('--repo=')) return a.slice('--repo='.length);
  }
  return undefined;
}

async function prefetch(args: readonly string[]): Promise<void> {
  const password = process.env.SNAP_PASSWORD;
  // The program prefers these to SNAP_PASSWORD (password.ts).
  if (process.env.SNAP_PASSWORD_FILE || process.env.SNAP_PASSWORD_COMMAND) return;
  if (password === undefined || !args.some((a) => OPENING.has(a))) return;
  if (args.some((a) => /^(-p|-h|--help|--version|--password-(file|command))(=|$)/.test(a))) return;
  const location = repositoryArg(args) ?? process.env.SNAP_REPOSITORY;
  if (!location) return;
  const parsed = parseLocation(location);
  if (parsed.kind !== 'local') return;
  const backend = new LocalBackend(parsed.path);
  const names: string[] = [];
  for await (const f of backend.list('key')) names.push(f.name);
  if (names.length !== 1) return;
  const bytes = await backend.load({ type: 'key', name: names[0]! });
  // Only what the program would derive from too: a key file whose name is its hash (a tampered
  // one is reported, and must not leave a long derivation running).
  if (sha256Hex(bytes) !== names[0]) return;
  const doc = JSON.parse(bytes.toString('utf8')) as { kdf?: KdfParams };
  if (doc.kdf?.algorithm === 'scrypt') startDeriving(password, doc.kdf);
}

/** Starts the derivation when it can; never throws (the program reports any problem itself). */
export function prefetchKey(args: readonly string[]): void {
  prefetch(args).catch(() => undefined);
}
