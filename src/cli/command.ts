// Glue between yargs and command handlers: a handler gets a Context and its parsed arguments and
// returns an exit code; errors are reported and mapped in one place (exit.ts).
import type { Argv } from 'yargs';
import { Context, type GlobalArgs } from './context.js';
import { InterruptedError, SnapError } from '../errors.js';
import { describeError } from './exit.js';

export type Handler<A> = (ctx: Context, args: A & GlobalArgs) => Promise<number>;

/** The exit code of the command that ran; main.ts passes it to process.exit. */
export const outcome = { exitCode: 0 };

export const interrupt = new AbortController();

// yargs infers argument types from builders; handlers declare the interface they rely on instead.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyArgs = any;

export function handle<A>(fn: Handler<A>): (argv: AnyArgs) => Promise<void> {
  return async (argv: A & GlobalArgs): Promise<void> => {
    const ctx = new Context(argv, interrupt.signal);
    try {
      outcome.exitCode = await fn(ctx, argv);
    } catch (e) {
      // After Ctrl-C, an operation that stopped with the signal's own AbortError (or failed
      // because of it) is an interruption, not a bug in snap: exit 130 whatever threw.
      const r = describeError(interrupt.signal.aborted && !(e instanceof SnapError) ? new InterruptedError() : e);
      ctx.out.error(r.message, r.hint, r.code);
      outcome.exitCode = r.exitCode;
    } finally {
      await ctx.close().catch(() => undefined);
    }
  };
}

export type Register = (y: Argv<AnyArgs>) => Argv<AnyArgs>;
