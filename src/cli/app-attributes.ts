import { MAX_DEPLOY_TIMEOUT_SEC, MAX_GATE_MS, MIN_HEALTH_INTERVAL_MS } from "../config/app-spec.ts";
import { BUDGET_RULE, type FailureBudget, parseFailureBudget } from "../config/budget.ts";
import { UsageError } from "../config/errors.ts";
import { parseCommand, parseCount, parseDurationInput, parseGroups, parseSlotsInput } from "../config/parse-input.ts";
import type { AppAttributes } from "../apps/publish.ts";
import { quote } from "../text/printable.ts";
import type { OptionSpec } from "./command.ts";

/**
 * One app attribute as `app create` takes it: the flag (cac syntax), its help, and how its text
 * becomes the attribute (a UsageError naming the flag and the value otherwise). The one list
 * the flags, their help and their parsing come from.
 */
interface AttributeOption<K extends keyof AppAttributes> extends OptionSpec {
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

/** The attributes given on the command line, read with `read(name)` ("slots" for --slots). */
export function readAppAttributes(read: (name: string) => string | undefined): AppAttributes {
  const attributes: Record<string, unknown> = {};
  for (const option of APP_ATTRIBUTE_OPTIONS) {
    const flag = option.flag.split(" ")[0] ?? option.flag;
    const text = read(flag.slice(2));
    if (text !== undefined) attributes[option.key] = option.parse(text, flag);
  }
  return attributes as AppAttributes;
}
