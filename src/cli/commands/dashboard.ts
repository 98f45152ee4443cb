import { type DashboardState, DashboardFeed } from "../../apps/dashboard-feed.ts";
import { registerFleetMetrics } from "../../apps/fleet-metrics.ts";
import { UsageError } from "../../config/errors.ts";
import { isLoopbackHostHeader, parseListenAddress } from "../../config/listen-address.ts";
import { CONTENT_TYPE, Registry } from "../../metrics/prometheus.ts";
import { quote } from "../../text/printable.ts";
import { COMMIT, VERSION } from "../../version.ts";
import type { CommandSpec } from "../command.ts";
import { type DashboardAuth, authorised, challenge, loadDashboardAuth } from "../dashboard/dashboard-auth.ts";
import pageText from "../dashboard/index.html" with { type: "text" };
import { ExitCode } from "../exit-codes.ts";
import { listen, serverUrl } from "../http-server.ts";
import { withZk } from "../session.ts";
import { stopSignal } from "../stop-signal.ts";

/** The page, compiled into the binary: `with { type: "text" }` makes the import the file's text
 *  (Bun's types describe the HTML-bundle import instead). */
const PAGE = pageText as unknown as string;

export const DEFAULT_DASHBOARD_LISTEN = "127.0.0.1:8080";
/** A comment line on every open event stream this often, so proxies keep it open. */
const HEARTBEAT_MS = 15_000;

export const dashboard: CommandSpec = {
  usage: "dashboard",
  description: "Serve a read-only live web dashboard of every app and host (and fleet /metrics), driven by ZooKeeper watches",
  options: [
    { flag: "--listen <addr>", description: `Where to serve it, HOST:PORT (default ${DEFAULT_DASHBOARD_LISTEN}: this machine only)` },
    {
      flag: "--dashboard-auth-file <file>",
      description: "Require HTTP basic (a line USER:PASSWORD) or a bearer token (a line without ':') for every page, API and /metrics",
    },
    {
      flag: "--insecure-listen",
      description: "Allow a non-loopback --listen without --dashboard-auth-file (anyone who can reach it sees the fleet)",
    },
  ],
  examples: [
    "conveyor dashboard",
    "conveyor dashboard --listen 0.0.0.0:8080 --dashboard-auth-file /etc/conveyor/dashboard.auth",
    "curl -s http://127.0.0.1:8080/api/status",
  ],
  async run(_args, ctx) {
    const typed = ctx.options.string("listen") ?? DEFAULT_DASHBOARD_LISTEN;
    const address = parseListenAddress(typed, "--listen");
    const authFile = ctx.options.string("dashboard-auth-file");
    const auth = authFile === undefined ? undefined : await loadDashboardAuth(authFile);
    if (!address.loopback && auth === undefined && !ctx.options.flag("insecure-listen")) {
      throw new UsageError(
        `--listen ${quote(typed)} is reachable from other machines: give --dashboard-auth-file FILE (HTTP basic or a bearer token), or --insecure-listen to serve it to anyone who can connect`,
      );
    }
    const stop = stopSignal(ctx, ExitCode.ok);
    try {
      return await withZk(ctx, async (zk) => {
        const feed = new DashboardFeed(zk);
        await feed.start();
        const registry = new Registry();
        registry
          .gauge("conveyor_build_info", "Version and git commit of this conveyor binary")
          .set({ version: VERSION, commit: COMMIT }, 1);
        registerFleetMetrics(registry, () => feed.current());
        const streams = new Set<ReadableStreamDefaultController<string>>();
        // Served to this machine only, without auth: a page elsewhere could still read it through
        // DNS rebinding (its own name resolved to 127.0.0.1), so answer only to loopback names.
        const loopbackOnly = address.loopback && auth === undefined && !ctx.options.flag("insecure-listen");
        const server = listen(address, `--listen ${typed}`, (request) => {
          if (loopbackOnly && !isLoopbackHostHeader(request.headers.get("host"))) return misdirected(serverUrl(server));
          if (auth !== undefined && !authorised(auth, request.headers.get("authorization"))) return challenge(auth);
          return route(request, feed, registry, streams);
        });
        ctx.io.err(`dashboard: ${serverUrl(server)}/ (ZooKeeper ${zk.chroot || "/"}${auth ? `, ${authLabel(auth)}` : ""}); Ctrl-C to stop`);
        const heartbeat = setInterval(() => {
          for (const stream of streams) send(stream, ": keep-alive\n\n");
        }, HEARTBEAT_MS);
        const unsubscribe = feed.subscribe((state) => {
          for (const stream of streams) send(stream, stateEvent(state));
        });
        await new Promise<void>((resolve) => {
          if (stop.signal.aborted) resolve();
          stop.signal.addEventListener("abort", () => resolve(), { once: true });
        });
        clearInterval(heartbeat);
        unsubscribe();
        for (const stream of streams) stream.close();
        await server.stop(true);
        await feed.close();
        return ExitCode.ok;
      });
    } finally {
      stop.dispose();
    }
  },
};

