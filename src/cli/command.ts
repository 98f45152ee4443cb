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
  /** The command may create a missing chroot (CommandSpec.createsChroot). */
  createsChroot: boolean;
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
  /**
   * Only commands that start a tree (app create, acl init, agent) create a missing chroot; any
   * other finds a mistyped one missing and says so (src/cli/session.ts connectZk).
   */
  createsChroot?: true;
  run(args: string[], ctx: CommandContext): Promise<number>;
}
