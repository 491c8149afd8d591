// An independent implementation of restic's retention rules, written from the documentation
// ("newest snapshot of each of the last N periods; if there are fewer periods than N, the oldest
// snapshot is kept too"), not from src/engine/retention.ts: periods come from Intl (not Date's
// local getters), ISO weeks from civil-date arithmetic, and each rule is evaluated on its own.

const fmt = new Intl.DateTimeFormat('en-US', { timeZone: process.env.TZ || 'UTC', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', hourCycle: 'h23' });

const cache = new Map();
function parts(ms) {
  const hit = cache.get(ms);
  if (hit) return hit;
  const o = {};
  for (const p of fmt.formatToParts(new Date(ms))) if (p.type !== 'literal') o[p.type] = Number(p.value);
  cache.set(ms, o);
  return o;
}

// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
function daysFromCivil(y, m, d) {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function isoWeekKey(y, m, d) {
  const days = daysFromCivil(y, m, d);
  const dow = (((days + 3) % 7) + 7) % 7; // Monday = 0 (1970-01-01 was a Thursday)
  const thursday = days - dow + 3;
  // Year of that Thursday:
  let ty = y + 1;
  while (daysFromCivil(ty, 1, 1) > thursday) ty--;
  const week = Math.floor((thursday - daysFromCivil(ty, 1, 1)) / 7) + 1;
  return ty * 100 + week;
}

export function period(ms, kind) {
  const p = parts(ms);
  switch (kind) {
    case 'hourly': return `${p.year}-${p.month}-${p.day}-${p.hour}`;
    case 'daily': return `${p.year}-${p.month}-${p.day}`;
    case 'weekly': return String(isoWeekKey(p.year, p.month, p.day));
    case 'monthly': return `${p.year}-${p.month}`;
    case 'yearly': return String(p.year);
  }
}

function since(latestMs, d) {
  const t = new Date(latestMs);
  t.setFullYear(t.getFullYear() - d.years, t.getMonth() - d.months, t.getDate() - d.days);
  return t.getTime() - d.hours * 3600000;
}

/** snaps: [{id, ms, tags}], policy as KeepPolicy. Returns the set of kept IDs. */
export function oracleKeep(snaps, policy) {
  const list = [...snaps].sort((a, b) => b.ms - a.ms || (b.id < a.id ? -1 : 1));
  const keep = new Set();
  if (list.length === 0) return keep;
  const oldest = list[list.length - 1];
  const latest = list[0].ms;
  const n = (v) => (v === -1 ? Infinity : v ?? 0);
  list.slice(0, n(policy.last)).forEach((s) => keep.add(s.id));
  for (const kind of ['hourly', 'daily', 'weekly', 'monthly', 'yearly']) {
    const count = n(policy[kind]);
    if (count === 0) continue;
    const newestOf = new Map();
    for (const s of list) if (!newestOf.has(period(s.ms, kind))) newestOf.set(period(s.ms, kind), s);
    [...newestOf.values()].slice(0, count).forEach((s) => keep.add(s.id));
    if (newestOf.size < count) keep.add(oldest.id);
  }
  if (policy.within) for (const s of list) if (s.ms > since(latest, policy.within)) keep.add(s.id);
  for (const [kind, d] of Object.entries(policy.withinPeriod ?? {})) {
    const from = since(latest, d);
    const seen = new Set();
    for (const s of list) {
      if (!(s.ms > from)) continue;
      const p = period(s.ms, kind);
      if (!seen.has(p)) keep.add(s.id);
      seen.add(p);
    }
    if (oldest.ms > from) keep.add(oldest.id);
  }
  for (const tl of policy.tags ?? []) for (const s of list) if (tl.every((t) => s.tags.includes(t))) keep.add(s.id);
  return keep;
}