function misdirected(url: string): Response {
  return new Response(
    `this dashboard answers only to loopback host names (127.0.0.1, localhost, [::1]): open ${url}/ — behind a proxy, serve it with --dashboard-auth-file\n`,
    { status: 421 },
  );
}

function authLabel(auth: DashboardAuth): string {
  return auth.kind === "basic" ? `HTTP basic, user ${auth.user}` : "bearer token";
}

function route(request: Request, feed: DashboardFeed, registry: Registry, streams: Set<ReadableStreamDefaultController<string>>): Response {
  if (request.method !== "GET" && request.method !== "HEAD")
    return new Response("read-only\n", { status: 405, headers: { allow: "GET, HEAD" } });
  const path = new URL(request.url).pathname;
  const security = { "x-content-type-options": "nosniff", "cache-control": "no-store" };
  switch (path) {
    case "/":
    case "/index.html":
      return new Response(PAGE, {
        headers: {
          ...security,
          "content-type": "text/html; charset=utf-8",
          // The page's own inline script and style only; nothing from anywhere else.
          "content-security-policy":
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'",
          "x-frame-options": "DENY",
        },
      });
    case "/api/status": {
      const { fleet, zookeeper, error } = feed.current();
      if (fleet === undefined) return Response.json({ error: error ?? "not read yet", zookeeper }, { status: 503, headers: security });
      return new Response(`${JSON.stringify(fleet, null, 2)}\n`, { headers: { ...security, "content-type": "application/json" } });
    }
    case "/api/events":
      return eventStream(request, feed, streams, security);
    case "/metrics":
      return new Response(registry.render(), { headers: { ...security, "content-type": CONTENT_TYPE } });
    default:
      return new Response("not found\n", { status: 404, headers: security });
  }
}

/** Server-sent events: the whole state at once, then again on every change. */
function eventStream(
  request: Request,
  feed: DashboardFeed,
  streams: Set<ReadableStreamDefaultController<string>>,
  headers: Record<string, string>,
): Response {
  let controller: ReadableStreamDefaultController<string> | undefined;
  const body = new ReadableStream<string>({
    start(c) {
      controller = c;
      streams.add(c);
      // Reconnect after 1 s if the server goes away (a restart of the dashboard).
      send(c, `retry: 1000\n${stateEvent(feed.current())}`);
    },
    cancel() {
      if (controller) streams.delete(controller);
    },
  });
  request.signal.addEventListener("abort", () => {
    if (controller) streams.delete(controller);
  });
  return new Response(body, { headers: { ...headers, "content-type": "text/event-stream; charset=utf-8", connection: "keep-alive" } });
}

function stateEvent(state: DashboardState): string {
  return `event: state\ndata: ${JSON.stringify(state)}\n\n`;
}

function send(stream: ReadableStreamDefaultController<string>, text: string): void {
  try {
    stream.enqueue(text);
  } catch {
    // Closed by the client meanwhile: its cancel() removes it.
  }
}
