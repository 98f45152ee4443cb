import * as v from "valibot";
import { firstIssue } from "./decode.ts";
import { UsageError } from "./errors.ts";
import { printable, quote } from "../text/printable.ts";
import { readSmallFile } from "./small-file.ts";
import { AppName, GroupName, HostId, NAME_PATTERN } from "./names.ts";
import { oneOf } from "./rules.ts";
import { type AppAttributes, parseAppTable } from "./app-attributes.ts";

export const DEFAULT_CONFIG_PATH = "/etc/conveyor/conveyor.toml";
export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;
export const LOG_FORMATS = ["text", "json"] as const;

const strict = <E extends v.ObjectEntries>(entries: E) =>
  v.strictObject(entries, (issue) => (issue.expected === "never" ? "unknown key" : "must be a table"));

// Every rule in words (src/config/rules.ts): valibot's own "Invalid type: Expected string but
// received 5" must not reach an operator.
const TEXT = v.string("must be a string (in quotes)");
const LIST = 'must be a list, like ["a", "b"]';
const FILE_PATH = v.pipe(TEXT, v.minLength(1, "must be a path"));

const AllowPattern = v.pipe(
  TEXT,
  v.maxLength(1_024, "must be at most 1024 characters"),
  v.check((s) => {
    try {
      new RegExp(s);
      return true;
    } catch {
      return false;
    }
  }, "not a valid regular expression"),
);

/** The TOML config file. Unknown keys are an error, so a typo never silently does nothing. */
export const ConfigFile = strict({
  zk: v.optional(TEXT),
  auth: v.optional(TEXT),
  authFile: v.optional(TEXT),
  connectTimeout: v.optional(TEXT),
  logLevel: v.optional(oneOf(LOG_LEVELS)),
  /** The private key `app create`, `rollback` and `retry` sign releases with (signing-keys.ts). */
  signKey: v.optional(FILE_PATH),
  /** TLS to ZooKeeper (see tls-settings.ts); a file given turns it on. */
  tls: v.optional(
    strict({
      enabled: v.optional(v.boolean("must be true or false")),
      ca: v.optional(FILE_PATH),
      cert: v.optional(FILE_PATH),
      key: v.optional(FILE_PATH),
    }),
  ),
  /** Per-app defaults of `app create`: `[apps.defaults]` and `[apps.<name>]` (checked by appDefaults). */
  apps: v.optional(v.record(v.string(), v.record(v.string(), v.unknown(), "must be a table"), "must be a table")),
  agent: v.optional(
    strict({
      hostId: v.optional(HostId),
      groups: v.optional(v.array(GroupName, LIST)),
      sessionTimeout: v.optional(TEXT),
      logFormat: v.optional(oneOf(LOG_FORMATS)),
      stateDir: v.optional(FILE_PATH),
      apps: v.optional(v.array(AppName, LIST)),
      allowCommands: v.optional(v.array(AllowPattern, LIST)),
      /** Where to serve Prometheus metrics (HOST:PORT); unset: not served. */
      metricsListen: v.optional(v.pipe(TEXT, v.minLength(1, "must be HOST:PORT"))),
      /** Public keys (PEM files) of release signers; set: run only releases signed by one. */
      trustedKeys: v.optional(v.pipe(v.array(FILE_PATH, LIST), v.maxLength(64, "at most 64 keys"))),
    }),
  ),
});
export type ConfigFile = v.InferOutput<typeof ConfigFile>;

/**
 * Reads the config file: the explicit path (must exist), else DEFAULT_CONFIG_PATH when present,
 * else an empty config. Any problem is a UsageError naming the file and the bad key.
 */
export async function loadConfigFile(explicitPath: string | undefined): Promise<{ path?: string; config: ConfigFile }> {
  const path = explicitPath ?? DEFAULT_CONFIG_PATH;
  const shown = quote(path).slice(1, -1);
  // The default path may be missing; anything else there (a directory, …) is still an error.
  const text = await readSmallFile(path, "config file", { optional: explicitPath === undefined });
  if (text === undefined) return { config: {} };
  let parsed: unknown;
  try {
    parsed = Bun.TOML.parse(text);
  } catch (error) {
    throw new UsageError(`config file ${shown} is not valid TOML: ${describe(error)}`);
  }
  const result = v.safeParse(ConfigFile, parsed);
  if (!result.success) throw new UsageError(`config file ${shown}: ${firstIssue(result.issues)}`);
  try {
    appDefaults(result.output, "-");
  } catch (error) {
    if (error instanceof UsageError) throw new UsageError(`config file ${shown}: ${error.message}`);
    throw error;
  }
  return { path, config: result.output };
}

/** The table of per-app defaults every app gets. */
export const APP_DEFAULTS_TABLE = "defaults";

/**
 * What the config file sets for `app create <app>`: `[apps.defaults]`, then `[apps.<app>]`
 * over it; each table's attributes apart, so a dry run can say where a value came from.
 * Called on every load with no app, so a bad key or value in any table fails every command,
 * as the rest of the file does. An app named "defaults" gets `[apps.defaults]` only.
 */
export function appDefaults(config: ConfigFile, app: string): { table: string; attributes: AppAttributes }[] {
  const layers: { table: string; attributes: AppAttributes }[] = [];
  for (const [name, values] of Object.entries(config.apps ?? {})) {
    const table = `[apps.${name}]`;
    if (name !== APP_DEFAULTS_TABLE && !NAME_PATTERN.test(name)) {
      throw new UsageError(`${quote(table)}: not a valid app name (letters, digits, ".", "_", "-")`);
    }
    const attributes = parseAppTable(values, table);
    if (name === APP_DEFAULTS_TABLE) layers.unshift({ table, attributes });
    else if (name === app) layers.push({ table, attributes });
  }
  return layers;
}

function describe(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return printable(text.split("\n")[0] ?? text);
}
