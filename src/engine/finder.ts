// Queries over the catalog: find, versions of one path, calendar. Pure metadata: the catalog answers
// everything, no pack is read here.
import type { Catalog, CatalogSnapshot, VersionQuery, VersionRow } from '../catalog/catalog.js';
import { NoSuchItemError, UsageError } from '../errors.js';
import { matchIdPrefix } from '../model/ids.js';

export interface SnapshotFilter {
  /** Full or prefix IDs, or "latest". */
  snapshots?: string[];
  /** Any of these hosts. */
  hosts?: string[];
  /** Any of these lists of tags, each wholly present (restic's `--tag a,b --tag c`). */
  tags?: string[][];
  since?: Date;
  until?: Date;
}

export interface FoundVersion extends Omit<VersionRow, 'ranges'> {
  pathText: string;
  /** The snapshots holding this version (after the filter), oldest first. */
  snapshots: CatalogSnapshot[];
}

/** Resolves "latest" or a unique ID prefix among cataloged snapshots. */
export function resolveSnapshot(all: CatalogSnapshot[], ref: string): CatalogSnapshot {
  if (ref === 'latest') {
    const last = all[all.length - 1];
    if (!last) throw new NoSuchItemError('the repository has no snapshots');
    return last;
  }
  const id = matchIdPrefix(all.map((s) => s.id), ref, 'snapshot');
  return all.find((s) => s.id === id)!;
}

/** The cataloged snapshots passing the filter; throws when the repository has none at all. */
export function selectSnapshots(cat: Catalog, f: SnapshotFilter): CatalogSnapshot[] {
  const all = cat.snapshots();
  if (all.length === 0) throw new NoSuchItemError('the repository has no snapshots', { hint: 'create one with `snap backup`' });
  const ids = f.snapshots?.length ? new Set(f.snapshots.map((r) => resolveSnapshot(all, r).id)) : undefined;
  const since = f.since?.getTime() ?? -Infinity;
  const until = f.until?.getTime() ?? Infinity;
  return all.filter(
    (s) =>
      (!ids || ids.has(s.id)) &&
      (!f.hosts?.length || f.hosts.includes(s.host)) &&
      (!f.tags?.length || f.tags.some((all) => all.every((t) => s.tags.includes(t)))) &&
      s.time >= since &&
      s.time <= until,
  );
}

/** Matching versions held by at least one selected snapshot, ordered by path, then first appearance. */
export function findVersions(cat: Catalog, q: VersionQuery, selected: CatalogSnapshot[]): FoundVersion[] {
  const byChain = new Map<number, CatalogSnapshot[]>();
  for (const s of [...selected].sort((a, b) => a.seq - b.seq)) {
    let l = byChain.get(s.chain);
    if (!l) byChain.set(s.chain, (l = []));
    l.push(s);
  }
  const out: FoundVersion[] = [];
  for (const row of cat.versions(q)) {
    const holding: CatalogSnapshot[] = [];
    for (const r of row.ranges) {
      const list = byChain.get(r.chain);
      if (!list) continue;
      const end = r.last === null ? list.length : lowerBound(list, r.last + 1);
      for (let i = lowerBound(list, r.first); i < end; i++) holding.push(list[i]!);
    }
    if (holding.length === 0) continue;
    holding.sort((a, b) => a.time - b.time || a.id.localeCompare(b.id));
    const { ranges: _ranges, ...rest } = row;
    out.push({ ...rest, pathText: cat.pathText(row.path), snapshots: holding });
  }
  return out.sort((a, b) => (a.pathText < b.pathText ? -1 : a.pathText > b.pathText ? 1 : a.snapshots[0]!.time - b.snapshots[0]!.time));
}

function lowerBound(list: CatalogSnapshot[], seq: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid]!.seq < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Normalises a user-given absolute path ("/a//b/" -> "/a/b"). */
export function normalizePath(path: string): string {
  if (!path.startsWith('/')) throw new UsageError(`"${path}" is not an absolute path`);
  const parts = path.split('/').filter((p) => p.length > 0 && p !== '.');
  if (parts.includes('..')) throw new UsageError(`"${path}": ".." is not allowed in a snapshot path`);
  return '/' + parts.join('/');
}

/** Every distinct version of one path, oldest first; throws when no snapshot ever held it. */
export function pathVersions(cat: Catalog, path: string, selected: CatalogSnapshot[]): FoundVersion[] {
  const p = normalizePath(path);
  const id = cat.pathId(p);
  if (id === undefined) throw new NoSuchItemError(`${p}: no snapshot holds this path`, { hint: 'check the spelling; `snap find NAME` searches by name' });
  const found = findVersions(cat, { pathId: id }, selected);
  if (found.length === 0) throw new NoSuchItemError(`${p}: no selected snapshot holds this path`);
  return found.sort((a, b) => a.snapshots[0]!.time - b.snapshots[0]!.time);
}

export interface CalendarDay {
  /** YYYY-MM-DD (UTC) */
  date: string;
  count: number;
  snapshots: string[];
}

/** Parses YYYY-MM into [start, end) in ms, UTC. */
export function parseMonth(s: string): { start: number; end: number } {
  const m = /^(\d{4})-(\d{2})$/.exec(s);
  const month = m ? Number(m[2]) : 0;
  if (!m || month < 1 || month > 12) throw new UsageError(`--month: "${s}" is not a month (YYYY-MM, e.g. 2026-11)`);
  return { start: Date.UTC(Number(m[1]), month - 1, 1), end: Date.UTC(Number(m[1]), month, 1) };
}

/**
 * Days of a month with their snapshot counts or, for a path, the days on which a snapshot first
 * held a new version of it (the days it changed).
 */
export function calendarDays(cat: Catalog, selected: CatalogSnapshot[], month: { start: number; end: number }, path?: string): CalendarDay[] {
  const days = new Map<string, CalendarDay>();
  const add = (s: CatalogSnapshot) => {
    if (s.time < month.start || s.time >= month.end) return;
    const date = new Date(s.time).toISOString().slice(0, 10);
    let d = days.get(date);
    if (!d) days.set(date, (d = { date, count: 0, snapshots: [] }));
    d.count++;
    d.snapshots.push(s.id);
  };
  if (path === undefined) selected.forEach(add);
  else for (const v of pathVersions(cat, path, selected)) add(v.snapshots[0]!);
  return [...days.values()].sort((a, b) => a.date.localeCompare(b.date));
}
