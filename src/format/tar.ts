// A writer of POSIX.1-2001 (pax) tar archives, entry by entry, for `snap dump` of a directory:
// a ustar header per entry, preceded by a pax extended header ('x') for what ustar cannot hold
// (long or non-ASCII names, nanosecond times, large sizes and IDs, xattrs). Checked with GNU tar
// and Python's tarfile.
import type { TreeNode } from '../model/tree.js';

const BLOCK = 512;

export type TarType = 'file' | 'hardlink' | 'symlink' | 'chardev' | 'blockdev' | 'dir' | 'fifo';

const TYPEFLAG: Record<TarType, string> = { file: '0', hardlink: '1', symlink: '2', chardev: '3', blockdev: '4', dir: '5', fifo: '6' };

/** An entry: a snapshot node's metadata, with the tar type and what tar stores besides. */
export interface TarEntry extends Pick<TreeNode, 'mode' | 'uid' | 'gid' | 'user' | 'group' | 'mtimeNs' | 'xattrs'> {
  /** Relative path (raw bytes, no leading "/"); a directory's without a trailing one. */
  path: Buffer;
  type: TarType;
  /** Bytes of data that follow (files only). */
  size: number;
  /** A symlink's target, or the path of the entry a hard link links to. */
  link?: Buffer;
  devMajor?: number;
  devMinor?: number;
}

/** The two zero blocks that end an archive. */
export const TAR_END = Buffer.alloc(2 * BLOCK);

/** Zero bytes from the end of `size` bytes of data to the next block. */
export function tarPadding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

const isAscii = (b: Buffer) => b.every((c) => c > 0 && c < 0x80);

/** One pax record, "LEN KEY=VALUE\n", LEN counting the whole record with its own digits. */
function record(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

/** Seconds and nanoseconds as a pax decimal time ("-1.5" is half a second before "-1"). */
function paxTime(ns: bigint): string {
  const sign = ns < 0n ? '-' : '';
  const abs = ns < 0n ? -ns : ns;
  const frac = (abs % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${sign}${abs / 1_000_000_000n}${frac ? '.' + frac : ''}`;
}

/** `value` as octal digits and a NUL in `width` bytes at `at`; false when it does not fit. */
function octal(h: Buffer, at: number, width: number, value: number): boolean {
  const s = value.toString(8);
  if (value < 0 || s.length > width - 1) {
    h.write('0'.repeat(width - 1), at, 'ascii');
    return false;
  }
  h.write(s.padStart(width - 1, '0'), at, 'ascii');
  return true;
}

function ustar(name: Buffer, type: string, e: Omit<TarEntry, 'path' | 'type'>, link: Buffer | undefined, size: number, fits: (key: string) => void): Buffer {
  const h = Buffer.alloc(BLOCK);
  name.copy(h, 0, 0, Math.min(name.length, 100));
  octal(h, 100, 8, e.mode & 0o7777);
  if (!octal(h, 108, 8, e.uid)) fits('uid');
  if (!octal(h, 116, 8, e.gid)) fits('gid');
  if (!octal(h, 124, 12, size)) fits('size');
  const seconds = e.mtimeNs / 1_000_000_000n;
  octal(h, 136, 12, seconds < 0n ? 0 : Number(seconds));
  h.write(type, 156, 'ascii');
  if (link) link.copy(h, 157, 0, Math.min(link.length, 100));
  h.write('ustar\u000000', 257, 'latin1');
  for (const [at, owner] of [[265, e.user], [297, e.group]] as const) {
    const b = Buffer.from(owner ?? '');
    if (b.length <= 32 && isAscii(b)) b.copy(h, at);
  }
  if (e.devMajor !== undefined) octal(h, 329, 8, e.devMajor);
  if (e.devMinor !== undefined) octal(h, 337, 8, e.devMinor);
  // The checksum is summed with its own field as spaces.
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of h) sum += c;
  h.write(sum.toString(8).padStart(6, '0') + '\u0000 ', 148, 'latin1');
  return h;
}

/** The header blocks of an entry; its data (files: `size` bytes) and tarPadding(size) follow. */
export function tarHeader(e: TarEntry): Buffer {
  const records: Buffer[] = [];
  const name = e.type === 'dir' ? Buffer.concat([e.path, Buffer.from('/')]) : e.path;
  // Names that are not UTF-8 go in as their bytes, without pax's hdrcharset=BINARY: GNU tar
  // warns about that keyword and reads the bytes as they are anyway.
  if (name.length > 100 || !isAscii(name)) records.push(record('path', name));
  if (e.link && (e.link.length > 100 || !isAscii(e.link))) records.push(record('linkpath', e.link));
  if (e.mtimeNs % 1_000_000_000n !== 0n || e.mtimeNs < 0n) records.push(record('mtime', Buffer.from(paxTime(e.mtimeNs))));
  for (const [key, owner] of [['uname', e.user], ['gname', e.group]] as const) {
    const b = Buffer.from(owner ?? '');
    if (b.length > 32 || !isAscii(b)) records.push(record(key, b));
  }
  for (const x of e.xattrs ?? []) records.push(record(`SCHILY.xattr.${x.name}`, x.value));
  const size = e.type === 'file' ? e.size : 0;
  const header = ustar(name, TYPEFLAG[e.type], e, e.link, size, (key) => {
    records.push(record(key, Buffer.from(String(key === 'size' ? size : key === 'uid' ? e.uid : e.gid))));
  });
  if (records.length === 0) return header;
  const data = Buffer.concat(records);
  const xName = Buffer.concat([Buffer.from('PaxHeaders/'), name.subarray(Math.max(0, name.length - 89))]);
  const x = ustar(xName, 'x', { mode: 0o644, uid: 0, gid: 0, mtimeNs: 0n, size: 0 }, undefined, data.length, () => undefined);
  return Buffer.concat([x, data, tarPadding(data.length), header]);
}
