// A real HTTP service per test host, restarted by the host's deploy the way `systemctl restart`
// would: the deploy-cmd runs `./restart VERSION`, which stops the old server, installs VERSION
// and starts the new server detached — and returns at once, while the new server is still
// starting. Typical use:
//
//   const svc = HttpService.install({ dir: agentDir, port: await freePort() });
//   await svc.restart("1.0");                   // what a deploy does; returns before it serves
//   await svc.waitFor("ready", "1.0", 10_000);
//   // agents: --deploy-cmd './restart %(version)s' --health-cmd ./health
//   svc.hold(); … svc.release();                // keep a restarted server from serving (a host held in its health gate)
//   await stopAllServices();                    // every server and check of every service, by PID
//
// Files in the host directory: `restart` and `health` (the scripts the agent runs), service.json
// (port, restart-to-ready delay, bad-release settings; read at each start), VERSION (installed
// version: get-version-cmd reads it), server.pid, service.log (start/ready/stop/crash lines of
// every server process, see ./http-service-server.ts), health.log (one line per health check),
// server.out (the servers' stdout and stderr).
//
// The servers run on the repo's pinned Bun, by absolute path: it starts in ~10 ms (Node: ~150 ms)
// and is there on any machine that ran scripts/ensure-deps.

import { afterEach } from "bun:test";
import { chmodSync, existsSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { shellQuote } from "../../src/agent/placeholders.ts";
import { type CliResult, REPO_ROOT, spawnCollect } from "./cli.ts";
import type { ServiceConfig } from "./http-service-config.ts";
import { cmdlineOf, pidAlive, pidsWithArg, signalPid } from "./processes.ts";
import { poll } from "./wait.ts";

export interface HttpServiceOptions {
  /** The host directory (the agent's cwd). */
  dir: string;
  /** The host's fixed port on 127.0.0.1 (pick a free one: freePort()). */
  port: number;
  /** Restart-to-ready delay; default 1000 ms. */
  readyDelayMs?: number;
  /** Versions starting with this come up healthy and exit crashAfterMs later; default "crash". */
  crashPrefix?: string;
  /** Default 1500 ms. */
  crashAfterMs?: number;
}

export type ServiceEventKind = "start" | "ready" | "stop" | "crash";

export interface ServiceEvent {
  kind: ServiceEventKind;
  pid: number;
  version: string;
  /** Epoch ms. */
  at: number;
}

export interface HealthCheck {
  ok: boolean;
  /** The probe's outcome: up, refused, timeout, … */
  outcome: string;
  at: number;
}

/** The real Bun binary (node_modules/.bin/bun is a symlink), so scripts need no PATH. */
export const BUN = realpathSync(join(REPO_ROOT, "node_modules", ".bin", "bun"));
const SERVER_MAIN = join(REPO_ROOT, "test", "harness", "http-service-server.ts");
const CHECK_MAIN = join(REPO_ROOT, "test", "harness", "http-service-check.ts");
const STOP_GRACE_MS = 3_000;

const live = new Set<HttpService>();
let exitHooked = false;

export class HttpService {
  /** `<dir>/restart`: the control script a deploy runs with the version. */
  readonly restartScript: string;
  /** `<dir>/health`: exits 0 only if the server answers GET /health with 200. */
  readonly healthScript: string;
  readonly config: ServiceConfig;

  private constructor(
    readonly dir: string,
    options: HttpServiceOptions,
  ) {
    this.config = {
      port: options.port,
      readyDelayMs: options.readyDelayMs ?? 1_000,
      crashPrefix: options.crashPrefix ?? "crash",
      crashAfterMs: options.crashAfterMs ?? 1_500,
    };
    this.restartScript = join(dir, "restart");
    this.healthScript = join(dir, "health");
  }

  /** Writes the scripts and service.json into the host directory. Starts nothing. */
  static install(options: HttpServiceOptions): HttpService {
    const svc = new HttpService(options.dir, options);
    svc.writeConfig();
    writeScript(svc.restartScript, restartScript(options.dir));
    writeScript(svc.healthScript, healthScript(options.dir, options.port));
    live.add(svc);
    hookExit();
    return svc;
  }

  get port(): number {
    return this.config.port;
  }

  /** Changes the restart-to-ready delay (or the bad-release settings) for the next starts. */
  configure(change: Partial<Omit<ServiceConfig, "port">>): void {
    Object.assign(this.config, change);
    this.writeConfig();
  }

  private writeConfig(): void {
    writeFileSync(join(this.dir, "service.json"), `${JSON.stringify(this.config)}\n`);
  }

  /** Runs the control script as a deploy would; resolves when it returns (before the server serves). */
  async restart(version: string): Promise<CliResult> {
    const r = await spawnCollect([this.restartScript, version], { cwd: this.dir, timeoutMs: 15_000 });
    if (r.code !== 0) throw new Error(`${this.restartScript} ${version} exited ${r.code}: ${r.stderr}${r.stdout}`);
    return r;
  }

  /** Restarted servers stay unready (not listening) until release(): a host held in its gate. */
  hold(): void {
    writeFileSync(join(this.dir, "HOLD_READY"), "");
  }

  release(): void {
    rmSync(join(this.dir, "HOLD_READY"), { force: true });
  }

  /** The installed version (VERSION), "" before the first restart. */
  installed(): string {
    const path = join(this.dir, "VERSION");
    return existsSync(path) ? readFileSync(path, "utf8").trim() : "";
  }

  /** Every server event so far, oldest first. */
  events(): ServiceEvent[] {
    return readLines(join(this.dir, "service.log")).flatMap((line) => {
      const [kind = "", pid = "", version = "", at = ""] = line.split(" ");
      if (!["start", "ready", "stop", "crash"].includes(kind)) return [];
      return [{ kind: kind as ServiceEventKind, pid: Number(pid), version, at: Number(at) }];
    });
  }

  /** Versions a server process was started with, in order (one entry per start). */
  versionsStarted(): string[] {
    return this.events()
      .filter((e) => e.kind === "start")
      .map((e) => e.version);
  }

  /** Every health check an agent ran here, oldest first. */
  healthChecks(): HealthCheck[] {
    return readLines(join(this.dir, "health.log")).flatMap((line) => {
      const [result = "", outcome = "", at = ""] = line.split(" ");
      return result === "ok" || result === "fail" ? [{ ok: result === "ok", outcome, at: Number(at) }] : [];
    });
  }

  /** Resolves with the first `kind` event of `version` (at or after `since`, epoch ms). */
  waitFor(kind: ServiceEventKind, version: string, timeoutMs: number, since = 0): Promise<ServiceEvent> {
    return poll(
      () => this.events().find((e) => e.kind === kind && e.version === version && e.at >= since),
      timeoutMs,
      `${this.dir}: server ${version} to log "${kind}"`,
      10,
    );
  }

  /** Resolves once `count` health checks (at or after `since`) ran, failing or not: the host is in its gate. */
  waitForChecks(count: number, timeoutMs: number, since = 0): Promise<HealthCheck[]> {
    return poll(
      () => {
        const checks = this.healthChecks().filter((c) => c.at >= since);
        return checks.length >= count ? checks : undefined;
      },
      timeoutMs,
      `${this.dir}: ${count} health checks`,
      10,
    );
  }

  /** Live processes of this service: its servers (any version) and running health checks. */
  processes(): number[] {
    const fromFiles = [...this.events().map((e) => e.pid), Number(readLines(join(this.dir, "server.pid"))[0] ?? 0)];
    const known = fromFiles.filter((pid) => pid > 0 && pidAlive(pid) && this.owns(pid));
    return [...new Set([...known, ...pidsWithArg(this.dir)])];
  }

  /** A PID is ours while its command line names this directory (never a reused PID). */
  private owns(pid: number): boolean {
    return cmdlineOf(pid).split("\0").includes(this.dir);
  }

  /** SIGTERM every live process of the service, SIGKILL what is left after a grace period;
   *  resolves once they are gone. The host's agent must be stopped first (it would restart it). */
  async stop(): Promise<void> {
    const pids = this.processes();
    for (const pid of pids) signalPid(pid, "SIGTERM");
    const deadline = Date.now() + STOP_GRACE_MS;
    while (pids.some((pid) => pidAlive(pid) && this.owns(pid))) {
      if (Date.now() > deadline) {
        for (const pid of pids) if (this.owns(pid)) signalPid(pid, "SIGKILL");
      }
      await Bun.sleep(10);
    }
    // A server its control script was starting meanwhile (its setsid'd child): once more.
    for (const pid of this.processes()) signalPid(pid, "SIGKILL");
    live.delete(this);
  }

  /** Synchronous SIGKILL of everything (process exit). */
  killNow(): void {
    for (const pid of this.processes()) signalPid(pid, "SIGKILL");
  }
}

/** Stops every service installed so far (stop their agents first). */
export async function stopAllServices(): Promise<void> {
  await Promise.all([...live].map((svc) => svc.stop()));
}

/** For a test file: every service is stopped after each test, pass or fail (a fleet stops its
 *  agents first; this is the backstop). */
export function useHttpServices(): void {
  afterEach(async () => {
    await stopAllServices();
  }, 15_000);
}

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.on("exit", () => {
    for (const svc of live) svc.killNow();
  });
}

