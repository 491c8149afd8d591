#!/usr/bin/env node
// The snap command. V8's settings come first and the program is loaded after them: loading its
// modules alone grows a young generation that a flag set later no longer shrinks.
import './v8-flags.js';

await import('./program.js');
