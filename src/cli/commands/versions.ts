import { resolve } from 'node:path';
import { pathVersions, selectSnapshots } from '../../engine/finder.js';
import { shortId } from '../../model/snapshot.js';
import { handle, type Register } from '../command.js';
import { formatBytes, table } from '../output.js';
import { syncedCatalog } from './catalog.js';
import { shortTime, snapshotFilter, snapshotFilterOptions, versionJson, type SnapshotFilterArgs } from './find.js';

interface VersionsArgs extends SnapshotFilterArgs {
  path: string;
}

export const registerVersions: Register = (y) =>
  y.command(
    'versions <path>',
    'the history of one file or directory: each distinct version and the snapshots to restore it from',
    (c) => snapshotFilterOptions(c.positional('path', { type: 'string', demandOption: true, describe: 'absolute path as backed up (relative: from the current directory)' })),
    handle<VersionsArgs>(async (ctx, a) => {
      const filter = snapshotFilter(a);
      const { catalog } = await syncedCatalog(ctx);
      try {
        const found = pathVersions(catalog, resolve(a.path), selectSnapshots(catalog, filter));
        for (const v of found) ctx.out.data(versionJson(v, true));
        const rows = found.map((v) => [
          shortTime(v.snapshots[0]!.time), shortTime(v.snapshots[v.snapshots.length - 1]!.time), v.type,
          v.type === 'file' ? formatBytes(v.size) : '', shortTime(Number(v.mtimeNs / 1_000_000n)), v.snapshots.map((s) => shortId(s.id)).join(' '),
        ]);
        ctx.out.line(found[0]!.pathText);
        for (const l of table(rows, ['From', 'Until', 'Type', 'Size', 'Modified', 'Snapshots'])) ctx.out.line(l);
        ctx.out.line(`${found.length} versions`);
        return 0;
      } finally {
        catalog.close();
      }
    }),
  );
