import type { Io } from "./io.ts";
import type { RawOptions } from "./raw-options.ts";

export type Env = Record<string, string | undefined>;

export interface CommandContext {
  argv: readonly string[];
  env: Env;
  io: Io;
  options: RawOptions;
  /** Aborted on SIGINT/SIGTERM; long-running commands stop cleanly. */
  signal: AbortSignal;
}

export interface OptionSpec {
  /** cac syntax, e.g. "--slots <n>" or "--wait". */
  flag: string;
  description: string;
}

/** One subcommand: how cac shows it, and what it does (returns the exit code). */
export interface CommandSpec {
  /** cac syntax, e.g. "create <app> <version>". */
  usage: string;
  description: string;
  options?: OptionSpec[];
  examples?: string[];
  run(args: string[], ctx: CommandContext): Promise<number>;
}
