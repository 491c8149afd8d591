// Run with TZ set (a child process of retention.test.ts): compares src/engine/retention.ts with the
// oracle over generated histories and prints a JSON report.
import { applyPolicy } from '../../dist/src/engine/retention.js';
import { oracleKeep } from './retention-oracle.mjs';

let x = Number(process.argv[2] ?? 1) | 0 || 1;
const rnd = () => {
  x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
  return (x >>> 0) / 4294967296;
};
const pick = (a) => a[Math.floor(rnd() * a.length)];
const HOUR = 3600000;

function history() {
  const start = Date.UTC(2017 + Math.floor(rnd() * 4), Math.floor(rnd() * 12), 1 + Math.floor(rnd() * 28));
  const years = 2 + rnd() * 4;
  const end = start + years * 365 * 24 * HOUR;
  const times = new Set();
  let t = start;
  while (t < end) {
    t += pick([10 * 60000, HOUR, 6 * HOUR, 24 * HOUR, 3 * 24 * HOUR, 17 * 24 * HOUR]) * (0.5 + rnd());
    times.add(Math.round(t / 1000) * 1000);
  }
  // Dense snapshots around every DST change and every month end in range: the edge cases.
  for (let day = start; day < end; day += 24 * HOUR) {
    const a = new Date(day), b = new Date(day + 24 * HOUR);
    const dst = a.getTimezoneOffset() !== b.getTimezoneOffset();
    const monthEnd = a.getMonth() !== b.getMonth();
    if ((dst || monthEnd) && rnd() < 0.7) for (let m = 0; m < 48 * 60; m += 20 + Math.floor(rnd() * 40)) times.add(day + m * 60000);
  }
  const tags = ['a', 'b', 'c'];
  return [...times].map((ms, i) => ({ id: i.toString(16).padStart(8, '0'), ms, tags: tags.filter(() => rnd() < 0.1) }));
}

function dur() {
  return { years: pick([0, 0, 1, 2]), months: pick([0, 1, 3, 6, 13]), days: pick([0, 1, 7, 31]), hours: pick([0, 0, 5, 36]) };
}

function policy() {
  const p = {};
  const counts = () => pick([1, 2, 3, 5, 7, 12, 30, 100, -1]);
  for (const k of ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly']) if (rnd() < 0.35) p[k] = counts();
  if (rnd() < 0.25) p.within = dur();
  for (const k of ['hourly', 'daily', 'weekly', 'monthly', 'yearly']) if (rnd() < 0.15) (p.withinPeriod ??= {})[k] = dur();
  if (rnd() < 0.2) p.tags = [[pick(['a', 'b', 'c'])]];
  if (Object.keys(p).length === 0) p.daily = 7;
  return p;
}

const mismatches = [];
let cases = 0, removed = 0, kept = 0;
for (let h = 0; h < 6; h++) {
  const snaps = history();
  const entries = snaps.map((s) => ({ id: s.id, snapshot: { time: new Date(s.ms).toISOString(), tags: s.tags } }));
  for (let i = 0; i < 12; i++) {
    const p = policy();
    cases++;
    const mine = new Set(applyPolicy(entries, p).filter((d) => d.keep).map((d) => d.entry.id));
    const theirs = oracleKeep(snaps, p);
    kept += mine.size;
    removed += snaps.length - mine.size;
    const diff = [...mine].filter((id) => !theirs.has(id)).concat([...theirs].filter((id) => !mine.has(id)));
    if (diff.length) mismatches.push({ policy: p, diff: diff.slice(0, 5).map((id) => new Date(snaps[parseInt(id, 16)].ms).toString()) });
  }
}
process.stdout.write(JSON.stringify({ tz: process.env.TZ, cases, kept, removed, mismatches: mismatches.slice(0, 5), mismatchCount: mismatches.length }));
