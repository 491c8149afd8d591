import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { applyPolicy, parseCalendarDuration, isoWeek, subtractCalendar } from '../../src/engine/retention.js';
import type { SnapshotEntry } from '../../src/model/snapshot.js';

// The comparison runs in child processes because the time zone must be set before the process
// starts; it imports the compiled engine (run `npx tsc -p .` first, as `npm test` does).
function compare(tz: string, seed: number) {
  const out = execFileSync(process.execPath, ['test/engine/retention-compare.mjs', String(seed)], { env: { ...process.env, TZ: tz }, encoding: 'utf8' });
  return JSON.parse(out) as { tz: string; cases: number; kept: number; removed: number; mismatches: unknown[]; mismatchCount: number };
}

describe('retention equals an independent implementation of the rules', () => {
  for (const [tz, seed] of [['America/New_York', 7], ['Europe/Berlin', 11], ['Australia/Lord_Howe', 13], ['UTC', 17]] as const) {
    it(`in ${tz}: generated multi-year histories with DST changes and month ends`, { timeout: 30_000 }, () => {
      const r = compare(tz, seed);
      expect(r.tz).toBe(tz);
      expect(r.mismatches).toEqual([]);
      // The policies really removed and kept snapshots (a comparison of empty sets proves nothing).
      expect(r.removed).toBeGreaterThan(1000);
      expect(r.kept).toBeGreaterThan(1000);
    });
  }
});

const entry = (id: string, time: string, tags: string[] = []): SnapshotEntry =>
  ({ id, snapshot: { time, tags, paths: ['/'], hostname: 'h' } }) as unknown as SnapshotEntry;

describe('retention rules (UTC in this process is irrelevant: checks are zone-independent)', () => {
  it('keeps the newest per day, counts --keep-last per snapshot, and keeps the oldest when periods run out', () => {
    const list = [entry('a', '2024-01-01T10:00:00Z'), entry('b', '2024-01-01T09:00:00Z'), entry('c', '2023-12-20T09:00:00Z')];
    const ds = applyPolicy(list, { last: 1, yearly: 5 });
    expect(ds.map((d) => [d.entry.id, d.keep, d.reasons])).toEqual([
      ['a', true, ['last snapshot', 'yearly snapshot']],
      ['b', false, []],
      ['c', true, ['yearly snapshot']],
    ]);
    const ds2 = applyPolicy(list, { yearly: 1 });
    expect(ds2.filter((d) => d.keep).map((d) => d.entry.id)).toEqual(['a']);
    const ds3 = applyPolicy([entry('a', '2024-06-01T10:00:00Z'), entry('b', '2024-03-01T10:00:00Z')], { yearly: 3 });
    expect(ds3.map((d) => d.reasons)).toEqual([['yearly snapshot'], ['oldest yearly snapshot']]);
  });

  it('keep-tag and keep-within', () => {
    const list = [entry('a', '2024-03-31T12:00:00Z'), entry('b', '2024-02-29T13:00:00Z', ['x', 'y']), entry('c', '2024-01-01T00:00:00Z', ['x'])];
    expect(applyPolicy(list, { tags: [['x', 'y']] }).filter((d) => d.keep).map((d) => d.entry.id)).toEqual(['b']);
    expect(applyPolicy(list, { within: parseCalendarDuration('2m', 'x') }).filter((d) => d.keep).map((d) => d.entry.id)).toEqual(['a', 'b']);
  });

  it('parses durations and rejects bad ones', () => {
    expect(parseCalendarDuration('1y2m3d4h', 'f')).toEqual({ years: 1, months: 2, days: 3, hours: 4 });
    for (const bad of ['', '1w', '1y1y', 'd', '3', '-1d']) expect(() => parseCalendarDuration(bad, '--keep-within')).toThrow(/--keep-within/);
  });

  it('ISO weeks and calendar subtraction overflow like Go', () => {
    expect(isoWeek(new Date(2021, 0, 3))).toEqual({ year: 2020, week: 53 });
    expect(isoWeek(new Date(2024, 11, 30))).toEqual({ year: 2025, week: 1 });
    const t = subtractCalendar(new Date(2023, 2, 31, 12), { years: 0, months: 1, days: 0, hours: 0 });
    expect([t.getMonth(), t.getDate()]).toEqual([2, 3]);
  });
});
