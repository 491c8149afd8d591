// V8 settings for the snap process, set before the program's modules are loaded (main.ts). Those V8
// reads only at start-up are on node's command line, given by the launcher (src/cli/snap).
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
let young = HELD;
/** 0: V8's own choice of how far the old generation may grow after a full GC. */
let oldGrowingPercent = 0;

function setFlags(): void {
  setFlagsFromString(`${young} --heap-growing-percent=${oldGrowingPercent}`);
}

setFlags();
// Starting a worker thread puts V8's flags back to their defaults (measured: the main thread's
// young generation grew to 16 MiB semispaces again once the crypto workers had started): set them
// again once each worker runs.
process.on('worker', (worker) => worker.once('online', setFlags));

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
  young = GROWING;
  setFlags();
  const timer = setInterval(() => {
    // new_space counts both semispaces.
    const space = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    if (space === undefined || space.space_size >= 2 * GROWN_SEMISPACE) {
      young = HELD;
      setFlags();
      clearInterval(timer);
    }
  }, 20);
  timer.unref();
}

/**
 * Lets the old generation grow at most 2x its live size between full GCs. V8 picks up to ~4x when
 * GCs are fast: a restore's main thread, whose file plans die after being promoted, went from
 * 20 MiB live to 67 MiB before its next full GC, and its peak RSS swung between 200 and 290 MiB
 * with that GC's timing. Held at 2x, 8 alternating rounds of a 1 GiB, 63k-file restore: peak RSS
 * 176-205 MiB (median 190) against 203-265 (220); wall time 0.96x, and 0.997x in a second such run
 * (noise). Not for backup: there it cost ~4% more CPU (more full GCs) for 13 MiB.
 */
export function holdOldGeneration(): void {
  oldGrowingPercent = 100;
  setFlags();
}
