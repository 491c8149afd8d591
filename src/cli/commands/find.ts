import type { Argv } from 'yargs';
import type { CatalogSnapshot, VersionQuery } from '../../catalog/catalog.js';
import { findVersions, selectSnapshots, type FoundVersion, type SnapshotFilter } from '../../engine/finder.js';
import { throwIfAborted } from '../../backend/common.js';
import { findUses } from '../../engine/walk.js';
import { UsageError } from '../../errors.js';
import { PathMatcher } from '../../fs/glob.js';
import { pathText } from '../../fs/metadata.js';
import { isId, matchIdPrefix } from '../../model/ids.js';
import { shortId } from '../../model/snapshot.js';
import { NODE_TYPES, type NodeType } from '../../model/tree.js';
import { handle, type Register } from '../command.js';
import type { Context } from '../context.js';
import { asArray, parseSize, parseTime, snapshotFilter as commonSnapshotFilter } from '../args.js';
import { formatBytes, table } from '../output.js';
import { syncedCatalog } from './catalog.js';

export interface SnapshotFilterArgs {
  snapshot?: string[];
  host?: string[];
  tag?: string[];
  since?: string;
  until?: string;
}

/** --snapshot/--host/--tag/--since/--until, shared by find, versions and calendar. */
export function snapshotFilterOptions<T>(c: Argv<T>): Argv<T> {
  return c
    .option('snapshot', { alias: 's', type: 'string', array: true, describe: 'only this snapshot (ID prefix or "latest"; repeatable)' })
    .option('host', { type: 'string', array: true, describe: 'only snapshots of this host (repeat: any of them)' })
    .option('tag', { type: 'string', array: true, describe: 'only snapshots with these tags (comma: all of them; repeat: any)' })
    .option('since', { type: 'string', describe: 'only snapshots taken at or after this date/time' })
    .option('until', { type: 'string', describe: 'only snapshots taken at or before this date/time' });
}

export function snapshotFilter(a: SnapshotFilterArgs): SnapshotFilter {
  const { hosts, tags } = commonSnapshotFilter(a);
  const f: SnapshotFilter = { snapshots: asArray(a.snapshot), hosts, tags };
  if (a.since) f.since = parseTime(a.since, '--since');
  if (a.until) f.until = parseTime(a.until, '--until');
  return f;
}

/** "2026-11-23 17:45:00" (UTC) */
export function shortTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}

export function snapshotRef(s: CatalogSnapshot): Record<string, unknown> {
  return { id: s.id, short_id: shortId(s.id), time: new Date(s.time).toISOString(), host: s.host };
}

export function versionJson(v: FoundVersion, all: boolean): Record<string, unknown> {
  const first = v.snapshots[0]!;
  const last = v.snapshots[v.snapshots.length - 1]!;
  const o: Record<string, unknown> = {
    path: v.pathText, type: v.type, size: v.size, mode: v.mode, uid: v.uid, gid: v.gid, user: v.user || undefined, group: v.group || undefined,
    mtime: new Date(Number(v.mtimeNs / 1_000_000n)).toISOString(), mtime_ns: v.mtimeNs.toString(), content: v.content.toString('hex'),
    first: snapshotRef(first), last: snapshotRef(last), count: v.snapshots.length,
  };
  if (all) o.snapshots = v.snapshots.map(snapshotRef);
  return o;
}

interface FindArgs extends SnapshotFilterArgs {
  patterns: string[];
  path?: string;
  iname: boolean;
  type?: NodeType;
  newer?: string;
  older?: string;
  larger?: string;
  smaller?: string;
  all: boolean;
  blob?: string[];
  pack?: string[];
}

function nameTest(patterns: string[], ignoreCase: boolean): ((name: string) => boolean) | undefined {
  if (patterns.length === 0) return undefined;
  for (const p of patterns) {
    if (p.includes('/')) throw new UsageError(`"${p}": PATTERN matches names, which have no "/"; use --path GLOB for a full path`);
  }
  const m = ignoreCase ? new PathMatcher([], patterns) : new PathMatcher(patterns);
  return (n) => m.matches(n);
}

