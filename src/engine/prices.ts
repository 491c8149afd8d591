// Retrieval prices and times for restoring from archive storage classes, used by `restore --plan`.
// Prices change and differ by region, so the table is dated, names its source, and can be replaced
// with `--price-table FILE` (same JSON shape; format-spec/15-thaw-state.md).
import { readFile } from 'node:fs/promises';
import type { ThawTier } from '../backend/backend.js';
import { UsageError } from '../errors.js';

export const THAW_TIERS: readonly ThawTier[] = ['Expedited', 'Standard', 'Bulk'];

export interface TierPrice {
  /** USD per GB retrieved. */
  perGB: number;
  /** USD per 1,000 restore requests (one per pack). */
  per1000Requests: number;
  /** Typical time until the thawed copy is readable. */
  hoursMin: number;
  hoursMax: number;
}

export interface ClassPrice {
  /** Archived classes: the tiers a restore request may use (a missing tier is not offered). */
  tiers?: Partial<Record<ThawTier, TierPrice>>;
  /** Instantly readable classes with a per-GB retrieval fee (STANDARD_IA, GLACIER_IR). */
  retrievalPerGB?: number;
}

export interface PriceTable {
  /** When the figures were taken from the source (YYYY-MM-DD). */
  date: string;
  source: string;
  region: string;
  currency: 'USD';
  classes: Record<string, ClassPrice>;
}

/**
 * AWS us-east-1, from https://aws.amazon.com/s3/pricing/ (Requests & data retrievals) and
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/restoring-objects-retrieval-options.html
 * (times; Bulk is free for Flexible Retrieval; Deep Archive has no Expedited tier).
 * Data transfer out of AWS is not included.
 */
export const DEFAULT_PRICES: PriceTable = {
  date: '2026-11-23',
  source: 'https://aws.amazon.com/s3/pricing/ and https://docs.aws.amazon.com/AmazonS3/latest/userguide/restoring-objects-retrieval-options.html',
  region: 'us-east-1',
  currency: 'USD',
  classes: {
    GLACIER: {
      tiers: {
        Expedited: { perGB: 0.03, per1000Requests: 10, hoursMin: 1 / 60, hoursMax: 5 / 60 },
        Standard: { perGB: 0.01, per1000Requests: 0.05, hoursMin: 3, hoursMax: 5 },
        Bulk: { perGB: 0, per1000Requests: 0, hoursMin: 5, hoursMax: 12 },
      },
    },
    DEEP_ARCHIVE: {
      tiers: {
        Standard: { perGB: 0.02, per1000Requests: 0.1, hoursMin: 0, hoursMax: 12 },
        Bulk: { perGB: 0.0025, per1000Requests: 0.025, hoursMin: 0, hoursMax: 48 },
      },
    },
    GLACIER_IR: { retrievalPerGB: 0.03 },
    STANDARD_IA: { retrievalPerGB: 0.01 },
    ONEZONE_IA: { retrievalPerGB: 0.01 },
  },
};

const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** Reads and checks a price table file; every problem names the file and the field. */
export async function loadPriceTable(file: string): Promise<PriceTable> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`--price-table ${file}: ${(e as Error).message}`);
  }
  const bad = (what: string) => new UsageError(`--price-table ${file}: ${what}`);
  const t = doc as Partial<PriceTable>;
  if (!t || typeof t !== 'object') throw bad('not a JSON object');
  for (const k of ['date', 'source', 'region'] as const) if (typeof t[k] !== 'string') throw bad(`"${k}" must be a string`);
  if (t.currency !== 'USD') throw bad('"currency" must be "USD"');
  if (!t.classes || typeof t.classes !== 'object') throw bad('"classes" must be an object');
  for (const [cls, c] of Object.entries(t.classes)) {
    if (c.retrievalPerGB !== undefined && !num(c.retrievalPerGB)) throw bad(`classes.${cls}.retrievalPerGB must be a number >= 0`);
    for (const [tier, p] of Object.entries(c.tiers ?? {})) {
      if (!THAW_TIERS.includes(tier as ThawTier)) throw bad(`classes.${cls}.tiers: unknown tier "${tier}" (${THAW_TIERS.join(', ')})`);
      for (const f of ['perGB', 'per1000Requests', 'hoursMin', 'hoursMax'] as const) {
        if (!num(p?.[f])) throw bad(`classes.${cls}.tiers.${tier}.${f} must be a number >= 0`);
      }
    }
  }
  return t as PriceTable;
}
