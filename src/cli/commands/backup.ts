import type { Readable } from 'node:stream';
import { backup } from '../../engine/archiver.js';
import { FreshTrees } from '../../catalog/catalog.js';
import type { ReadFn } from '../../chunker/index.js';
import { ExitCode, UsageError } from '../../errors.js';
import { shortId } from '../../model/snapshot.js';
import { handle, type Register } from '../command.js';
import { asArray, parseSize, parseTime, patternLines, patternsOf, readListFile, tagList } from '../args.js';
import { formatBytes, formatDuration } from '../output.js';
import { catalogAfterBackup } from './catalog.js';
import { repositoryCacheDir } from '../../paths.js';
import { letYoungGenerationGrow } from '../v8-flags.js';
import { CACHEDIR_TAG } from '../../fs/tag-files.js';
import { expandGlob } from '../../fs/glob.js';

interface BackupArgs {
  paths: string[];
  filesFrom?: string[];
  filesFromVerbatim?: string[];
  filesFromRaw?: string[];
  exclude?: string[];
  excludeFile?: string[];
  iexclude?: string[];
  iexcludeFile?: string[];
  excludeLargerThan?: string;
  excludeIfPresent?: string[];
  excludeCaches: boolean;
  oneFileSystem: boolean;
  tag?: string[];
  host?: string;
  time?: string;
  parent?: string;
  force: boolean;
  ignoreInode: boolean;
  ignoreCtime: boolean;
  stdin: boolean;
  stdinFilename: string;
  dryRun: boolean;
  skipIfUnchanged: boolean;
}

/** Adapts a readable stream (stdin) to the chunker's read function. */
function streamReader(stream: Readable): ReadFn {
  const it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let pending: Buffer | undefined;
  return async (buf, offset, length) => {
    if (!pending || pending.length === 0) {
      const n = await it.next();
      if (n.done) return 0;
      pending = n.value;
    }
    const take = Math.min(length, pending.length);
    buf.set(pending.subarray(0, take), offset);
    pending = pending.subarray(take);
    return take;
  };
}

/** The paths to back up from --files-from (globs), --files-from-verbatim and --files-from-raw. */
function listedPaths(a: BackupArgs, warn: (m: string) => void): string[] {
  const paths: string[] = [];
  for (const f of asArray(a.filesFrom)) {
    for (const pattern of patternLines(f, '--files-from')) {
      const found = expandGlob(pattern);
      if (found.length === 0) warn(`--files-from ${f}: "${pattern}" matches no file; skipped`);
      paths.push(...found);
    }
  }
  // Verbatim: a path may begin or end with a space, or with # (only a Windows line end is dropped).
  for (const f of asArray(a.filesFromVerbatim)) paths.push(...readListFile(f, '--files-from-verbatim').split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l));
  for (const f of asArray(a.filesFromRaw)) paths.push(...readListFile(f, '--files-from-raw').split('\0').filter((l) => l));
  return paths;
}

