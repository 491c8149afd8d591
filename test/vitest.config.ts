// The test run's settings (npm test passes this file): see setup/cache-home.ts.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    globalSetup: ['test/setup/cache-home.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
