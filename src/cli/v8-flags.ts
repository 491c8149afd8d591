// V8 settings for the snap process, set before the program's modules are loaded (main.ts).
import { setFlagsFromString } from 'node:v8';

// V8 doubles a young generation (up to 16 MiB semispaces, in each thread) while many young
// objects survive, and keeps the pages. Held at its initial size (1 MiB semispaces), peak RSS fell
// by 35-40 MiB for a 1 GiB backup and restore; an unchanged re-backup took about 10% longer (more
// scavenges). The flag is process-wide and read whenever V8 would grow a young generation, in any
// thread.
const HELD = '--semi-space-growth-factor=1';
const GROWING = '--semi-space-growth-factor=2';
let flags = HELD;

setFlagsFromString(flags);
// Starting a worker thread puts V8's flags back to their defaults (measured: the main thread's
// young generation grew to 16 MiB semispaces again once the crypto workers had started): set them
// again once each worker runs.
process.on('worker', (worker) => worker.once('online', () => setFlagsFromString(flags)));

/**
 * Lets young generations grow from now on. A backup's walk allocates ~10 KB per file on the main
 * thread, much of it alive for a while (nodes of directories not saved yet): held at 1 MiB
 * semispaces, the main thread of a 1 GiB, 63k-file backup spent 1.35-1.57 s in ~900 scavenges;
 * grown, 0.31-0.37 s in ~60, for +30 MiB of peak RSS (the backup's crypto workers cap their
 * own young generations).
 */
export function letYoungGenerationsGrow(): void {
  flags = GROWING;
  setFlagsFromString(flags);
}
