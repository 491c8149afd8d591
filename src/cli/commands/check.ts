import { check, type ReadDataSelection } from '../../engine/checker.js';
import { ExitCode, UsageError } from '../../errors.js';
import { handle, type Register } from '../command.js';

interface CheckArgs {
  readData: boolean;
  readDataSubset?: string;
  allowThaw: boolean;
}

function parseSubset(s: string): ReadDataSelection {
  const frac = /^(\d+(?:\.\d+)?)%$/.exec(s.trim());
  if (frac) {
    const p = Number(frac[1]);
    if (!(p > 0 && p <= 100)) throw new UsageError(`--read-data-subset: ${s} is not a percentage in (0, 100]`);
    return { fraction: p / 100 };
  }
  const nm = /^(\d+)\/(\d+)$/.exec(s.trim());
  if (nm) {
    const n = Number(nm[1]);
    const m = Number(nm[2]);
    if (m < 1 || n < 1 || n > m) throw new UsageError(`--read-data-subset: ${s}: need 1 <= N <= M`);
    return { n, m };
  }
  throw new UsageError(`--read-data-subset: "${s}" is neither N/M nor X%`);
}

export const registerCheck: Register = (y) =>
  y.command(
    'check',
    'verify the repository: index vs packs, every snapshot complete; with --read-data, every blob',
    (c) =>
      c
        .option('read-data', { type: 'boolean', default: false, describe: 'read every data pack and verify every blob' })
        .option('read-data-subset', { type: 'string', describe: 'read only group N of M (N/M) or a random X% of the data packs' })
        .option('allow-thaw', { type: 'boolean', default: false, describe: 'request thaws of archived data packs (they cost money) instead of skipping them' }),
    handle<CheckArgs>(async (ctx, a) => {
      if (a.readData && a.readDataSubset !== undefined) throw new UsageError('--read-data and --read-data-subset exclude each other');
      const readData: ReadDataSelection | undefined = a.readData ? { all: true } : a.readDataSubset !== undefined ? parseSubset(a.readDataSubset) : undefined;
      const repo = await ctx.repository({ index: false, lock: 'exclusive', cache: false, readOnly: true });
      const r = await check(repo, {
        ...(readData ? { readData } : {}),
        allowThaw: a.allowThaw,
        signal: ctx.signal,
        onProgress: (stage, done, total) => ctx.out.progress(`checking ${stage}: ${done}/${total}`),
      });
      for (const p of r.problems) ctx.out.line(`error: ${p.object}: ${p.message}`);
      for (const u of r.unreferencedPacks) ctx.out.info(`info: ${u}: not referenced by any index (left by an interrupted backup or prune; \`snap prune\` removes it)`);
      if (r.coldSkipped > 0) ctx.out.info(`info: ${r.coldSkipped} archived data packs not thawed were skipped (--allow-thaw to request thaws)`);
      if (r.thawRequested > 0) ctx.out.line(`info: ${r.thawRequested} archived data packs are being thawed; run check again once they are readable`);
      ctx.out.info(`${r.snapshots} snapshots, ${r.packs} packs checked, ${r.packsRead} read whole, ${r.blobsVerified} blobs verified`);
      if (r.problems.length === 0) ctx.out.info('no errors were found');
      else ctx.out.line(`${r.problems.length} problems found`);
      // Blobs missing from the index while unindexed packs are stored: the index lost them, the
      // packs may well hold them. (Prune refuses to run on such a repository.)
      if (r.damagedPacks.length > 0 || r.missingPacks > 0) ctx.out.line('hint: `snap find --pack ID` lists, in each snapshot, the files that a pack named above holds data of');
      if (r.damagedPacks.length > 0) ctx.out.line(`hint: \`snap repair packs ${r.damagedPacks.map((id) => id.slice(0, 8)).join(' ')}\` copies the intact blobs of the damaged packs into new ones and removes them; then \`snap repair snapshots\` removes what was lost from the snapshots (if the files still exist, a backup stores them again instead)`);
      if (r.missingPacks > 0) ctx.out.line('hint: packs the index names are gone: `snap repair index` drops them from the index, then `snap repair snapshots` removes their data from the snapshots (if the files still exist, a backup after `repair index` stores them again instead)');
      else if (r.missingFromIndex > 0 && r.unreferencedPacks.length > 0) ctx.out.line('hint: blobs in use are missing from the index while packs no index names are stored: `snap repair index` rebuilds the index from the packs');
      else if (r.missingFromIndex > 0) ctx.out.line('hint: blobs in use are lost (no stored pack holds them): if the files still exist, a backup stores them again; else `snap repair snapshots` removes them from the snapshots');
      ctx.out.data({ message_type: 'check', ok: r.problems.length === 0, ...r });
      if (r.problems.length > 0) return ExitCode.error;
      return r.thawRequested > 0 ? ExitCode.thawPending : 0;
    }),
  );
