import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/**
 * Lowers the calling thread's scheduling priority by `steps` nice levels, relative to what it has
 * (a backup started with `nice` stays below it). On Linux the nice value belongs to each thread,
 * and /proc/thread-self names the thread; elsewhere this does nothing.
 */
export function lowerThreadPriority(steps: number): void {
  let tid: number;
  try {
    tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  } catch {
    return; // not Linux
  }
  if (!Number.isSafeInteger(tid) || tid <= 0) return;
  try {
    setPriority(tid, Math.min(19, getPriority(tid) + steps));
  } catch {
    // Not allowed (a seccomp filter): the thread keeps its priority.
  }
}
