import type { CommandContext } from "./command.ts";

/**
 * For long-running commands that finish their work on a stop (events flushes its deliveries,
 * dashboard closes its connections): aborted by SIGTERM or SIGINT (or the context's signal),
 * instead of the process dying mid-write. A second signal exits at once with `exitCode`.
 * dispose() removes the handlers again.
 */
export function stopSignal(ctx: CommandContext, exitCode: number): { signal: AbortSignal; dispose: () => void } {
  const stop = new AbortController();
  const onSignal = (): void => {
    if (stop.signal.aborted) process.exit(exitCode);
    stop.abort();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  return {
    signal: AbortSignal.any([ctx.signal, stop.signal]),
    dispose: () => {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
    },
  };
}
