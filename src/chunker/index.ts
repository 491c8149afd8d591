// Content-defined chunking: FastCDC-2020 (fastcdc-rs v2020 compatible, optionally seeded), native
// by default with a bit-identical TypeScript fallback, over whole buffers or streams.

import { nativeCutterClass, type NativeCutter } from '../native/binding.js';
import { UsageError } from '../errors.js';
import { once } from '../util/concurrency.js';
import { JsFastCdc } from './fastcdc.js';
import { validateChunkerParams, type ChunkerParams } from './params.js';

export type { ChunkerParams } from './params.js';
export { validateChunkerParams } from './params.js';

export interface Cut {
  /** Chunk length in bytes. */
  length: number;
  /** The 64-bit gear hash at the cut (0 for a final chunk no longer than min). */
  hash: bigint;
}

export interface Cutter {
  readonly params: ChunkerParams;
  /**
   * The next chunk of buf[offset, offset + length), which must hold at least params.max bytes
   * unless it is the end of the input. Returns length 0 only for length 0.
   */
  cut(buf: Uint8Array, offset: number, length: number): Cut;
}

class NativeCutterImpl implements Cutter {
  readonly params: ChunkerParams;
  private readonly inner: NativeCutter;
  constructor(params: ChunkerParams) {
    this.params = Object.freeze({ ...params });
    const Ctor = nativeCutterClass();
    this.inner = new Ctor(params.min, params.avg, params.max, params.normalization, params.seed);
  }
  cut(buf: Uint8Array, offset: number, length: number): Cut {
    const [n, hash] = this.inner.cut(buf, offset, length);
    return { length: n, hash };
  }
}

class JsCutterImpl implements Cutter {
  readonly params: ChunkerParams;
  private readonly inner: JsFastCdc;
  constructor(params: ChunkerParams) {
    this.inner = new JsFastCdc(params);
    this.params = Object.freeze({ ...params });
  }
  cut(buf: Uint8Array, offset: number, length: number): Cut {
    return this.inner.cut(buf, offset, length);
  }
}

/**
 * A FastCDC-2020 cutter. Throws UsageError for bad parameters; with impl 'native' (the default)
 * throws an Error when the native addon is not built.
 */
export function createCutter(params: ChunkerParams, impl: 'native' | 'js' = 'native'): Cutter {
  validateChunkerParams(params);
  if (impl === 'native') return new NativeCutterImpl(params);
  if (impl === 'js') return new JsCutterImpl(params);
  throw new UsageError(`unknown chunker implementation ${String(impl)} (expected 'native' or 'js')`);
}

/** Reads into buf[offset, offset + length); resolves to the bytes read, 0 at end of input. */
export type ReadFn = (buf: Uint8Array, offset: number, length: number) => Promise<number>;

export interface Chunk {
  /**
   * The chunk's bytes: a fresh copy the consumer may keep, or with `slabs` a view of a shared slab
   * that stays unchanged until release() is called.
   */
  data: Buffer;
  /** Offset of the chunk in the stream. */
  offset: number;
  /** Gear hash at the cut (see Cut.hash). */
  hash: bigint;
  /** Gives the chunk's slab back (once, when done with data); does nothing for a copy. */
  release: () => void;
}

export const DEFAULT_READ_SIZE = 4 * 1024 * 1024;

const noRelease = () => undefined;

/** A buffer of a SlabPool, in use until every holder has released it. */
class Slab {
  private holders = 1;
  constructor(
    readonly buf: Buffer,
    private readonly pool: SlabPool,
  ) {}
  hold(): () => void {
    this.holders++;
    return once(() => this.release());
  }
  release(): void {
    if (--this.holders === 0) this.pool.giveBack(this.buf);
  }
}

/**
 * At most `count` buffers of `slabSize` bytes in shared memory, reused. chunkStream cuts chunks
 * from them in place, and worker threads read the chunks where they are: copying each chunk into
 * a buffer of its own (to transfer it) cost a tenth of a backup's main thread, and the freed
 * copies waited for V8's GC, tens of MiB of a backup's peak RSS.
 */
export class SlabPool {
  private readonly free: Buffer[] = [];
  private readonly waiting: ((buf: Buffer) => void)[] = [];
  private created = 0;
  constructor(
    readonly slabSize: number,
    private readonly count: number,
  ) {
    if (count < 2) throw new RangeError('a SlabPool needs at least two slabs (chunkStream holds one while it waits for the next)');
  }

  /** A slab held by the caller (release it when done); waits while all are in use. */
  async acquire(): Promise<Slab> {
    let buf = this.free.pop();
    if (!buf && this.created < this.count) {
      this.created++;
      buf = Buffer.from(new SharedArrayBuffer(this.slabSize));
    }
    buf ??= await new Promise<Buffer>((resolve) => this.waiting.push(resolve));
    return new Slab(buf, this);
  }