export const registerBackup: Register = (y) =>
  y.command(
    'backup [paths..]',
    'back up files and directories (incremental against the last snapshot of the same host and paths)',
    (c) =>
      c
        .positional('paths', { type: 'string', array: true, default: [] as string[] })
        .option('files-from', { type: 'string', array: true, describe: 'read paths to back up from a file (- for stdin), one glob pattern per line (# comments)' })
        .option('files-from-verbatim', { type: 'string', array: true, describe: 'read paths to back up from a file, one per line exactly as written' })
        .option('files-from-raw', { type: 'string', array: true, describe: 'read paths to back up from a file, separated by NUL bytes (find -print0)' })
        .option('exclude', { alias: 'e', type: 'string', array: true, describe: 'exclude paths matching GLOB (repeatable)' })
        .option('exclude-file', { type: 'string', array: true, describe: 'read exclude patterns from a file, one per line' })
        .option('iexclude', { type: 'string', array: true, describe: 'like --exclude, ignoring case' })
        .option('iexclude-file', { type: 'string', array: true, describe: 'like --exclude-file, ignoring case' })
        .option('exclude-larger-than', { type: 'string', describe: 'leave out files larger than SIZE (e.g. 2G) found in the directories backed up' })
        .option('exclude-if-present', { type: 'string', array: true, describe: 'leave out a directory holding a file NAME (NAME:HEADER: that begins with HEADER)' })
        .option('exclude-caches', { type: 'boolean', default: false, describe: 'leave out directories tagged as caches (CACHEDIR.TAG)' })
        .option('one-file-system', { alias: 'x', type: 'boolean', default: false, describe: 'do not cross file system boundaries' })
        .option('tag', { type: 'string', array: true, describe: 'add tags to the snapshot (TAG[,TAG...]; repeatable)' })
        .option('host', { type: 'string', describe: 'host name to record (default: this host)' })
        .option('time', { type: 'string', describe: 'snapshot time to record (default: now)' })
        .option('parent', { type: 'string', describe: 'snapshot to compare against (default: latest of same host and paths)' })
        .option('force', { type: 'boolean', default: false, describe: 'read every file, ignoring the parent snapshot' })
        .option('ignore-inode', { type: 'boolean', default: false, describe: 'compare files with the parent snapshot without their inode number and ctime (file systems whose inode numbers change, such as some network mounts)' })
        .option('ignore-ctime', { type: 'boolean', default: false, describe: 'compare files with the parent snapshot without their ctime' })
        .option('stdin', { type: 'boolean', default: false, describe: 'back up standard input as one file' })
        .option('stdin-filename', { type: 'string', default: 'stdin', describe: 'file name for --stdin' })
        .option('dry-run', { alias: 'n', type: 'boolean', default: false, describe: 'show what would be stored, store nothing' })
        .option('skip-if-unchanged', { type: 'boolean', default: false, describe: 'save no snapshot when nothing changed since the parent snapshot' }),
    handle<BackupArgs>(async (ctx, a) => {
      const lists = [a.filesFrom, a.filesFromVerbatim, a.filesFromRaw].flatMap(asArray);
      if (a.stdin && a.paths.length + lists.length > 0) throw new UsageError('--stdin takes no paths');
      const paths = [...a.paths, ...listedPaths(a, (m) => ctx.out.warn(m))];
      const excludes = patternsOf(a.exclude, a.excludeFile, '--exclude-file');
      const iexcludes = patternsOf(a.iexclude, a.iexcludeFile, '--iexclude-file');
      const excludeIfPresent = [...asArray(a.excludeIfPresent), ...(a.excludeCaches ? [CACHEDIR_TAG] : [])];
      letYoungGenerationGrow();
      const repo = await ctx.repository();
      const out = ctx.out;
      const fresh = new FreshTrees();
      const res = await backup(repo, {
        paths,
        excludes,
        iexcludes,
        ...(a.excludeLargerThan !== undefined ? { excludeLargerThan: parseSize(a.excludeLargerThan, '--exclude-larger-than') } : {}),
        excludeIfPresent,
        oneFileSystem: a.oneFileSystem,
        tags: tagList(a.tag),
        ...(a.host ? { host: a.host } : {}),
        ...(a.time ? { time: parseTime(a.time, '--time') } : {}),
        parent: a.force ? null : a.parent,
        ...(a.stdin ? { stdin: { read: streamReader(process.stdin), filename: a.stdinFilename } } : {}),
        dryRun: a.dryRun,
        skipIfUnchanged: a.skipIfUnchanged,
        ignoreInode: a.ignoreInode,
        ignoreCtime: a.ignoreCtime,
        ...(ctx.args.cache !== false ? { dirCacheDir: repositoryCacheDir(repo.config.id, ctx.args.cacheDir) } : {}),
        signal: ctx.signal,
        onWarning: (m) => out.warn(m),
        onTree: (id, nodes) => fresh.add(id, nodes),
        onProgress: (p) => out.progress(`${p.files} files, ${formatBytes(p.bytes)} read, ${formatBytes(p.bytesAdded)} new${p.errors ? `, ${p.errors} errors` : ''}${p.current ? `  ${p.current}` : ''}`),
      });
      out.clearProgress();
      const s = res.snapshot.summary!;
      // A dry run's summary is its report, kept by --quiet; a skipped backup's is not.
      const say = (text: string) => (res.id || res.skipped ? out.info(text) : out.line(text));
      if (res.parent) say(`using parent snapshot ${shortId(res.parent)}`);
      say(`Files:       ${s.files_new} new, ${s.files_changed} changed, ${s.files_unchanged} unchanged`);
      say(`Dirs:        ${s.dirs_new} new, ${s.dirs_changed} changed, ${s.dirs_unchanged} unchanged`);
      say(`Added:       ${formatBytes(s.data_added)} (${formatBytes(s.data_added_packed)} stored)`);
      say(`Processed:   ${s.total_files_processed} files, ${formatBytes(s.total_bytes_processed)} in ${formatDuration(s.duration_ms)}`);
      say(res.id ? `snapshot ${shortId(res.id)} saved` : res.skipped ? `nothing changed since snapshot ${shortId(res.parent!)}: no snapshot saved (--skip-if-unchanged)` : 'dry run: nothing was stored');
      if (res.id) await catalogAfterBackup(ctx, { fresh, chain: res.snapshot });
      if (res.incomplete) out.warn(`${s.errors} files or directories could not be read: the snapshot is incomplete`);
      out.data({ message_type: 'summary', snapshot_id: res.id ?? null, parent: res.parent ?? null, dry_run: a.dryRun, skipped: res.skipped === true, incomplete: res.incomplete, ...s });
      return res.incomplete ? ExitCode.incomplete : ExitCode.ok;
    }),
  );
