import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { randomBytes } from 'node:crypto';
import { CryptoPool } from '../../src/repository/crypto-pool.js';
import { blobId } from '../../src/crypto/hash.js';

/** The nice value in a /proc stat file (Linux): field 19, after the command name in parentheses. */
function niceOf(statFile: string): number {
  const stat = readFileSync(statFile, 'latin1');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

/** The nice value of each thread of this process. */
function threadNices(): number[] {
  return readdirSync('/proc/self/task').map((t) => niceOf(`/proc/self/task/${t}/stat`));
}

describe('CryptoPool', () => {
  // The main thread walks and feeds the workers: when they contend for the cores, it goes first
  // (measured: a first backup of 1 GiB on 2 cores took 0.94-0.95x the time).
  it.skipIf(!existsSync('/proc/thread-self'))('runs its workers 5 nice levels below the thread that made it', async () => {
    const base = niceOf('/proc/self/stat');
    const lowered = Math.min(19, base + 5); // 19 is the lowest priority
    const before = threadNices().filter((n) => n === lowered).length;
    const idKey = randomBytes(32);
    const pool = new CryptoPool(randomBytes(32), idKey, 3);
    try {
      const data = randomBytes(1000);
      const expected = blobId(idKey, data);
      // One seal per worker at once: each is running once its result is back.
      const results = await Promise.all(Array.from({ length: availableParallelism() * 2 }, () => pool.seal(Buffer.from(data), true)));
      for (const r of results) expect(r.id).toBe(expected);
      expect(threadNices().filter((n) => n === lowered).length - before).toBe(availableParallelism());
    } finally {
      await pool.close();
    }
  });
});
