import {
  applyPolicy, groupSnapshots, matchesFilter, parseCalendarDuration, parseGroupBy, policyEmpty, validatePolicy, PERIODS,
  type KeepPolicy, type Period,
} from '../../engine/retention.js';
import { UsageError } from '../../errors.js';
import { removeIfPresent } from '../../backend/common.js';
import { shortId, type SnapshotEntry } from '../../model/snapshot.js';
import { handle, type Register } from '../command.js';
import { asArray, snapshotFilter, SNAPSHOT_FILTER_FLAGS } from '../args.js';
import { table } from '../output.js';
import { pruneOptions, pruneOptionsFrom, runPrune, type PruneArgs } from './prune.js';
import { catalogAfterBackup } from './catalog.js';

interface ForgetArgs extends PruneArgs {
  snapshotIds: string[];
  keepLast?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepYearly?: number;
  keepWithin?: string;
  keepWithinHourly?: string;
  keepWithinDaily?: string;
  keepWithinWeekly?: string;
  keepWithinMonthly?: string;
  keepWithinYearly?: string;
  keepTag?: string[];
  groupBy: string;
  host?: string[];
  tag?: string[];
  path?: string[];
  prune: boolean;
}

const cap = (p: Period) => p[0]!.toUpperCase() + p.slice(1);

function policyFrom(a: ForgetArgs): KeepPolicy {
  const p: KeepPolicy = {};
  if (a.keepLast !== undefined) p.last = a.keepLast;
  for (const k of PERIODS) {
    const v = a[`keep${cap(k)}` as 'keepDaily'];
    if (v !== undefined) p[k] = v;
    const w = a[`keepWithin${cap(k)}` as 'keepWithinDaily'];
    if (w !== undefined) (p.withinPeriod ??= {})[k] = parseCalendarDuration(w, `--keep-within-${k}`);
  }
  if (a.keepWithin !== undefined) p.within = parseCalendarDuration(a.keepWithin, '--keep-within');
  const tags = asArray(a.keepTag).map((t) => t.split(',').filter(Boolean));
  if (tags.length) p.tags = tags;
  for (const k of ['last', ...PERIODS] as const) if (p[k] !== undefined && Number.isNaN(p[k])) throw new UsageError(`--keep-${k}: not a number`);
  validatePolicy(p);
  return p;
}

