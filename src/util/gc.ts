// A young-generation collection on request. V8 frees the memory of a dead Buffer only when a GC
// finds it dead, and it schedules GCs by the size of its JS heap, in which a Buffer of megabytes
// weighs about 100 bytes. A restore worker that is handed a 4 MiB pack region and decrypts a
// buffer per blob for every task let tens of MiB of dead buffers pile up before V8 collected them.
// A scavenge where little is alive costs a fraction of a millisecond.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type GcFunction = (options: { type: 'minor' | 'major' }) => void;
let gc: GcFunction | null | undefined;

/** Collects the young generation now (a no-op where the runtime does not allow it). */
export function collectYoungGarbage(): void {
  if (gc === undefined) {
    try {
      // Set at run time, --expose-gc gives gc() to the contexts created after it.
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc') as GcFunction;
    } catch {
      gc = null;
    }
  }
  gc?.({ type: 'minor' });
}
