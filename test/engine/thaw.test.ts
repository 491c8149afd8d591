// How a waiting restore polls thawing packs (Thawer.awaitPacks), against a backend whose packs
// thaw one per poll, as thousands of Deep Archive packs finish one by one over hours.
import { afterAll, describe, expect, it } from 'vitest';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ColdState, Handle } from '../../src/backend/backend.js';
import { MemoryBackend } from '../../src/backend/memory.js';
import { DEFAULT_PRICES } from '../../src/engine/prices.js';
import type { PackNeed } from '../../src/engine/restorer.js';
import { Thawer, ThawState } from '../../src/engine/thaw.js';
import { tempDir } from './helpers.js';

/** Pack k of `order` is readable from its (k+1)th HEAD on: one more pack per poll. */
class OnePerPoll extends MemoryBackend {
  readonly heads = new Map<string, number>();

  constructor(private readonly order: string[]) {
    super('thawing');
  }

  async coldState(h: Handle): Promise<ColdState> {
    const n = (this.heads.get(h.name) ?? 0) + 1;
    this.heads.set(h.name, n);
    return { storageClass: 'DEEP_ARCHIVE', archived: true, restore: n > this.order.indexOf(h.name) ? 'done' : 'ongoing' };
  }

  async requestThaw(): Promise<void> {
    throw new Error('every pack is thawing already: nothing to request');
  }
}

describe('waiting for thaws', () => {
  let dir: string | undefined;

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the pause between polls keeps growing while packs become readable one by one', async () => {
    dir = await tempDir();
    const packs: PackNeed[] = Array.from({ length: 7 }, (_, i) => ({ id: `pack-${i}`, type: 'data', size: 1 << 20 }));
    const backend = new OnePerPoll(packs.map((p) => p.id));
    const pauses: number[] = [];
    const thawer = new Thawer(backend, {
      tier: 'Standard',
      days: 1,
      prices: DEFAULT_PRICES,
      state: await ThawState.load(join(dir, 'thaw.json'), 'repo'),
      firstPollMs: 1,
      maxPollMs: 16,
      // A clock that stands still: each progress report's next check is the pause itself.
      now: () => 0,
      onProgress: (p) => pauses.push(p.nextCheck.getTime()),
    });
    let pending = packs;
    const readyInTurn: string[][] = [];
    while (pending.length > 0) {
      const ready = await thawer.awaitPacks(pending);
      readyInTurn.push([...ready]);
      pending = pending.filter((p) => !ready.has(p.id));
    }
    expect(readyInTurn).toEqual(packs.map((p) => [p.id]));
    // Doubling up to the maximum: going back to the first pause whenever a pack became readable
    // polled every pending pack that often for as long as thaws kept finishing.
    expect(pauses).toEqual([1, 2, 4, 8, 16, 16, 16]);
    // Each poll asked once about each pack still pending.
    expect([...backend.heads.values()]).toEqual(packs.map((_, k) => k + 1));
  });
});
