// Repository locks (format-spec ch. 11): shared for backup, exclusive for prune/check/forget.
// A lock is a metadata object; refreshing writes a new object and removes the old one, so a lock
// never changes under its name.
import { hostname as osHostname, userInfo } from 'node:os';
import { removeIfPresent, throwIfAborted } from '../backend/common.js';
import { LockError, NotFoundError, UsageError } from '../errors.js';
import { mapLimit } from '../util/concurrency.js';
import type { Repository } from './repository.js';

/** A lock not refreshed for this long is stale (ch. 11). */
export const STALE_AFTER_MS = 30 * 60 * 1000;
/** Refresh interval: well inside STALE_AFTER_MS so a slow backend cannot make a live lock stale. */
export const REFRESH_EVERY_MS = 5 * 60 * 1000;

export type LockMode = 'shared' | 'exclusive';

export interface LockDoc {
  version: 1;
  time: string;
  refreshed: string;
  hostname: string;
  username: string;
  pid: number;
  exclusive: boolean;
}

export interface LockInfo {
  name: string;
  lock: LockDoc;
  /** Why the lock is stale, undefined when it is live. */
  stale?: string;
  /** The lock's process ran on this host and no longer exists: nothing can rely on the lock. */
  holderGone?: boolean;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return (e as { code?: string }).code === 'EPERM';
  }
}

/** Whether the lock is stale, why, and whether its holder is certainly gone (see LockInfo). */
function staleness(l: LockDoc, now = Date.now(), host = osHostname()): Pick<LockInfo, 'stale' | 'holderGone'> {
  const gone = l.hostname === host && l.pid !== process.pid && !pidAlive(l.pid);
  const age = now - Date.parse(l.refreshed);
  if (!(age <= STALE_AFTER_MS)) return { stale: `not refreshed for ${Math.round(age / 60000)} min`, ...(gone ? { holderGone: true } : {}) };
  if (gone) return { stale: `process ${l.pid} on ${host} no longer exists`, holderGone: true };
  return {};
}

function parseLock(doc: Record<string, unknown>): LockDoc | undefined {
  if (typeof doc.time !== 'string' || typeof doc.refreshed !== 'string' || typeof doc.hostname !== 'string' || typeof doc.pid !== 'number' || typeof doc.exclusive !== 'boolean') return undefined;
  return doc as unknown as LockDoc;
}

/** Every lock object with its staleness; unreadable lock objects are reported as stale. */
export async function listLocks(repo: Repository): Promise<LockInfo[]> {
  const names = await repo.listNames('lock');
  const out: LockInfo[] = [];
  await mapLimit(names, 8, async (name) => {
    try {
      const lock = parseLock(await repo.loadMetadata('lock', name));
      if (!lock) out.push({ name, lock: { version: 1, time: '', refreshed: '', hostname: '?', username: '?', pid: 0, exclusive: true }, stale: 'malformed lock object' });
      else out.push({ name, lock, ...staleness(lock) });
    } catch (e) {
      // Removed between list and load: its holder just released it.
      if (e instanceof NotFoundError) return;
      out.push({ name, lock: { version: 1, time: '', refreshed: '', hostname: '?', username: '?', pid: 0, exclusive: true }, stale: `unreadable: ${(e as Error).message}` });
    }
  });
  return out;
}

/** Parses "30s", "5m", "2h", "1h30m" or a number of seconds. */
export function parseWaitDuration(s: string, flag: string): number {
  const t = s.trim();
  if (/^\d+$/.test(t)) return Number(t) * 1000;
  const re = /(\d+)(ms|s|m|h)/gy;
  let ms = 0;
  let m: RegExpExecArray | null;
  let pos = 0;
  while ((m = re.exec(t))) {
    const n = Number(m[1]);
    ms += m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60000 : n * 3600000;
    pos = re.lastIndex;
  }
  if (pos === 0 || pos !== t.length) throw new UsageError(`${flag}: "${s}" is not a duration (e.g. 30s, 5m, 1h)`);
  return ms;
}

export interface AcquireOptions {
  /** How long to keep retrying while a conflicting lock is held (ms). */
  retryMs?: number;
  /** Told about each stale lock that is ignored, and whether it was removed (see conflicting). */
  onStale?: (l: LockInfo, removed: boolean) => void;
  signal?: AbortSignal;
}

