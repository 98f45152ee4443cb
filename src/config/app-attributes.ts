import { MAX_DEPLOY_TIMEOUT_SEC, MAX_GATE_MS, MIN_HEALTH_INTERVAL_MS } from "./app-spec.ts";
import { BUDGET_RULE, type FailureBudget, parseFailureBudget } from "./budget.ts";
import { UsageError } from "./errors.ts";
import { parseCommand, parseCount, parseDurationInput, parseGroups, parseSlotsInput } from "./parse-input.ts";
import type { Slots } from "./slots.ts";
import { quote } from "../text/printable.ts";

/**
 * Attributes `app create` may set; anything undefined keeps its current value, null removes an
 * optional one (`--verify-cmd ""`, `--health-cmd ""`, …).
 */
export interface AppAttributes {
  slots?: Slots;
  getVersionCmd?: string;
  deployCmd?: string;
  verifyCmd?: string | null;
  healthCmd?: string | null;
  healthIntervalMs?: number;
  healthTimeoutMs?: number;
  minHealthyMs?: number;
  drainCmd?: string | null;
  undrainCmd?: string | null;
  slotIncrement?: number;
  maxSlots?: Slots | null;
  groups?: string[];
  maxFailures?: FailureBudget;
  deployTimeoutSec?: number;
}

/**
 * One app attribute as `app create` takes it: the flag (cac syntax), its help, and how its text
 * becomes the attribute (a UsageError naming the flag and the value otherwise). The one list
 * the flags, their help, their parsing and the config file's `[apps.*]` keys come from.
 */
interface AttributeOption<K extends keyof AppAttributes> {
  /** cac syntax, e.g. "--slots <n>". */
  flag: string;
  description: string;
  key: K;
  parse: (text: string, flag: string) => AppAttributes[K];
}

const attribute = <K extends keyof AppAttributes>(option: AttributeOption<K>): AttributeOption<K> => option;

/** A command flag where "" removes the command. */
const clearableCommand = (text: string, flag: string): string | null => (text === "" ? null : parseCommand(text, flag));
const durationMs = (min: number, max: number) => (text: string, flag: string) => parseDurationInput(text, flag, min, max);

export const APP_ATTRIBUTE_OPTIONS = [
  attribute({
    flag: "--slots <n>",
    key: "slots",
    description: "How many hosts may deploy at once: a number or N% of the app's hosts (default 1)",
    parse: (text, flag) => parseSlotsInput(text, flag),
  }),
  attribute({
    flag: "--get-version-cmd <cmd>",
    key: "getVersionCmd",
    description: "Prints the version a host runs, nothing if not installed (required on create)",
    parse: (text, flag) => parseCommand(text, flag),
  }),
  attribute({
    flag: "--deploy-cmd <cmd>",
    key: "deployCmd",
    description: "Deploys %(version)s on a host (required on create)",
    parse: (text, flag) => parseCommand(text, flag),
  }),
  attribute({
    flag: "--verify-cmd <cmd>",
    key: "verifyCmd",
    description: 'Extra check after a deploy; non-zero exit fails the host ("" = none)',
    parse: clearableCommand,
  }),
  attribute({
    flag: "--health-cmd <cmd>",
    key: "healthCmd",
    description: 'Health gate after the deploy: run every --health-interval until it exits 0 ("" = none)',
    parse: clearableCommand,
  }),
  attribute({
    flag: "--health-interval <duration>",
    key: "healthIntervalMs",
    description: "Between health checks (default 1s)",
    parse: durationMs(MIN_HEALTH_INTERVAL_MS, MAX_GATE_MS),
  }),
  attribute({
    flag: "--health-timeout <duration>",
    key: "healthTimeoutMs",
    description: "A host not healthy this long after its deploy fails (default 5m)",
    parse: durationMs(1_000, MAX_GATE_MS),
  }),
  attribute({
    flag: "--min-healthy-time <duration>",
    key: "minHealthyMs",
    description: "Every check must pass this long before the host counts as current: the bake time (default 0s)",
    parse: durationMs(0, MAX_GATE_MS),
  }),
  attribute({
    flag: "--drain-cmd <cmd>",
    key: "drainCmd",
    description: 'Runs once admitted, before deploy-cmd, e.g. leave the load balancer ("" = none)',
    parse: clearableCommand,
  }),
  attribute({
    flag: "--undrain-cmd <cmd>",
    key: "undrainCmd",
    description: 'Runs once healthy, before the slot is released, e.g. rejoin the load balancer ("" = none)',
    parse: clearableCommand,
  }),
  attribute({
    flag: "--slot-increment <k>",
    key: "slotIncrement",
    description: "Ramp: each host done adds K-1 slots (default 1: constant; 0: only --slots hosts, then wait for promote)",
    parse: (text, flag) => parseCount(text, flag, 10_000),
  }),
  attribute({
    flag: "--max-slots <n>",
    key: "maxSlots",
    description: 'Cap of the ramp: a number or N% of the app\'s hosts ("" = no cap)',
    parse: (text, flag) => (text === "" ? null : parseSlotsInput(text, flag)),
  }),
  attribute({
    flag: "--groups <a,b>",
    key: "groups",
    description: 'Only agents in one of these groups serve the app ("" = all)',
    parse: (text, flag) => parseGroups(text, flag),
  }),
  attribute({
    flag: "--max-failures <n>",
    key: "maxFailures",
    description: "Failed hosts a rollout tolerates before it halts: a number or N% of its hosts (default 0)",
    parse: parseBudgetInput,
  }),
  attribute({
    flag: "--deploy-timeout <duration>",
    key: "deployTimeoutSec",
    description: "Kill a deploy after this long, e.g. 10m (default 10m)",
    parse: (text, flag) => Math.round(parseDurationInput(text, flag, 1_000, MAX_DEPLOY_TIMEOUT_SEC * 1_000) / 1_000),
  }),
];

