// Per-thread scratch memory for blob-sized work. A fresh buffer per blob meant an allocation (an
// mmap for a large one, with a page fault per 4 KiB) and garbage that waited for V8's GC, which
// showed in both CPU time and peak RSS.

/** One growing buffer: each take() returns a view that is valid until the next take(). */
export class Scratch {
  private buffer = Buffer.alloc(0);

  take(size: number): Buffer {
    if (this.buffer.length < size) this.buffer = Buffer.allocUnsafeSlow(Math.max(size, this.buffer.length * 2));
    return this.buffer.subarray(0, size);
  }
}