function describe(l: LockInfo): string {
  return `${l.lock.exclusive ? 'exclusive' : 'shared'} lock ${l.name.slice(0, 8)} held by pid ${l.lock.pid} on ${l.lock.hostname} (${l.lock.username}) since ${l.lock.time}`;
}

export class Lock {
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> = Promise.resolve();

  private constructor(private readonly repo: Repository, private name: string, private readonly doc: LockDoc) {}

  get lockName(): string {
    return this.name;
  }

  /**
   * Writes a lock, then checks for conflicting live locks (write-then-check, so two processes racing
   * see each other); on conflict it removes its own lock and retries until `retryMs` has passed.
   */
  static async acquire(repo: Repository, mode: LockMode, opts: AcquireOptions = {}): Promise<Lock> {
    const deadline = Date.now() + (opts.retryMs ?? 0);
    const reported = new Set<string>();
    for (let attempt = 0; ; attempt++) {
      const conflict = await Lock.conflicting(repo, mode, undefined, opts, reported);
      if (!conflict) {
        const now = new Date().toISOString();
        const doc: LockDoc = { version: 1, time: now, refreshed: now, hostname: osHostname(), username: safeUser(), pid: process.pid, exclusive: mode === 'exclusive' };
        const name = await repo.saveMetadata('lock', doc);
        const late = await Lock.conflicting(repo, mode, name, opts, reported);
        if (!late) {
          const lock = new Lock(repo, name, doc);
          lock.startRefresh();
          return lock;
        }
        await repo.backend.remove({ type: 'lock', name }).catch(() => undefined);
        if (Date.now() >= deadline) throw new LockError(`repository is locked: ${describe(late)}`, { hint: 'wait for it to finish, use --retry-lock DURATION, or `snap unlock` if it is stale' });
      } else if (Date.now() >= deadline) {
        throw new LockError(`repository is locked: ${describe(conflict)}`, { hint: 'wait for it to finish, use --retry-lock DURATION, or `snap unlock` if it is stale' });
      }
      throwIfAborted(opts.signal);
      // Jitter so two racing processes do not collide again in step.
      const wait = Math.min(Math.max(0, deadline - Date.now()), 200 + Math.random() * 800 * Math.min(attempt + 1, 5));
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  private static async conflicting(repo: Repository, mode: LockMode, own: string | undefined, opts: AcquireOptions, reported: Set<string>): Promise<LockInfo | undefined> {
    for (const l of await listLocks(repo)) {
      if (l.name === own) continue;
      if (l.stale) {
        if (!reported.has(l.name)) {
          reported.add(l.name);
          // Left by a process of this host that no longer exists (killed, crashed, or the host
          // rebooted): removed, as borg removes its own host's, so that it is reported once
          // rather than by every command until `snap unlock` (each cron run mailing the same
          // warning). Locks of other hosts may only be late to refresh: they stay for unlock.
          const removed = l.holderGone === true && (await repo.backend.remove({ type: 'lock', name: l.name }).then(() => true, () => false));
          opts.onStale?.(l, removed);
        }
        continue;
      }
      if (mode === 'exclusive' || l.lock.exclusive) return l;
    }
    return undefined;
  }

  private startRefresh(): void {
    this.timer = setInterval(() => {
      this.refreshing = this.refresh().catch(() => undefined);
    }, REFRESH_EVERY_MS);
    // Never keep the process alive just to refresh a lock.
    this.timer.unref();
  }

  /** Writes a fresh lock object and removes the previous one. */
  async refresh(): Promise<void> {
    const doc = { ...this.doc, refreshed: new Date().toISOString() };
    const name = await this.repo.saveMetadata('lock', doc);
    const old = this.name;
    this.name = name;
    if (old !== name) await this.repo.backend.remove({ type: 'lock', name: old }).catch(() => undefined);
  }

  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.refreshing;
    await removeIfPresent(this.repo.backend, { type: 'lock', name: this.name });
  }
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return '';
  }
}

/** Removes stale locks (all locks with `all`); returns the removed ones. */
export async function removeLocks(repo: Repository, all: boolean): Promise<LockInfo[]> {
  const removed: LockInfo[] = [];
  for (const l of await listLocks(repo)) {
    if (!all && !l.stale) continue;
    if (await removeIfPresent(repo.backend, { type: 'lock', name: l.name })) removed.push(l);
  }
  return removed;
}
