// V8 settings for the snap process, set before the program's modules are loaded (main.ts).
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

// V8 doubles a young generation (up to 16 MiB semispaces, in each thread) while many young
// objects survive, and keeps the pages. Held at its initial size (1 MiB semispaces), peak RSS fell
// by 35-40 MiB for a 1 GiB backup and restore; an unchanged re-backup took about 10% longer (more
// scavenges). The flag is process-wide and read whenever V8 would grow a young generation, in any
// thread.
const HELD = '--semi-space-growth-factor=1';
const GROWING = '--semi-space-growth-factor=2';
/** Where letYoungGenerationGrow stops the main thread's semispaces. */
const GROWN_SEMISPACE = 2 << 20;
let flags = HELD;

setFlagsFromString(flags);
// Starting a worker thread puts V8's flags back to their defaults (measured: the main thread's
// young generation grew to 16 MiB semispaces again once the crypto workers had started): set them
// again once each worker runs.
process.on('worker', (worker) => worker.once('online', () => setFlagsFromString(flags)));

/**
 * Lets the main thread's young generation grow to 2 MiB semispaces. A backup's walk allocates
 * ~10 KB per file on the main thread, much of it alive for a while (nodes of directories not saved
 * yet): held at 1 MiB, the main thread of a 1 GiB, 63k-file backup spent 1.35-1.57 s in ~900
 * scavenges; grown to V8's 16 MiB, 0.31-0.37 s in ~60, for +30 MiB of peak RSS. In 3 alternating
 * triples of 1, 2 and 4 MiB: 5.5-6.6 s at 206-212 MiB, 5.3-5.9 s at 208-220 MiB, 5.2-5.8 s at
 * 215-226 MiB; a backup is the command with the highest peak RSS now. V8 has no run-time maximum,
 * so growth is stopped by hand once the semispaces reach 2 MiB (checked every 20 ms; V8 doubles
 * them at most once per scavenge). The crypto workers cap their own.
 */
export function letYoungGenerationGrow(): void {
  flags = GROWING;
  setFlagsFromString(flags);
  const timer = setInterval(() => {
    // new_space counts both semispaces.
    const young = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    if (young === undefined || young.space_size >= 2 * GROWN_SEMISPACE) {
      flags = HELD;
      setFlagsFromString(flags);
      clearInterval(timer);
    }
  }, 20);
  timer.unref();
}
