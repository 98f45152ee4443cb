// One GET /health over a fresh TCP connection, answered or not within a bound. Shared by the
// prober (test process) and the health command the agents run (test/harness/http-service-check.ts).
//
// A raw socket instead of fetch(): fetch keeps connections alive in a pool, and a pooled
// connection to a server that is shutting down would say nothing about whether a new client
// could connect now — which is what "down" means to a user behind a load balancer.

import { connect } from "node:net";

export type ProbeOutcome = "up" | "refused" | "timeout" | "error" | "bad-status";

export interface ProbeResult {
  outcome: ProbeOutcome;
  /** HTTP status when an answer came. */
  status?: number;
  /** Response body (the server's version) when it answered 200. */
  body?: string;
  ms: number;
}

const LOOPBACK = "127.0.0.1";

/** GET http://127.0.0.1:port/health; "up" only for a complete 200 answer within timeoutMs. */
export function probeHealth(port: number, timeoutMs: number): Promise<ProbeResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const sock = connect({ host: LOOPBACK, port });
    const done = (outcome: ProbeOutcome, extra: { status?: number; body?: string } = {}): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ outcome, ...extra, ms: Math.round(performance.now() - started) });
    };
    const timer = setTimeout(() => done("timeout"), timeoutMs);
    sock.setNoDelay(true);
    sock.once("connect", () => {
      sock.write(`GET /health HTTP/1.1\r\nHost: ${LOOPBACK}:${port}\r\nConnection: close\r\n\r\n`);
    });
    sock.on("data", (chunk: Buffer) => chunks.push(chunk));
    sock.once("error", (error: NodeJS.ErrnoException) => done(error.code === "ECONNREFUSED" ? "refused" : "error"));
    sock.once("close", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const status = Number(/^HTTP\/1\.[01] (\d{3}) /.exec(text)?.[1] ?? Number.NaN);
      if (Number.isNaN(status)) return done("error");
      const body = text.slice(text.indexOf("\r\n\r\n") + 4);
      done(status === 200 ? "up" : "bad-status", { status, body });
    });
  });
}
