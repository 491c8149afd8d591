// Retention policy (pure): which snapshots `forget` keeps and why. Semantics follow restic's
// ApplyPolicy so users moving from restic keep the same set: snapshots are walked newest first;
// each --keep-<period> N keeps the newest snapshot of each of the N most recent calendar periods
// (local time) that have one; if fewer periods exist than N, the oldest snapshot is kept as well;
// --keep-last counts snapshots; --keep-within keeps everything newer than (latest - duration) in
// calendar arithmetic; --keep-within-<period> keeps the newest of each period inside that window.
import type { Snapshot, SnapshotEntry } from '../model/snapshot.js';
import { UsageError } from '../errors.js';

/** A calendar duration "1y2m3d4h" (restic's format): years, months, days, hours. */
export interface CalendarDuration {
  years: number;
  months: number;
  days: number;
  hours: number;
}

export function parseCalendarDuration(s: string, flag: string): CalendarDuration {
  const d: CalendarDuration = { years: 0, months: 0, days: 0, hours: 0 };
  const t = s.trim();
  const re = /(\d+)([ymdh])/gy;
  let pos = 0;
  let m: RegExpExecArray | null;
  const seen = new Set<string>();
  while ((m = re.exec(t))) {
    const unit = m[2]!;
    if (seen.has(unit)) throw new UsageError(`${flag}: "${s}" names the unit ${unit} twice`);
    seen.add(unit);
    const n = Number(m[1]);
    if (unit === 'y') d.years = n;
    else if (unit === 'm') d.months = n;
    else if (unit === 'd') d.days = n;
    else d.hours = n;
    pos = re.lastIndex;
  }
  if (pos === 0 || pos !== t.length) throw new UsageError(`${flag}: "${s}" is not a duration like 1y2m3d4h (years, months, days, hours)`);
  return d;
}

export function formatCalendarDuration(d: CalendarDuration): string {
  const parts = [d.years && `${d.years}y`, d.months && `${d.months}m`, d.days && `${d.days}d`, d.hours && `${d.hours}h`].filter(Boolean);
  return parts.length ? parts.join('') : '0h';
}

function isZero(d: CalendarDuration | undefined): boolean {
  return !d || (d.years === 0 && d.months === 0 && d.days === 0 && d.hours === 0);
}

/** `t` minus a calendar duration, in local time (Go's AddDate: overflow normalises, Mar 31 - 1m = Mar 3). */
export function subtractCalendar(t: Date, d: CalendarDuration): Date {
  const base = new Date(t.getFullYear() - d.years, t.getMonth() - d.months, t.getDate() - d.days, t.getHours(), t.getMinutes(), t.getSeconds(), t.getMilliseconds());
  return new Date(base.getTime() - d.hours * 3600_000);
}

export const PERIODS = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
export type Period = (typeof PERIODS)[number];

export interface KeepPolicy {
  /** Counts: N > 0, or -1 for unlimited. */
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  within?: CalendarDuration;
  withinPeriod?: Partial<Record<Period, CalendarDuration>>;
  /** Keep snapshots having every tag of any one of these lists. */
  tags?: string[][];
}

export function policyEmpty(p: KeepPolicy): boolean {
  const counts = [p.last, ...PERIODS.map((k) => p[k])];
  return counts.every((c) => !c) && isZero(p.within) && PERIODS.every((k) => isZero(p.withinPeriod?.[k])) && (p.tags ?? []).length === 0;
}

export function validatePolicy(p: KeepPolicy): void {
  for (const k of ['last', ...PERIODS] as const) {
    const v = p[k];
    if (v !== undefined && (!Number.isInteger(v) || v < -1)) throw new UsageError(`--keep-${k}: ${v} is not a count (a whole number, or -1 for unlimited)`);
  }
}

/** ISO 8601 week-numbering year and week of a local date (Monday-first; week 1 holds Jan 4). */
export function isoWeek(t: Date): { year: number; week: number } {
  // The Thursday of t's week decides the year.
  const d = new Date(t.getFullYear(), t.getMonth(), t.getDate());
  const weekday = (d.getDay() + 6) % 7; // Monday = 0
  d.setDate(d.getDate() - weekday + 3);
  const year = d.getFullYear();
  const jan4 = new Date(year, 0, 4);
  const jan4Weekday = (jan4.getDay() + 6) % 7;
  const week1Thursday = new Date(year, 0, 4 - jan4Weekday + 3);
  const week = 1 + Math.round((d.getTime() - week1Thursday.getTime()) / (7 * 86400_000));
  return { year, week };
}

/** The local calendar period a time falls in, as one comparable number. */
export function periodKey(t: Date, p: Period): number {
  switch (p) {
    case 'hourly':
      return ((t.getFullYear() * 100 + t.getMonth() + 1) * 100 + t.getDate()) * 100 + t.getHours();
    case 'daily':
      return (t.getFullYear() * 100 + t.getMonth() + 1) * 100 + t.getDate();
    case 'weekly': {
      const w = isoWeek(t);
      return w.year * 100 + w.week;
    }
    case 'monthly':
      return t.getFullYear() * 100 + t.getMonth() + 1;
    case 'yearly':
      return t.getFullYear();
  }
}

