import { parseConnectString } from "../zk/connect-string.ts";
import type { DigestCredential } from "../zk/client.ts";
import { type ConfigFile, LOG_LEVELS, loadConfigFile } from "./config-file.ts";
import { parseDurationMs } from "./durations.ts";
import { UsageError } from "./errors.ts";
import { NAME_PATTERN } from "./names.ts";
import { quote } from "../text/printable.ts";
import { readSmallFile } from "./small-file.ts";
import { type TlsSettings, resolveTls } from "./tls-settings.ts";

export type LogLevel = (typeof LOG_LEVELS)[number];

/** Options every command accepts (raw strings as typed; validated here). */
export interface GlobalFlags {
  zk?: string;
  auth?: string;
  authFile?: string;
  config?: string;
  json?: boolean;
  logLevel?: string;
  connectTimeout?: string;
  tls?: boolean;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}

export interface Settings {
  connectString: string;
  /** Where connectString came from, for messages: "--zk", "CONVEYOR_ZK", "zk in the config file …", or the default. */
  connectSource: string;
  credentials: DigestCredential[];
  /** TLS to ZooKeeper; undefined: plain TCP. */
  tls?: TlsSettings;
  connectTimeoutMs: number;
  logLevel: LogLevel;
  json: boolean;
  configPath?: string;
  file: ConfigFile;
}

export const DEFAULT_CONNECT = "127.0.0.1:2181/conveyor";
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_CONNECT_SOURCE = `the default --zk ${DEFAULT_CONNECT}`;

type Env = Record<string, string | undefined>;

/** flags > env (CONVEYOR_ZK, CONVEYOR_AUTH) > config file > defaults. Throws UsageError. */
export async function resolveSettings(flags: GlobalFlags, env: Env): Promise<Settings> {
  const { path, config } = await loadConfigFile(flags.config);
  const connectString = flags.zk ?? env.CONVEYOR_ZK ?? config.zk ?? DEFAULT_CONNECT;
  const connectSource =
    flags.zk !== undefined
      ? "--zk"
      : env.CONVEYOR_ZK !== undefined
        ? "CONVEYOR_ZK"
        : config.zk !== undefined
          ? `zk in the config file ${quote(path ?? "")}`
          : DEFAULT_CONNECT_SOURCE;
  const parsed = parseConnectString(connectString);
  if (typeof parsed === "string") throw new UsageError(parsed);

  const credentials = await resolveCredentials(flags, env, config);
  const tls = await resolveTls(flags, env, config);

  const timeoutText = flags.connectTimeout ?? config.connectTimeout;
  const connectTimeoutMs = timeoutText === undefined ? DEFAULT_CONNECT_TIMEOUT_MS : parseDurationMs(timeoutText);
  if (connectTimeoutMs === undefined || connectTimeoutMs < 100 || connectTimeoutMs > 600_000) {
    throw new UsageError(`invalid connect timeout ${quote(timeoutText)}: use e.g. 10s, between 100ms and 10m`);
  }

  const levelText = flags.logLevel ?? config.logLevel ?? "info";
  if (!(LOG_LEVELS as readonly string[]).includes(levelText)) {
    throw new UsageError(`invalid --log-level ${quote(levelText)}: use one of ${LOG_LEVELS.join(", ")}`);
  }

  return {
    connectString,
    connectSource,
    credentials,
    ...(tls === undefined ? {} : { tls }),
    connectTimeoutMs,
    logLevel: levelText as LogLevel,
    json: flags.json === true,
    ...(path === undefined ? {} : { configPath: path }),
    file: config,
  };
}

/** The one setting whose environment variable is a secret itself (the others name files). */
const AUTH_ENV = "CONVEYOR_AUTH";

/**
 * `env` without the variables that carry a secret, for the commands an agent runs: they need
 * no ZooKeeper password, and their output is published (status, dashboard, events).
 */
export function withoutSecrets(env: Env): Env {
  const { [AUTH_ENV]: _, ...rest } = env;
  return rest;
}

async function resolveCredentials(flags: GlobalFlags, env: Env, config: ConfigFile): Promise<DigestCredential[]> {
  // The most specific source wins; a secret is never echoed in an error message.
  if (flags.auth !== undefined) return [parseCredential(flags.auth, "--auth")];
  if (flags.authFile !== undefined) return [await readCredentialFile(flags.authFile, "--auth-file")];
  const fromEnv = env[AUTH_ENV];
  if (fromEnv !== undefined && fromEnv !== "") return [parseCredential(fromEnv, AUTH_ENV)];
  if (config.auth !== undefined) return [parseCredential(config.auth, "auth in the config file")];
  if (config.authFile !== undefined) return [await readCredentialFile(config.authFile, "authFile in the config file")];
  return [];
}

export function parseCredential(text: string, source: string): DigestCredential {
  const colon = text.indexOf(":");
  const user = colon === -1 ? "" : text.slice(0, colon);
  const password = colon === -1 ? "" : text.slice(colon + 1);
  if (!NAME_PATTERN.test(user) || password === "" || /[\r\n\0]/.test(password)) {
    throw new UsageError(`invalid ${source}: expected USER:PASSWORD (user ${quote(user || "?")}; the password is not shown)`);
  }
  return { user, password };
}

export async function readCredentialFile(path: string, source: string): Promise<DigestCredential> {
  const text = (await readSmallFile(path, source)) ?? "";
  return parseCredential(text.trim(), `${source} ${quote(path)}`);
}
