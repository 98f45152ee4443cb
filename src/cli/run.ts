import { UsageError } from "../config/errors.ts";
import { quote } from "../text/printable.ts";
import { COMMIT, VERSION } from "../version.ts";
import type { CommandSpec, Env } from "./command.ts";
import { runCommandGroup } from "./command-group.ts";
import { appCreate } from "./commands/app-create.ts";
import { appDelete, appList, appSetSlots, appShow } from "./commands/app-manage.ts";
import { appHistory, appPause, appPromote, appResume, appRetry, appRollback, appWait } from "./commands/app-rollout.ts";
import { status } from "./commands/status.ts";
import { agent } from "./commands/agent.ts";
import { aclInit, aclShow } from "./commands/acl.ts";
import { keygen } from "./commands/keygen.ts";
import { hostForget, hostList, hostShow } from "./commands/host.ts";
import { events } from "./commands/events.ts";
import { dashboard } from "./commands/dashboard.ts";
import { ExitCode, describeFailure } from "./exit-codes.ts";
import { globalOptionTakesValue } from "./global-options.ts";
import { type Io, processIo } from "./io.ts";

const APP_COMMANDS: CommandSpec[] = [
  appCreate,
  appSetSlots,
  appShow,
  appList,
  appDelete,
  appWait,
  appPause,
  appResume,
  appRetry,
  appPromote,
  appRollback,
  appHistory,
];

/** Top-level words; a group word ("app") hands the rest of argv to its own command set. */
const GROUPS: Record<string, CommandSpec[]> = { app: APP_COMMANDS, host: [hostList, hostShow, hostForget], acl: [aclInit, aclShow] };
const TOP_COMMANDS: CommandSpec[] = [
  agent,
  status,
  events,
  dashboard,
  keygen,
  ...Object.keys(GROUPS).map(
    (word): CommandSpec => ({
      usage: `${word} <command>`,
      description: `${word} commands: ${(GROUPS[word] ?? []).map((c) => c.usage.split(" ")[0]).join(", ")} (see "conveyor ${word} --help")`,
      run: async () => ExitCode.usage,
    }),
  ),
];

export interface RunOptions {
  io?: Io;
  env?: Env;
  signal?: AbortSignal;
}

/** The whole CLI: argv in, exit code out. Nothing below this prints a stack trace. */
export async function run(argv: string[], options: RunOptions = {}): Promise<number> {
  const io = options.io ?? processIo;
  const env = options.env ?? process.env;
  const signal = options.signal ?? new AbortController().signal;
  try {
    if (argv[0] === "--version" || argv[0] === "-v" || argv[0] === "version") {
      io.out(`conveyor ${VERSION} (${COMMIT})`);
      return ExitCode.ok;
    }
    const index = commandWordIndex(argv);
    const word = index === -1 ? undefined : argv[index];
    const group = word !== undefined && Object.hasOwn(GROUPS, word) ? GROUPS[word] : undefined;
    if (group && word !== undefined) {
      const rest = [...argv.slice(0, index), ...argv.slice(index + 1)];
      return await runCommandGroup({ program: `conveyor ${word}`, commands: group, argv: rest, env, io, signal });
    }
    return await runCommandGroup({ program: "conveyor", commands: TOP_COMMANDS, argv, env, io, signal });
  } catch (error) {
    const { code, message } = describeFailure(error);
    io.err(`error: ${message}`);
    if (env.CONVEYOR_DEBUG === "1" && error instanceof Error && error.stack) io.err(error.stack);
    return code;
  }
}

/**
 * Index of the first word that is not an option or a global option's value. An unknown option
 * before the command is refused here: cac would take the command word as its value.
 */
function commandWordIndex(argv: string[]): number {
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] ?? "";
    if (token === "--") return -1;
    if (!token.startsWith("-")) return i;
    const takesValue = globalOptionTakesValue(token);
    if (takesValue === undefined) {
      throw new UsageError(`unknown option ${quote(token.split("=")[0])} before the command (see "conveyor --help")`);
    }
    if (takesValue) i++;
  }
  return -1;
}
