import { cac, type CAC } from "cac";
import { UsageError } from "../config/errors.ts";
import { printable, quote } from "../text/printable.ts";
import type { CommandContext, CommandSpec, Env } from "./command.ts";
import { EXIT_CODES_HELP, ExitCode } from "./exit-codes.ts";
import { GLOBAL_OPTION_SPECS } from "./global-options.ts";
import type { Io } from "./io.ts";
import { RawOptions } from "./raw-options.ts";
import { unknownOptionAsTyped } from "./unknown-option.ts";

export interface GroupInput {
  /** What help shows as the program, e.g. "conveyor app". */
  program: string;
  commands: CommandSpec[];
  /** argv after the group word (for the top level: everything). */
  argv: string[];
  env: Env;
  io: Io;
  signal: AbortSignal;
}

/**
 * Parses argv against one level of commands with cac and runs the match. cac matches only
 * one-word commands and exits 0 silently on anything else, so unknown words are caught here:
 * they print help to stderr and exit 2.
 */
export async function runCommandGroup(input: GroupInput): Promise<number> {
  const cli = buildCli(input.program, input.commands);
  let run: (() => Promise<number>) | undefined;
  for (const spec of input.commands) {
    const command = cli.commands.find((c) => c.rawName === spec.usage);
    command?.action((...actionArgs: unknown[]) => {
      const args = actionArgs.filter((a): a is string => typeof a === "string");
      run = () => spec.run(args, context(input, cli, spec));
    });
  }
  try {
    cli.parse(["conveyor", input.program, ...joinNegativeValues(input.argv, input.commands)], { run: false });
  } catch (error) {
    return usage(input.io, cli, error, input.argv);
  }
  if (cli.options.help === true) {
    input.io.out(helpText(cli));
    return ExitCode.ok;
  }
  if (!cli.matchedCommand) {
    const word = cli.args[0];
    input.io.err(word === undefined ? `${input.program}: missing command` : `${input.program}: unknown command ${quote(word)}`);
    input.io.err(helpText(cli));
    return ExitCode.usage;
  }
  try {
    cli.runMatchedCommand();
  } catch (error) {
    return usage(input.io, cli, error, input.argv);
  }
  if (!run) return ExitCode.usage;
  return run();
}

/**
 * `--max-failures -1` would reach cac as an unknown option "-1"; written as `--max-failures=-1`
 * the value gets to our validation, which names the flag and the value.
 */
function joinNegativeValues(argv: string[], commands: CommandSpec[]): string[] {
  const valued = new Set(
    [...GLOBAL_OPTION_SPECS, ...commands.flatMap((c) => c.options ?? [])]
      .filter((o) => o.flag.includes("<"))
      .map((o) => o.flag.split(" ")[0]),
  );
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] ?? "";
    // cac silently drops these (prototype-pollution guard) instead of calling them unknown.
    if (/^--?(__proto__|constructor|prototype)(=|$)/.test(token)) throw new UsageError(`unknown option ${quote(token.split("=")[0])}`);
    const next = argv[i + 1];
    if (valued.has(token) && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`${token}=${next}`);
      i++;
    } else out.push(token);
  }
  return out;
}

function buildCli(program: string, commands: CommandSpec[]): CAC {
  const cli = cac(program);
  for (const option of GLOBAL_OPTION_SPECS) cli.option(option.flag, option.description);
  for (const spec of commands) {
    const command = cli.command(spec.usage, spec.description);
    for (const option of spec.options ?? []) command.option(option.flag, option.description);
    for (const example of spec.examples ?? []) command.example(example);
  }
  cli.help((sections) => {
    const description = cli.matchedCommand?.description;
    const head = sections.slice(0, 1);
    const rest = sections.slice(1);
    // `--version` is answered before any parsing (src/cli/run.ts); listed on the top level only.
    const version =
      program === "conveyor" && !cli.matchedCommand
        ? [{ title: "Version", body: "  conveyor --version (or -v, version)  prints the version and git commit" }]
        : [];
    return [...head, ...(description ? [{ body: description }] : []), ...rest, ...version, { title: "Exit codes", body: EXIT_CODES_HELP }];
  });
  // We print help ourselves (to stdout or stderr, with the right exit code).
  cli.showHelpOnExit = false;
  return cli;
}

function context(input: GroupInput, cli: CAC, spec: CommandSpec): CommandContext {
  return {
    argv: input.argv,
    env: input.env,
    io: input.io,
    options: new RawOptions(input.argv, cli.options),
    signal: input.signal,
    createsChroot: spec.createsChroot === true,
  };
}

/** cac's complaint as one line (it may quote what was typed, control characters and all); an
 *  unknown option is named as typed in `argv`. */
function usage(io: Io, cli: CAC, error: unknown, argv: readonly string[]): number {
  const text = error instanceof Error ? error.message : String(error);
  const typed = unknownOptionAsTyped(text, argv);
  const message = typed === undefined ? printable(text.replaceAll("`", '"')) : `unknown option ${quote(typed)}`;
  const hint = cli.matchedCommand ? ` ${cli.matchedCommand.name}` : "";
  io.err(`error: ${message} (see "${cli.name}${hint} --help")`);
  return ExitCode.usage;
}

/** cac prints help with console.info; capture it so we choose stdout or stderr. */
export function helpText(cli: CAC): string {
  const lines: string[] = [];
  const original = console.info;
  console.info = (...parts: unknown[]) => void lines.push(parts.map(String).join(" "));
  try {
    cli.outputHelp();
  } finally {
    console.info = original;
  }
  return lines.join("\n");
}