function readLines(path: string): string[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
}

function writeScript(path: string, text: string): void {
  writeFileSync(path, text);
  chmodSync(path, 0o755);
}

// ---------------------------------------------------------------------------------------------
// The scripts

/**
 * `restart VERSION`. The old server is stopped and waited for (its port must be free); the new
 * one is started with setsid — a session and process group of its own — because the agent waits
 * for every process of the deploy's group: a server left in it would hold the deploy (and the
 * slot) for its whole life. In a non-interactive sh a background job is not a group leader, so
 * setsid needs no fork and `$!` is the server's PID.
 */
function restartScript(dir: string): string {
  const d = shellQuote(dir);
  return `#!/bin/sh
# restart VERSION: stop the running server, install VERSION, start the new server detached and
# return at once (it serves after its restart-to-ready delay).
set -u
dir=${d}
[ $# -eq 1 ] || { echo "usage: restart VERSION" >&2; exit 2; }
# A live (not zombie) process started for this directory (a reused PID is never signalled).
ours() {
  state=$(sed -n 's/^.*) \\(.\\) .*$/\\1/p' "/proc/$1/stat" 2>/dev/null)
  [ -n "$state" ] && [ "$state" != Z ] && tr '\\0' '\\n' < "/proc/$1/cmdline" 2>/dev/null | grep -qxF -- "$dir"
}
if [ -s "$dir/server.pid" ]; then
  old=$(cat "$dir/server.pid")
  if ours "$old"; then
    kill -TERM "$old" 2>/dev/null
    n=0
    while ours "$old"; do
      n=$((n + 1))
      [ "$n" -eq 500 ] && kill -KILL "$old" 2>/dev/null
      sleep 0.01
    done
  fi
fi
printf '%s\\n' "$1" > "$dir/VERSION.tmp" && mv -f "$dir/VERSION.tmp" "$dir/VERSION"
setsid ${shellQuote(BUN)} ${shellQuote(SERVER_MAIN)} "$dir" "$1" < /dev/null >> "$dir/server.out" 2>&1 &
echo $! > "$dir/server.pid"
`;
}

function healthScript(dir: string, port: number): string {
  return `#!/bin/sh
# health: exit 0 only if this host's server answers GET /health with 200 (short timeout).
exec ${shellQuote(BUN)} ${shellQuote(CHECK_MAIN)} ${shellQuote(dir)} ${port}
`;
}