export interface Decision {
  entry: SnapshotEntry;
  keep: boolean;
  /** Why it is kept (empty when removed). */
  reasons: string[];
}

/** Applies a policy to one group; returns decisions newest first. */
export function applyPolicy(group: readonly SnapshotEntry[], p: KeepPolicy): Decision[] {
  const list = [...group].sort((a, b) => Date.parse(b.snapshot.time) - Date.parse(a.snapshot.time) || b.id.localeCompare(a.id));
  if (policyEmpty(p)) return list.map((entry) => ({ entry, keep: true, reasons: ['policy is empty'] }));
  const times = list.map((e) => new Date(e.snapshot.time));
  const latest = times.reduce((a, t) => (t > a ? t : a), new Date(0));
  const buckets: { count: number; key: (t: Date, nr: number) => number; last: number | undefined; reason: string }[] = [
    { count: p.last ?? 0, key: (_t, nr) => nr, last: undefined, reason: 'last snapshot' },
    ...PERIODS.map((k) => ({ count: p[k] ?? 0, key: (t: Date) => periodKey(t, k), last: undefined, reason: `${k} snapshot` })),
  ];
  const within = PERIODS.flatMap((k) => {
    const d = p.withinPeriod?.[k];
    return d && !isZero(d) ? [{ since: subtractCalendar(latest, d), key: (t: Date) => periodKey(t, k), last: undefined as number | undefined, reason: `${k} within ${formatCalendarDuration(d)}` }] : [];
  });
  const withinSince = p.within && !isZero(p.within) ? subtractCalendar(latest, p.within) : undefined;
  const oldest = list.length - 1;

  return list.map((entry, nr) => {
    const t = times[nr]!;
    const reasons: string[] = [];
    for (const tl of p.tags ?? []) if (tl.every((tag) => entry.snapshot.tags.includes(tag))) reasons.push(`has tags ${tl.join(',')}`);
    if (withinSince && t > withinSince) reasons.push(`within ${formatCalendarDuration(p.within!)}`);
    for (const b of buckets) {
      if (b.count === 0) continue;
      const v = b.key(t, nr);
      // With counts left at the oldest snapshot, keep it too: the longest history the counts allow.
      if (v !== b.last || nr === oldest) {
        reasons.push(v === b.last ? `oldest ${b.reason}` : b.reason);
        b.last = v;
        if (b.count > 0) b.count--;
      }
    }
    for (const b of within) {
      if (!(t > b.since)) continue;
      const v = b.key(t);
      if (v !== b.last || nr === oldest) {
        reasons.push(v === b.last ? `oldest ${b.reason}` : b.reason);
        b.last = v;
      }
    }
    return { entry, keep: reasons.length > 0, reasons };
  });
}

export interface GroupBy {
  host: boolean;
  paths: boolean;
  tags: boolean;
}

export function parseGroupBy(s: string): GroupBy {
  const g: GroupBy = { host: false, paths: false, tags: false };
  for (const part of s.split(',').map((x) => x.trim()).filter(Boolean)) {
    if (part === 'host' || part === 'paths' || part === 'tags') g[part] = true;
    else throw new UsageError(`--group-by: unknown field "${part}" (use host, paths, tags, comma-separated, or "" for one group)`);
  }
  return g;
}

export interface SnapshotGroup {
  host?: string;
  paths?: string[];
  tags?: string[];
  entries: SnapshotEntry[];
}

export function groupSnapshots(list: readonly SnapshotEntry[], by: GroupBy): SnapshotGroup[] {
  const groups = new Map<string, SnapshotGroup>();
  for (const e of list) {
    const s: Snapshot = e.snapshot;
    const g: SnapshotGroup = { entries: [] };
    if (by.host) g.host = s.hostname;
    if (by.paths) g.paths = [...s.paths].sort();
    if (by.tags) g.tags = [...s.tags].sort();
    const key = JSON.stringify([g.host, g.paths, g.tags]);
    const have = groups.get(key);
    if (have) have.entries.push(e);
    else groups.set(key, { ...g, entries: [e] });
  }
  return [...groups.values()];
}

export interface SnapshotFilter {
  hosts?: string[];
  /** Any one list whose tags the snapshot has all of. */
  tags?: string[][];
  /** Paths the snapshot must all include. */
  paths?: string[];
}

export function matchesFilter(s: Snapshot, f: SnapshotFilter): boolean {
  if (f.hosts?.length && !f.hosts.includes(s.hostname)) return false;
  if (f.tags?.length && !f.tags.some((tl) => tl.every((t) => s.tags.includes(t)))) return false;
  if (f.paths?.length && !f.paths.every((p) => s.paths.includes(p))) return false;
  return true;
}
