import type { GlobalFlags } from "../config/settings.ts";
import type { OptionSpec } from "./command.ts";
import type { RawOptions } from "./raw-options.ts";

/** Accepted before or after the command, on every command. */
export const GLOBAL_OPTIONS: OptionSpec[] = [
  { flag: "--zk <connect>", description: "ZooKeeper connect string host:port[,host:port][/chroot] (env CONVEYOR_ZK; default 127.0.0.1:2181/conveyor)" },
  { flag: "--auth <user:pass>", description: "ZooKeeper digest credentials (env CONVEYOR_AUTH)" },
  { flag: "--auth-file <path>", description: "Read USER:PASS from a file, keeping it out of ps" },
  { flag: "--config <file>", description: "TOML config file (default /etc/conveyor/conveyor.toml if present)" },
  { flag: "--connect-timeout <duration>", description: "Give up connecting to ZooKeeper after this long (default 10s)" },
  { flag: "--json", description: "Machine-readable output" },
  { flag: "--log-level <level>", description: "error | warn | info | debug (default info)" },
];

/** Global options that take a value, so the dispatcher can skip their values. */
export const VALUE_GLOBALS = new Set(["--zk", "--auth", "--auth-file", "--config", "--connect-timeout", "--log-level"]);

export function readGlobalFlags(options: RawOptions): GlobalFlags {
  const flags: GlobalFlags = { json: options.flag("json") };
  const set = (key: keyof Omit<GlobalFlags, "json">, name: string): void => {
    const value = options.string(name);
    if (value !== undefined) flags[key] = value;
  };
  set("zk", "zk");
  set("auth", "auth");
  set("authFile", "auth-file");
  set("config", "config");
  set("connectTimeout", "connect-timeout");
  set("logLevel", "log-level");
  return flags;
}
