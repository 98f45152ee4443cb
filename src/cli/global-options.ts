import type { GlobalFlags } from "../config/settings.ts";
import type { OptionSpec } from "./command.ts";
import type { RawOptions } from "./raw-options.ts";

type KeysOf<T> = { [K in keyof GlobalFlags]-?: NonNullable<GlobalFlags[K]> extends T ? K : never }[keyof GlobalFlags];

/** One option every command accepts, before or after the command. */
type GlobalOption =
  /** Takes a value: `--zk <connect>` or `--zk=…`; `value` is what help shows in the brackets. */
  | { flag: `--${string}`; value: string; key: KeysOf<string>; description: string }
  | { flag: `--${string}`; value?: undefined; key: KeysOf<boolean>; description: string };

/**
 * The global options, in the order help lists them. Everything else is derived from this table:
 * the help text and cac's registration (GLOBAL_OPTION_SPECS), the dispatcher's skipping of
 * values before the command word (globalOptionTakesValue), and readGlobalFlags.
 */
const GLOBAL_OPTIONS: readonly GlobalOption[] = [
  {
    flag: "--zk",
    value: "connect",
    key: "zk",
    description: "ZooKeeper connect string host:port[,host:port][/chroot] (env CONVEYOR_ZK; default 127.0.0.1:2181/conveyor)",
  },
  { flag: "--auth", value: "user:pass", key: "auth", description: "ZooKeeper digest credentials (env CONVEYOR_AUTH)" },
  { flag: "--auth-file", value: "path", key: "authFile", description: "Read USER:PASS from a file, keeping it out of ps" },
  { flag: "--config", value: "file", key: "config", description: "TOML config file (default /etc/conveyor/conveyor.toml if present)" },
  {
    flag: "--connect-timeout",
    value: "duration",
    key: "connectTimeout",
    description: "Give up connecting to ZooKeeper after this long (default 10s)",
  },
  {
    flag: "--tls",
    key: "tls",
    description: "Connect to ZooKeeper over TLS (its secureClientPort); never falls back to plain TCP (env CONVEYOR_TLS=1)",
  },
  {
    flag: "--tls-ca",
    value: "file",
    key: "tlsCa",
    description: "PEM CA certificate(s) to trust for the server (default: the system store; turns TLS on; env CONVEYOR_TLS_CA)",
  },
  {
    flag: "--tls-cert",
    value: "file",
    key: "tlsCert",
    description: "PEM client certificate for mutual TLS, its subject is the x509 identity (env CONVEYOR_TLS_CERT)",
  },
  { flag: "--tls-key", value: "file", key: "tlsKey", description: "PEM private key of --tls-cert (env CONVEYOR_TLS_KEY)" },
  { flag: "--json", key: "json", description: "Machine-readable output" },
  { flag: "--log-level", value: "level", key: "logLevel", description: "error | warn | info | debug (default info)" },
];

/** cac registers help itself (cli.help(): `-h, --help`); the dispatcher must know them too. */
const HELP_FLAGS: readonly string[] = ["-h", "--help"];

/** The table in cac's syntax, for registration and help. */
export const GLOBAL_OPTION_SPECS: readonly OptionSpec[] = GLOBAL_OPTIONS.map((o) => ({
  flag: o.value === undefined ? o.flag : `${o.flag} <${o.value}>`,
  description: o.description,
}));

/**
 * For a word before the command (`--zk`, `--json`, `--zk=…` by its name): true when it is a
 * global option whose value is the next word, false for a global flag (or `--name=value`, which
 * carries its value), undefined when it is no global option at all.
 */
export function globalOptionTakesValue(token: string): boolean | undefined {
  const [name = token, ...inline] = token.split("=");
  if (HELP_FLAGS.includes(name)) return false;
  const option = GLOBAL_OPTIONS.find((o) => o.flag === name);
  if (option === undefined) return undefined;
  return option.value !== undefined && inline.length === 0;
}

export function readGlobalFlags(options: RawOptions): GlobalFlags {
  const flags: GlobalFlags = {};
  for (const option of GLOBAL_OPTIONS) {
    const name = option.flag.slice(2);
    if (option.value === undefined) {
      flags[option.key] = options.flag(name);
      continue;
    }
    const value = options.string(name);
    if (value !== undefined) flags[option.key] = value;
  }
  return flags;
}
