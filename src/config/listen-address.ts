import { UsageError } from "./errors.ts";
import { quote } from "../text/printable.ts";

export interface ListenAddress {
  hostname: string;
  /** 0: any free port (the server says which). */
  port: number;
  /** Only this machine can connect: 127.0.0.0/8, ::1 or localhost. */
  loopback: boolean;
}

/**
 * `HOST:PORT` as --listen and --metrics-listen take it: `127.0.0.1:8080`, `[::1]:8080`,
 * `0.0.0.0:9464`, `localhost:8080`; `:PORT` means every interface. A UsageError naming the
 * flag and the value otherwise.
 */
export function parseListenAddress(text: string, flag: string): ListenAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]*)):(\d{1,5})$/.exec(text.trim());
  const port = Number(match?.[3]);
  if (!match || port > 65_535) {
    throw new UsageError(`invalid ${flag} ${quote(text)}: use HOST:PORT, e.g. 127.0.0.1:8080 (or :PORT for every interface)`);
  }
  const hostname = match[1] ?? (match[2] || "0.0.0.0");
  return { hostname, port, loopback: isLoopback(hostname) };
}

/** The host part of an HTTP Host header (`127.0.0.1:8080`, `[::1]:8080`, `localhost`) names this machine. */
export function isLoopbackHostHeader(host: string | null): boolean {
  if (host === null) return false;
  const hostname = host.startsWith("[") ? host.slice(1, host.indexOf("]")) : (host.split(":")[0] ?? "");
  return isLoopback(hostname.toLowerCase());
}

function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}
