// Small parsers shared by commands.
import { readFileSync } from 'node:fs';
import { UsageError } from '../errors.js';
import { matchesFilter, type SnapshotFilter } from '../engine/retention.js';
import type { SnapshotEntry } from '../model/snapshot.js';
import type { Repository } from '../repository/repository.js';

/** "SNAPSHOT[:PATH]" as restic writes it. */
export function splitSnapshotPath(s: string): { snapshot: string; path: string } {
  const i = s.indexOf(':');
  if (i < 0) return { snapshot: s, path: '/' };
  const path = s.slice(i + 1) || '/';
  return { snapshot: s.slice(0, i), path: path.startsWith('/') ? path : '/' + path };
}

export function parseSize(s: string | number, flag: string): number {
  if (typeof s === 'number') return s;
  const m = /^(\d+)\s*([KMGT]i?B?|B)?$/i.exec(s.trim());
  if (!m) throw new UsageError(`${flag}: "${s}" is not a size (e.g. 4096, 512K, 1M)`);
  const unit = (m[2] ?? '').toUpperCase()[0];
  const mult = unit === 'K' ? 1024 : unit === 'M' ? 1024 ** 2 : unit === 'G' ? 1024 ** 3 : unit === 'T' ? 1024 ** 4 : 1;
  return Number(m[1]) * mult;
}

export function parseTime(s: string, flag: string): Date {
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) throw new UsageError(`${flag}: "${s}" is not a date/time (e.g. 2026-11-23T17:00:00Z or "2026-11-23 17:00")`);
  return d;
}

export function asArray(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}

/** The text of a list file, `-` for standard input. */
export function readListFile(f: string, flag: string): string {
  try {
    return readFileSync(f === '-' ? 0 : f, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${flag} ${f}: ${(e as { code?: string }).code ?? (e as Error).message}`);
  }
}

/** Lines trimmed, without empty lines and # comments (restic's --exclude-file, --files-from). */
export const patternLines = (f: string, flag: string) =>
  readListFile(f, flag).split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));

/** Patterns given by a repeatable flag (--exclude) and those read from its files (--exclude-file). */
export function patternsOf(given: unknown, files: unknown, fileFlag: string): string[] {
  return [...asArray(given), ...asArray(files).flatMap((f) => patternLines(f, fileFlag))];
}


/** Tags as restic takes them: each value may hold several, comma-separated. */
export function tagList(v: unknown): string[] {
  return asArray(v).flatMap((t) => t.split(',')).filter(Boolean);
}

/** --host, --tag and --path (yargs options), read by snapshotFilter. */
export const SNAPSHOT_FILTER_FLAGS = {
  host: { type: 'string', array: true, describe: 'only snapshots of this host (repeat: any of them)' },
  tag: { type: 'string', array: true, describe: 'only snapshots with these tags (comma: all of them; repeat: any)' },
  path: { type: 'string', array: true, describe: 'only snapshots including this path (repeat: all of them)' },
} as const;

/**
 * The snapshot filter of --host, --tag and --path, as restic reads them: a snapshot of any given
 * host, holding all tags of any one --tag (comma: all of them), and every given path.
 */
export function snapshotFilter(a: { host?: string | string[]; tag?: string[]; path?: string[] }): SnapshotFilter {
  return { hosts: asArray(a.host), tags: asArray(a.tag).map((t) => t.split(',').filter(Boolean)), paths: asArray(a.path) };
}

/**
 * The snapshots a command acts on: those named by ID (all resolved first: one unknown ID and
 * nothing is done), else every one; then those the filters select.
 */
export async function chosenSnapshots(repo: Repository, ids: readonly string[], filter: SnapshotFilter): Promise<SnapshotEntry[]> {
  let chosen: SnapshotEntry[];
  if (ids.length > 0) {
    const found = await Promise.all(ids.map((id) => repo.findSnapshot(id)));
    chosen = [...new Map(found.map((e) => [e.id, e])).values()];
  } else chosen = await repo.listSnapshots();
  return chosen.filter((e) => matchesFilter(e.snapshot, filter));
}
