// Content-defined chunking parameters (FastCDC-2020, fastcdc-rs v2020 compatible).

import { UsageError } from '../errors.js';

export interface ChunkerParams {
  /**
   * Smallest chunk, bytes (the last chunk of an input may be shorter). As in fastcdc-rs, scanning
   * starts at 2 * floor(min / 2), so with an odd min a chunk can be min - 1 bytes long.
   */
  min: number;
  /** Target average chunk size, bytes. */
  avg: number;
  /** Largest chunk, bytes. */
  max: number;
  /** Normalized chunking level: higher levels give chunk sizes closer to avg. */
  normalization: 0 | 1 | 2 | 3;
  /**
   * XORed into the gear tables (u64); 0 = the published FastCDC-2020 tables. Only bits 0..48
   * can move cut points (the masks test bits below 49 and carries run upwards); higher bits
   * change only the reported hash.
   */
  seed: bigint;
}

// fastcdc-rs v2020's MINIMUM_MIN, MINIMUM_MAX, AVERAGE_MIN and MAXIMUM_MIN; the largest average
// and maximum are raised from fastcdc-rs's 4 MiB and 16 MiB. The native addon enforces the same.
export const MINIMUM_MIN = 64;
export const MINIMUM_MAX = 1_048_576;
export const AVERAGE_MIN = 256;
export const AVERAGE_MAX = 16_777_216;
export const MAXIMUM_MIN = 1024;
export const MAXIMUM_MAX = 67_108_864;
/** The MASKS table has entries up to 25: round(log2(avg)) + normalization must not exceed it. */
export const MASK_BITS_MAX = 25;
export const SEED_MAX = (1n << 64n) - 1n;

/** fastcdc-rs `logarithm2`: log2 rounded to the nearest integer. */
export function logarithm2(value: number): number {
  return Math.round(Math.log2(value));
}

function checkSize(name: string, value: unknown, lo: number, hi: number, loText: string, hiText: string): void {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new UsageError(`chunker ${name} size must be an integer number of bytes, got ${String(value)}`);
  }
  if (value < lo || value > hi) {
    throw new UsageError(`chunker ${name} size must be between ${loText} and ${hiText}, got ${value}`);
  }
}

/** Throws UsageError naming the first bad setting. */
export function validateChunkerParams(p: ChunkerParams): void {
  if (typeof p !== 'object' || p === null) throw new UsageError('chunker parameters are missing');
  checkSize('min', p.min, MINIMUM_MIN, MINIMUM_MAX, '64 bytes', '1 MiB (1048576)');
  checkSize('average', p.avg, AVERAGE_MIN, AVERAGE_MAX, '256 bytes', '16 MiB (16777216)');
  checkSize('max', p.max, MAXIMUM_MIN, MAXIMUM_MAX, '1 KiB (1024)', '64 MiB (67108864)');
  if (p.min > p.avg) {
    throw new UsageError(`chunker min size (${p.min}) must not exceed the average size (${p.avg})`);
  }
  if (p.avg > p.max) {
    throw new UsageError(`chunker average size (${p.avg}) must not exceed the max size (${p.max})`);
  }
  if (p.normalization !== 0 && p.normalization !== 1 && p.normalization !== 2 && p.normalization !== 3) {
    throw new UsageError(`chunker normalization level must be 0, 1, 2 or 3, got ${String(p.normalization)}`);
  }
  if (logarithm2(p.avg) + p.normalization > MASK_BITS_MAX) {
    throw new UsageError(
      `chunker average size ${p.avg} is too large for normalization level ${p.normalization} ` +
        '(round(log2(avg)) + level must not exceed 25: avg up to about 4 MiB at level 3, 8 MiB at level 2, 16 MiB at levels 0 and 1)',
    );
  }
  if (typeof p.seed !== 'bigint') {
    throw new UsageError(`chunker seed must be a bigint, got ${typeof p.seed}`);
  }
  if (p.seed < 0n || p.seed > SEED_MAX) {
    throw new UsageError('chunker seed must be between 0 and 2^64 - 1');
  }
}
