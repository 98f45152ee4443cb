import { X509Certificate, createPrivateKey } from "node:crypto";
import { quote } from "../text/printable.ts";
import type { ConfigFile } from "./config-file.ts";
import { UsageError } from "./errors.ts";
import type { GlobalFlags } from "./settings.ts";
import { readSmallFile } from "./small-file.ts";

/** TLS to ZooKeeper's secureClientPort, as the client library takes it (PEM text). */
export interface TlsSettings {
  /** Trusted CA certificates; undefined: the system's trust store. */
  ca?: string;
  /** A client certificate and its key (mutual TLS, x509 identities). */
  cert?: string;
  key?: string;
}

type Env = Record<string, string | undefined>;

const TRUE = ["1", "true", "yes", "on"];
const FALSE = ["0", "false", "no", "off", ""];

/**
 * Whether to speak TLS, and with what: flags (--tls, --tls-ca, --tls-cert, --tls-key) >
 * environment (CONVEYOR_TLS, CONVEYOR_TLS_CA, CONVEYOR_TLS_CERT, CONVEYOR_TLS_KEY) > the config
 * file's [tls] table (enabled, ca, cert, key). Naming any file turns TLS on: a CA or certificate
 * given with TLS off would otherwise be ignored in silence, and the connection go out in clear.
 * A certificate needs its key (and the other way round), and they must belong together;
 * anything wrong is a UsageError naming where it came from. Undefined: plain TCP.
 */
export async function resolveTls(flags: GlobalFlags, env: Env, config: ConfigFile): Promise<TlsSettings | undefined> {
  const file = config.tls ?? {};
  const pick = (flag: string | undefined, envName: string, fileValue: string | undefined, fileKey: string) =>
    flag !== undefined
      ? { path: flag, source: `--tls-${fileKey}` }
      : env[envName]
        ? { path: env[envName] ?? "", source: envName }
        : fileValue !== undefined
          ? { path: fileValue, source: `tls.${fileKey} in the config file` }
          : undefined;
  const ca = pick(flags.tlsCa, "CONVEYOR_TLS_CA", file.ca, "ca");
  const cert = pick(flags.tlsCert, "CONVEYOR_TLS_CERT", file.cert, "cert");
  const key = pick(flags.tlsKey, "CONVEYOR_TLS_KEY", file.key, "key");
  const enabled = flags.tls === true || envSwitch(env.CONVEYOR_TLS) === true || file.enabled === true || !!(ca || cert || key);
  if (!enabled) return undefined;
  if ((cert === undefined) !== (key === undefined)) {
    const [given, missing] = cert ? [cert.source, "--tls-key"] : [key?.source ?? "", "--tls-cert"];
    throw new UsageError(`${given} needs ${missing} too: a client certificate and its private key go together`);
  }
  const settings: TlsSettings = {};
  if (ca) settings.ca = await readPem(ca, "CERTIFICATE");
  if (cert && key) {
    settings.cert = await readPem(cert, "CERTIFICATE");
    settings.key = await readPem(key, "PRIVATE KEY");
    assertPair(settings.cert, settings.key, cert, key);
  }
  return settings;
}

function envSwitch(value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  const text = value.trim().toLowerCase();
  if (TRUE.includes(text)) return true;
  if (FALSE.includes(text)) return false;
  throw new UsageError(`invalid CONVEYOR_TLS ${quote(value)}: use 1 or 0`);
}

async function readPem(from: { path: string; source: string }, what: "CERTIFICATE" | "PRIVATE KEY"): Promise<string> {
  const text = (await readSmallFile(from.path, from.source)) ?? "";
  if (!new RegExp(`-----BEGIN [A-Z ]*${what}-----`).test(text)) {
    throw new UsageError(`${from.source} ${quote(from.path)} holds no PEM ${what.toLowerCase()} (-----BEGIN ${what}-----)`);
  }
  return text;
}

function assertPair(certPem: string, keyPem: string, cert: { path: string; source: string }, key: { path: string; source: string }): void {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certPem);
  } catch (error) {
    throw new UsageError(`${cert.source} ${quote(cert.path)} is not a valid certificate: ${(error as Error).message}`);
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(keyPem);
  } catch (error) {
    throw new UsageError(`${key.source} ${quote(key.path)} is not a valid private key: ${(error as Error).message}`);
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new UsageError(`${key.source} ${quote(key.path)} is not the key of ${cert.source} ${quote(cert.path)}`);
  }
}