function parseBudgetInput(text: string, flag: string): FailureBudget {
  const budget = parseFailureBudget(text);
  if (budget === undefined) throw new UsageError(`invalid ${flag} ${quote(text)}: ${BUDGET_RULE}`);
  return budget;
}

/** "--get-version-cmd <cmd>" → "--get-version-cmd". */
export const flagName = (option: { flag: string }): string => option.flag.split(" ")[0] ?? option.flag;

/** The attributes given on the command line, read with `read(name)` ("slots" for --slots). */
export function readAppAttributes(read: (name: string) => string | undefined): AppAttributes {
  const attributes: Record<string, unknown> = {};
  for (const option of APP_ATTRIBUTE_OPTIONS) {
    const flag = flagName(option);
    const text = read(flag.slice(2));
    if (text !== undefined) attributes[option.key] = option.parse(text, flag);
  }
  return attributes as AppAttributes;
}

/** The config file's key of an attribute: its flag in camelCase ("--get-version-cmd" → "getVersionCmd"). */
export const configKey = (option: { flag: string }): string =>
  flagName(option)
    .slice(2)
    .replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** Every key an `[apps.defaults]` or `[apps.<name>]` table may hold. */
export const APP_CONFIG_KEYS: readonly string[] = APP_ATTRIBUTE_OPTIONS.map(configKey);

/**
 * The attributes of one `[apps.*]` table of the config file, parsed exactly as their flags are
 * (a number may be written bare, `groups` as an array). `table` names the table in errors, e.g.
 * `[apps.web]`; an unknown key or a bad value is a UsageError naming both.
 */
export function parseAppTable(values: Record<string, unknown>, table: string): AppAttributes {
  const attributes: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(values)) {
    const option = APP_ATTRIBUTE_OPTIONS.find((o) => configKey(o) === key);
    const label = `${table} ${key}`;
    if (!option) throw new UsageError(`${label}: unknown key (use ${APP_CONFIG_KEYS.join(", ")})`);
    attributes[option.key] = option.parse(tomlText(value, label), label);
  }
  return attributes as AppAttributes;
}

/** A TOML value as the text its flag would take: strings as they are, numbers bare, arrays of
 *  strings comma-joined (groups); anything else is refused. */
function tomlText(value: unknown, label: string): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  if (Array.isArray(value) && value.every((x) => typeof x === "string")) return value.join(",");
  throw new UsageError(
    // JSON has no inf or nan (it would say "null"): numbers as numbers.
    `invalid ${label} ${quote(typeof value === "number" ? String(value) : (JSON.stringify(value) ?? String(value)))}: must be a string${label.endsWith(" groups") ? " or an array of strings" : " or a number"}`,
  );
}
