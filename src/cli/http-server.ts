import type { Server } from "bun";
import { OperationError } from "../apps/errors.ts";
import type { ListenAddress } from "../config/listen-address.ts";

/**
 * Starts an HTTP server (`what` names it in errors: "--metrics-listen 0.0.0.0:9464"); a port in
 * use or an address this machine does not have is one line, exit 1 — never a stack trace.
 */
export function listen(
  address: ListenAddress,
  what: string,
  fetch: (request: Request, server: Server<undefined>) => Response | Promise<Response>,
): Server<undefined> {
  try {
    return Bun.serve({ hostname: address.hostname, port: address.port, fetch, idleTimeout: 0 });
  } catch (error) {
    const code = (error as { code?: string }).code;
    const why =
      code === "EADDRINUSE"
        ? "the port is in use"
        : code === "EADDRNOTAVAIL"
          ? "this machine has no such address"
          : error instanceof Error
            ? error.message
            : String(error);
    throw new OperationError(`cannot listen on ${what}: ${why}`);
  }
}

/** The URL a started server answers on (the actual port when 0 was asked for). */
export function serverUrl(server: Server<undefined>): string {
  const host = server.hostname?.includes(":") ? `[${server.hostname}]` : server.hostname;
  return `http://${host}:${server.port}`;
}
