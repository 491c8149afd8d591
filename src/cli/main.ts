#!/usr/bin/env node
// The snap command. V8's settings come first and the program is loaded after them: loading its
// modules alone grows a young generation that a flag set later no longer shrinks. The key
// derivation starts before the program loads, so that the two overlap (key-prefetch.ts).
import './v8-flags.js';
import { prefetchKey } from './key-prefetch.js';

prefetchKey(process.argv.slice(2));
await import('./program.js');