export const registerFind: Register = (y) =>
  y.command(
    'find [patterns..]',
    'find file versions by name or path in all snapshots (from the local catalog; reads no data); with --pack or --blob, the files that use those objects (from the snapshots\' trees)',
    (c) =>
      snapshotFilterOptions(
        c
          .positional('patterns', { type: 'string', array: true, default: [] as string[], describe: 'glob on the file name (* ? [..]); several: any matches' })
          .option('path', { type: 'string', describe: 'glob on the full path instead (/srv/**/*.conf); a match on a directory covers what is under it' })
          .option('iname', { type: 'boolean', default: false, describe: 'match names case-insensitively' })
          .option('type', { type: 'string', choices: NODE_TYPES, describe: 'only entries of this type' })
          .option('newer', { type: 'string', describe: 'only versions modified after this date/time' })
          .option('older', { type: 'string', describe: 'only versions modified before this date/time' })
          .option('larger', { type: 'string', describe: 'only versions larger than SIZE (e.g. 10M)' })
          .option('smaller', { type: 'string', describe: 'only versions smaller than SIZE' })
          .option('all', { type: 'boolean', default: false, describe: 'list every snapshot holding each version' })
          .option('blob', { type: 'string', array: true, describe: 'instead of names: the files (and, for a tree ID, the directory) using this blob, in each snapshot (full ID; repeatable). Reads the snapshots\' trees, no data pack' })
          .option('pack', { type: 'string', array: true, describe: 'instead of names: the files and directories with blobs in this pack, as the index has it, in each snapshot (ID or unique prefix; repeatable): what a lost or damaged pack affects' }),
      ),
    handle<FindArgs>(async (ctx, a) => {
      if (a.blob !== undefined || a.pack !== undefined) return findObjectUses(ctx, a);
      const patterns = asArray(a.patterns);
      if (patterns.length === 0 && !a.path) throw new UsageError('give a name PATTERN or --path GLOB');
      const q: VersionQuery = {};
      const name = nameTest(patterns, a.iname);
      if (name) q.name = name;
      if (a.path) {
        const m = new PathMatcher([a.path]);
        q.path = (p) => m.matches(p);
      }
      if (a.type) q.type = a.type;
      if (a.newer) q.mtimeAfter = BigInt(parseTime(a.newer, '--newer').getTime()) * 1_000_000n;
      if (a.older) q.mtimeBefore = BigInt(parseTime(a.older, '--older').getTime()) * 1_000_000n;
      if (a.larger !== undefined) q.minSize = parseSize(a.larger, '--larger') + 1;
      if (a.smaller !== undefined) q.maxSize = parseSize(a.smaller, '--smaller') - 1;
      const filter = snapshotFilter(a);
      const { catalog } = await syncedCatalog(ctx);
      try {
        const found = findVersions(catalog, q, selectSnapshots(catalog, filter));
        for (const v of found) ctx.out.data(versionJson(v, a.all));
        const rows = found.map((v) => {
          const first = v.snapshots[0]!;
          const last = v.snapshots[v.snapshots.length - 1]!;
          const held = a.all ? v.snapshots.map((s) => shortId(s.id)).join(' ') : String(v.snapshots.length);
          return [v.pathText, v.type, v.type === 'file' ? formatBytes(v.size) : '', shortTime(Number(v.mtimeNs / 1_000_000n)),
            `${shortTime(first.time)} ${shortId(first.id)}`, `${shortTime(last.time)} ${shortId(last.id)}`, held];
        });
        for (const l of table(rows, ['Path', 'Type', 'Size', 'Modified', 'First snapshot', 'Last snapshot', a.all ? 'Snapshots' : 'Count'])) ctx.out.line(l);
        ctx.out.line(`${found.length} versions of ${new Set(found.map((v) => v.path)).size} paths`);
        return 0;
      } finally {
        catalog.close();
      }
    }),
  );

/**
 * find --blob/--pack: the entries of the selected snapshots that use those objects, from the
 * snapshots' trees (the catalog keeps no blob IDs). Trees found to use none are read once.
 */
async function findObjectUses(ctx: Context, a: FindArgs): Promise<number> {
  if (asArray(a.patterns).length > 0 || a.path || a.type || a.newer || a.older || a.larger !== undefined || a.smaller !== undefined || a.all) {
    throw new UsageError('--blob and --pack find what uses those objects: no name PATTERN or version filter goes with them (the snapshot filters do)');
  }
  const blobs = new Set<string>();
  for (const id of asArray(a.blob)) {
    if (!isId(id.toLowerCase())) throw new UsageError(`--blob: "${id}" is not a blob ID (64 hex digits)`);
    blobs.add(id.toLowerCase());
  }
  const { catalog, repo } = await syncedCatalog(ctx);
  let selected: CatalogSnapshot[];
  try {
    selected = selectSnapshots(catalog, snapshotFilter(a));
  } finally {
    catalog.close();
  }
  if (repo.index.indexNames.size === 0) await repo.loadIndex();
  const packIds = repo.index.packIds();
  const packs = new Set(asArray(a.pack).map((p) => matchIdPrefix(packIds, p, 'pack')));
  const match = (id: string): string | undefined => {
    if (blobs.has(id)) return id;
    if (packs.size === 0) return undefined;
    const pack = repo.index.get(id)?.pack;
    return pack !== undefined && packs.has(pack) ? pack : undefined;
  };
  const clean = new Set<string>();
  const rows: string[][] = [];
  let affected = 0;
  for (const [i, s] of selected.entries()) {
    ctx.out.progress(`snapshot ${i + 1}/${selected.length}`);
    const uses = await findUses(repo, s.tree, match, clean, () => throwIfAborted(ctx.signal));
    if (uses.length > 0) affected++;
    for (const u of uses) {
      const path = pathText(u.path);
      ctx.out.data({ snapshot: snapshotRef(s), path, type: u.node.type, uses: u.uses });
      rows.push([`${shortTime(s.time)} ${shortId(s.id)}`, path, u.node.type, u.uses.map(shortId).join(' ')]);
    }
  }
  ctx.out.clearProgress();
  for (const l of table(rows, ['Snapshot', 'Path', 'Type', 'Uses'])) ctx.out.line(l);
  ctx.out.line(`${rows.length} entries in ${affected} of ${selected.length} snapshots`);
  return 0;
}
