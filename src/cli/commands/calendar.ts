import { resolve } from 'node:path';
import { calendarDays, parseMonth, selectSnapshots } from '../../engine/finder.js';
import { handle, type Register } from '../command.js';
import { syncedCatalog } from './catalog.js';
import { snapshotFilter, snapshotFilterOptions, type SnapshotFilterArgs } from './find.js';

interface CalendarArgs extends SnapshotFilterArgs {
  month?: string;
  path?: string;
}

/** Monday-first weeks; each day shows its count in brackets. */
function grid(start: number, counts: Map<number, number>): string[] {
  const first = new Date(start);
  const days = new Date(Date.UTC(first.getUTCFullYear(), first.getUTCMonth() + 1, 0)).getUTCDate();
  const lines = ['Mon     Tue     Wed     Thu     Fri     Sat     Sun'];
  let cells: string[] = Array.from({ length: (first.getUTCDay() + 6) % 7 }, () => '');
  for (let d = 1; d <= days; d++) {
    const n = counts.get(d);
    cells.push(String(d).padStart(2) + (n ? `[${n}]` : ''));
    if (cells.length === 7 || d === days) {
      lines.push(cells.map((c) => c.padEnd(8)).join('').trimEnd());
      cells = [];
    }
  }
  return lines;
}

export const registerCalendar: Register = (y) =>
  y.command(
    'calendar',
    'a month of days with snapshot counts, or with --path the days on which that path changed (UTC)',
    (c) =>
      snapshotFilterOptions(
        c
          .option('month', { type: 'string', describe: 'YYYY-MM (default: the month of the latest selected snapshot)' })
          .option('path', { type: 'string', describe: 'show the days on which this path changed' }),
      ),
    handle<CalendarArgs>(async (ctx, a) => {
      const filter = snapshotFilter(a);
      const explicit = a.month ? parseMonth(a.month) : undefined;
      const { catalog } = await syncedCatalog(ctx);
      try {
        const selected = selectSnapshots(catalog, filter);
        const latest = selected[selected.length - 1];
        const month = explicit ?? parseMonth(new Date(latest?.time ?? Date.now()).toISOString().slice(0, 7));
        const days = calendarDays(catalog, selected, month, a.path === undefined ? undefined : resolve(a.path));
        const label = new Date(month.start).toISOString().slice(0, 7);
        ctx.out.data({ month: label, path: a.path === undefined ? null : resolve(a.path), counting: a.path === undefined ? 'snapshots' : 'changes', days });
        ctx.out.line(`${label}${a.path === undefined ? ': snapshots per day' : `: days on which ${resolve(a.path)} changed`} (UTC)`);
        for (const l of grid(month.start, new Map(days.map((d) => [Number(d.date.slice(8)), d.count])))) ctx.out.line(l);
        ctx.out.line(`${days.reduce((n, d) => n + d.count, 0)} ${a.path === undefined ? 'snapshots' : 'changes'} on ${days.length} days`);
        return 0;
      } finally {
        catalog.close();
      }
    }),
  );
