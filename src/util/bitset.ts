/** A growable set of non-negative integers, one bit each: 100 million files' flags in 12.5 MB. */
export class BitSet {
  private bits = new Uint8Array(256);

  add(i: number): void {
    const byte = i >>> 3;
    if (byte >= this.bits.length) {
      const grown = new Uint8Array(Math.max(byte + 1, this.bits.length * 2));
      grown.set(this.bits);
      this.bits = grown;
    }
    this.bits[byte] = this.bits[byte]! | (1 << (i & 7));
  }

  has(i: number): boolean {
    const byte = i >>> 3;
    return byte < this.bits.length && (this.bits[byte]! & (1 << (i & 7))) !== 0;
  }
}
