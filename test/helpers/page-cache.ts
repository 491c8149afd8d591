// How much of a file the kernel holds in its page cache, from util-linux's fincore (mincore(2)).
import { execFileSync } from 'node:child_process';
import { statfsSync } from 'node:fs';

const TMPFS_MAGIC = 0x01021994;

/**
 * Why page-cache residency cannot be observed in `dir`, or undefined when it can: fincore is
 * missing, or the file system keeps every page in memory (tmpfs).
 */
export function residencyUnobservable(dir: string): string | undefined {
  try {
    execFileSync('fincore', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'fincore (util-linux) is not installed';
  }
  if (statfsSync(dir).type === TMPFS_MAGIC) return `${dir} is on tmpfs, whose pages cannot be dropped`;
  return undefined;
}

/** Bytes of `file` resident in the page cache. */
export function residentBytes(file: string): number {
  const out = execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', file], { encoding: 'utf8' });
  return Number(out.trim());
}
