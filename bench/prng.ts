/**
 * xorshift32 (Marsaglia 2003): deterministic pseudo-random data, the same on every machine, for
 * the benchmark corpora and the tests' generated trees. Not for anything secret.
 */
export function xorshift32(seed: number) {
  let x = seed >>> 0 || 1;
  const next = (): number => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>>= 0);
  };
  return {
    /** The next 32-bit value. */
    next,
    /** A number in [0, 1). */
    float: (): number => next() / 2 ** 32,
    /** n bytes: consecutive values, little-endian. */
    bytes(n: number): Buffer {
      const words = new Uint32Array(Math.ceil(n / 4));
      for (let i = 0; i < words.length; i++) words[i] = next();
      return Buffer.from(words.buffer, 0, n);
    },
  };
}
