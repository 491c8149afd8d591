import { describe, expect, it } from 'vitest';

import { MemoryBackend } from '../../src/backend/memory.js';
import { hasStorageClasses, isColdStorage } from '../../src/backend/backend.js';
import { runBackendSuite } from '../backend-suite/suite.js';

runBackendSuite('memory', async () => ({ backend: new MemoryBackend('suite'), cleanup: async () => {} }));

describe('MemoryBackend', () => {
  it('has no storage classes and no cold storage', () => {
    const b = new MemoryBackend();
    expect(isColdStorage(b)).toBe(false);
    expect(hasStorageClasses(b)).toBe(false);
    expect(b.location).toBe('memory:');
  });

  it('keeps separate instances separate', async () => {
    const a = new MemoryBackend();
    const b = new MemoryBackend();
    const h = { type: 'key', name: 'ab'.repeat(32) } as const;
    await a.save(h, Buffer.from('k'));
    await expect(b.stat(h)).rejects.toThrow(/not found/);
    expect((await a.stat(h)).size).toBe(1);
  });
});
