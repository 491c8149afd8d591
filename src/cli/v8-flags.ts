// V8 settings for the snap process, set before the program's modules are loaded (main.ts).
import { setFlagsFromString } from 'node:v8';

// V8 doubles a young generation (up to 16 MiB semispaces, in each thread) while many young
// objects survive, as the per-file objects of a backup's walk do, and keeps the pages. Held at its
// initial size, peak RSS fell by 35-40 MiB for a 1 GiB backup and restore at no measurable cost to
// either; an unchanged re-backup took about 10% longer (more scavenges). The flag is process-wide
// and read whenever V8 would grow a young generation, in any thread.
const FLAGS = '--semi-space-growth-factor=1';

setFlagsFromString(FLAGS);
// Starting a worker thread puts V8's flags back to their defaults (measured: the main thread's
// young generation grew to 16 MiB semispaces again once the crypto workers had started): set them
// again once each worker runs.
process.on('worker', (worker) => worker.once('online', () => setFlagsFromString(FLAGS)));