  /** @internal */
  giveBack(buf: Buffer): void {
    const next = this.waiting.shift();
    if (next) next(buf);
    else this.free.push(buf);
  }
}

/**
 * Chunks a stream with exactly the cuts of chunking the whole input at once (fastcdc-rs StreamCDC
 * semantics: a cut sees params.max bytes, or the rest of the input, from its start; a FastCDC cut
 * found strictly inside a shorter window is the same, which keeps compaction copies small).
 * Memory: one buffer of params.max + readSize bytes, compacted in place, plus the yielded copies.
 * With `slabs` (slabSize at least params.max + readSize) chunks are views of the pool's slabs
 * instead: the uncut tail moves to the front of a fresh slab, and a slab is reused once every
 * chunk cut from it is released. Reads ask for at most readSize bytes. An empty input yields
 * nothing.
 */
export async function* chunkStream(
  read: ReadFn,
  cutter: Cutter,
  opts?: { readSize?: number; signal?: AbortSignal; slabs?: SlabPool },
): AsyncGenerator<Chunk> {
  const readSize = opts?.readSize ?? DEFAULT_READ_SIZE;
  const signal = opts?.signal;
  if (!Number.isSafeInteger(readSize) || readSize < 1) {
    throw new UsageError(`chunkStream readSize must be a positive integer, got ${String(readSize)}`);
  }
  const { avg, max } = cutter.params;
  const slabs = opts?.slabs;
  if (slabs && slabs.slabSize < max + readSize) {
    throw new RangeError(`chunkStream slabs of ${slabs.slabSize} bytes are smaller than max + readSize (${max + readSize})`);
  }
  let slab = await slabs?.acquire();
  // A caller chunking many files one after another passes slabs, reused for all of them:
  // allocating max + readSize bytes per file made small-file backups spend most of their time in GC.
  let buf = (slab ? slab.buf : Buffer.allocUnsafe(max + readSize)).subarray(0, max + readSize);
  let start = 0; // first unconsumed byte in buf
  let end = 0; // end of valid data in buf
  let eof = false;
  let streamOffset = 0; // stream offset of buf[start]

  const take = (length: number, hash: bigint): Chunk => {
    let data: Buffer;
    let release: () => void = noRelease;
    if (slab) {
      data = buf.subarray(start, start + length);
      release = slab.hold();
    } else {
      data = Buffer.allocUnsafe(length);
      buf.copy(data, 0, start, start + length);
    }
    const chunk = { data, offset: streamOffset, hash, release };
    start += length;
    streamOffset += length;
    return chunk;
  };

  try {
    for (;;) {
      // Fill until max bytes are available or the input ends.
      while (!eof && end - start < max) {
        if (end === buf.length) {
          // No room left. Before moving the unconsumed tail (< max bytes) to the front, cut what
          // can already be cut, so that less is copied. A cut found strictly inside a window
          // shorter than max is the cut the whole input gets: the scan of a shorter window is a
          // prefix of the full scan, with the same mask at every position. A cut at the window's
          // end only means "no cut point yet"; it is retried after the refill. (Windows under avg
          // are left alone: a cut point is unlikely there, so scanning them is mostly wasted.)
          while (end - start >= avg) {
            const { length, hash } = cutter.cut(buf, start, end - start);
            if (length <= 0 || length >= end - start) break;
            signal?.throwIfAborted();
            yield take(length, hash);
          }
          if (slab && slabs) {
            const next = await slabs.acquire();
            buf.copy(next.buf, 0, start, end);
            slab.release();
            slab = next;
            buf = next.buf.subarray(0, max + readSize);
          } else buf.copy(buf, 0, start, end);
          end -= start;
          start = 0;
        }
        signal?.throwIfAborted();
        const want = Math.min(readSize, buf.length - end);
        const n = await read(buf, end, want);
        if (!Number.isInteger(n) || n < 0 || n > want) {
          throw new RangeError(`chunkStream: read returned ${String(n)} for a request of ${want} bytes`);
        }
        if (n === 0) eof = true;
        else end += n;
      }
      // Cut while a full window (or the rest of the input) is available.
      while (end - start >= max || (eof && end > start)) {
        const { length, hash } = cutter.cut(buf, start, end - start);
        if (length <= 0) throw new Error(`chunker returned an empty chunk at offset ${streamOffset}`);
        signal?.throwIfAborted();
        yield take(length, hash);
      }
      if (eof) return;
    }
  } finally {
    slab?.release();
  }
}

/** All cuts of a whole buffer, in order (their lengths sum to buf.length). */
export function chunkBuffer(buf: Uint8Array, cutter: Cutter): Cut[] {
  const cuts: Cut[] = [];
  let offset = 0;
  while (offset < buf.length) {
    const cut = cutter.cut(buf, offset, buf.length - offset);
    if (cut.length <= 0) throw new Error(`chunker returned an empty chunk at offset ${offset}`);
    cuts.push(cut);
    offset += cut.length;
  }
  return cuts;
}
