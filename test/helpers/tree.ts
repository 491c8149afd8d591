// Generated test trees and an independent walk that describes a tree (contents and metadata) for
// comparing a restore with its source. The walk uses only node:fs, none of snap's code.
import { xorshift32 } from '../../bench/prng.js';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { lstatSync, readdirSync, readFileSync, readlinkSync, type BigIntStats } from 'node:fs';

export interface Entry {
  type: string;
  mode: number;
  mtimeNs?: string;
  size?: number;
  sha256?: string;
  target?: string;
  /** Index of the first path sharing this inode (hard links), else undefined. */
  linkGroup?: string;
  uid: number;
  gid: number;
}

function typeOf(st: BigIntStats): string {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  return 'other';
}

/**
 * Describes every entry under `root` keyed by its relative path (names as hex when not UTF-8).
 * Directory mtimes are compared too; atime is not (snap does not store it).
 */
export function describeTree(root: Buffer | string): Map<string, Entry> {
  const out = new Map<string, Entry>();
  const inodes = new Map<string, string>();
  const walk = (dir: Buffer, rel: string) => {
    for (const name of readdirSync(dir, { encoding: 'buffer' }).sort(Buffer.compare)) {
      const p = Buffer.concat([dir, Buffer.from('/'), name]);
      const text = name.toString('utf8');
      const key = rel + '/' + (Buffer.from(text).equals(name) ? text : `hex:${name.toString('hex')}`);
      const st = lstatSync(p, { bigint: true });
      const e: Entry = { type: typeOf(st), mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid) };
      if (!st.isSymbolicLink()) e.mtimeNs = st.mtimeNs.toString();
      if (st.isFile()) {
        e.size = Number(st.size);
        e.sha256 = createHash('sha256').update(readFileSync(p)).digest('hex');
        if (st.nlink > 1n) {
          const ino = `${st.dev}:${st.ino}`;
          e.linkGroup = inodes.get(ino) ?? key;
          if (!inodes.has(ino)) inodes.set(ino, key);
        }
      }
      if (st.isSymbolicLink()) e.target = readlinkSync(p, { encoding: 'buffer' }).toString('hex');
      out.set(key, e);
      if (st.isDirectory()) walk(p, key);
    }
  };
  walk(Buffer.isBuffer(root) ? root : Buffer.from(root), '');
  return out;
}

/** Deterministic pseudo-random values and bytes, so sizes and contents are reproducible. */
export const prng = xorshift32;

/** Fast incompressible data for big files. */
export function randomData(n: number): Buffer {
  return randomBytes(n);
}

export function mkfifoCmd(path: string): void {
  execFileSync('mkfifo', [path]);
}