export const registerForget: Register = (y) =>
  y.command(
    'forget [snapshotIds..]',
    'remove snapshots: the given IDs, or those a --keep-* policy does not keep (then `prune` frees their data)',
    (c) => {
      const keep: Record<string, { type: 'number' | 'string'; describe: string }> = {};
      for (const k of PERIODS) keep[`keep-${k}`] = { type: 'number', describe: `keep the newest snapshot of each of the last N ${k} periods (local calendar; -1: all)` };
      for (const k of PERIODS) keep[`keep-within-${k}`] = { type: 'string', describe: `keep the newest snapshot of each ${k} period within DURATION of the latest` };
      return c
        .positional('snapshotIds', { type: 'string', array: true, default: [] as string[] })
        .option('keep-last', { alias: 'l', type: 'number', describe: 'keep the N newest snapshots (per group; -1: all)' })
        .options(keep)
        .option('keep-within', { type: 'string', describe: 'keep snapshots newer than the latest minus DURATION (e.g. 1y2m3d4h)' })
        .option('keep-tag', { type: 'string', array: true, describe: 'keep snapshots with these tags (comma: all of them; repeat: any)' })
        .option('group-by', { type: 'string', default: 'host,paths', describe: 'apply the policy per group of host, paths, tags ("" for one group)' })
        .options(SNAPSHOT_FILTER_FLAGS)
        .option('dry-run', { alias: 'n', type: 'boolean', default: false, describe: 'print what would be kept and removed, and why; remove nothing' })
        .option('prune', { type: 'boolean', default: false, describe: 'run prune afterwards when snapshots were removed' })
        .options(pruneOptions);
    },
    handle<ForgetArgs>(async (ctx, a) => {
      // Every flag is checked before anything is locked or removed.
      const policy = policyFrom(a);
      if (a.prune) pruneOptionsFrom(a, ctx.signal);
      const ids = asArray(a.snapshotIds);
      if (ids.length > 0 && !policyEmpty(policy)) throw new UsageError('give snapshot IDs or a --keep-* policy, not both');
      if (ids.length === 0 && policyEmpty(policy)) {
        throw new UsageError('no policy given: forget would remove every snapshot, so it refuses', { hint: 'add --keep-last, --keep-daily, --keep-within, ... or name snapshot IDs' });
      }
      const repo = await ctx.repository({ index: false, lock: a.dryRun ? 'shared' : 'exclusive', readOnly: a.dryRun });
      const filter = snapshotFilter(a);
      // A dry run's report stays with --quiet; a real run's is a summary.
      const say = (text: string) => (a.dryRun ? ctx.out.line(text) : ctx.out.info(text));
      let remove: SnapshotEntry[];
      if (ids.length > 0) {
        // Resolve all first: one unknown ID and nothing is removed.
        const found = await Promise.all(ids.map((id) => repo.findSnapshot(id)));
        remove = [...new Map(found.map((e) => [e.id, e])).values()];
        for (const e of remove) say(`${a.dryRun ? 'would remove' : 'remove'} ${shortId(e.id)} ${e.snapshot.time} ${e.snapshot.hostname} ${e.snapshot.paths.join(' ')}`);
        ctx.out.data({ message_type: 'forget', dry_run: a.dryRun, remove: remove.map((e) => e.id) });
      } else {
        const groupBy = parseGroupBy(a.groupBy);
        const all = (await repo.listSnapshots()).filter((e) => matchesFilter(e.snapshot, filter));
        remove = [];
        const report = [];
        for (const g of groupSnapshots(all, groupBy)) {
          const ds = applyPolicy(g.entries, policy);
          const label = [g.host !== undefined ? `host ${g.host}` : '', g.paths ? `paths [${g.paths.join(', ')}]` : '', g.tags ? `tags [${g.tags.join(', ')}]` : ''].filter(Boolean).join(', ');
          say(`snapshots for ${label || 'all'}:`);
          const rows = ds.map((d) => [shortId(d.entry.id), d.entry.snapshot.time, d.entry.snapshot.hostname, d.entry.snapshot.tags.join(','), d.keep ? 'keep' : 'remove', d.reasons.join(', ')]);
          for (const l of table(rows, ['ID', 'Time', 'Host', 'Tags', 'Action', 'Reasons'])) say(l);
          const kept = ds.filter((d) => d.keep).length;
          say(`${kept} kept, ${ds.length - kept} removed`);
          say('');
          remove.push(...ds.filter((d) => !d.keep).map((d) => d.entry));
          report.push({
            host: g.host ?? null, paths: g.paths ?? null, tags: g.tags ?? null,
            keep: ds.filter((d) => d.keep).map((d) => d.entry.id),
            remove: ds.filter((d) => !d.keep).map((d) => d.entry.id),
            reasons: ds.filter((d) => d.keep).map((d) => ({ snapshot: d.entry.id, matches: d.reasons })),
          });
        }
        ctx.out.data({ message_type: 'forget', dry_run: a.dryRun, groups: report });
      }
      if (a.dryRun) {
        ctx.out.line(`dry run: ${remove.length} snapshots would be removed`);
        return 0;
      }
      for (const e of remove) await removeIfPresent(repo.backend, { type: 'snapshot', name: e.id });
      ctx.out.info(`removed ${remove.length} snapshots`);
      // The catalog drops the forgotten snapshots now, as backup adds new ones: warning-only.
      if (remove.length > 0) await catalogAfterBackup(ctx);
      if (a.prune && remove.length > 0) return runPrune(ctx, repo, a);
      return 0;
    }),
  );
