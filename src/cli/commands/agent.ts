import { mkdirSync } from "node:fs";
import { homedir, hostname } from "node:os";
import { join } from "node:path";
import { LOG_FORMATS } from "../../config/config-file.ts";
import { UsageError } from "../../config/errors.ts";
import { quote } from "../../text/printable.ts";
import { parseDurationInput, parseGroups, parseHostId } from "../../config/parse-input.ts";
import { Agent, DuplicateHostError } from "../../agent/agent.ts";
import { ShellCommandRunner } from "../../agent/command-runner.ts";
import { loadTrustedKey } from "../../config/signing-keys.ts";
import { COMMIT, VERSION } from "../../version.ts";
import { AgentMetrics } from "../../agent/agent-metrics.ts";
import { type ListenAddress, parseListenAddress } from "../../config/listen-address.ts";
import { CONTENT_TYPE, Registry } from "../../metrics/prometheus.ts";
import type { ZkClient } from "../../zk/client.ts";
import type { Logger } from "../../agent/logger.ts";
import { listen, serverUrl } from "../http-server.ts";
import type { CommandContext, CommandSpec } from "../command.ts";
import { ExitCode } from "../exit-codes.ts";
import { type LogFormat, createLogger } from "../logger.ts";
import { connectZk, loadSettings } from "../session.ts";
import { withoutSecrets } from "../../config/settings.ts";
import { INVALID_ACL_RECORD } from "../../apps/tree-acl.ts";

export const agent: CommandSpec = {
  usage: "agent",
  description: "Run the deploy agent on this server (foreground; for systemd)",
  createsChroot: true,
  options: [
    { flag: "--host-id <id>", description: "This server's id in ZooKeeper (default: the hostname)" },
    { flag: "--groups <a,b>", description: "Groups this server belongs to; apps with groups deploy only to members" },
    { flag: "--session-timeout <duration>", description: "ZooKeeper session timeout, e.g. 10s (default 10s)" },
    { flag: "--log-format <format>", description: "text | json (default text)" },
    {
      flag: "--trusted-key <file>",
      description:
        "Run only releases signed by this public key (FILE.pub of conveyor keygen); repeatable. Replaces agent.trustedKeys of the config file",
    },
    {
      flag: "--metrics-listen <addr>",
      description: "Serve Prometheus metrics at http://ADDR/metrics, e.g. 127.0.0.1:9464 (default: off). Config agent.metricsListen",
    },
    {
      flag: "--state-dir <dir>",
      description:
        "Where running deploys are recorded across agent crashes (default $STATE_DIRECTORY, else /var/lib/conveyor as root, else ~/.local/state/conveyor)",
    },
  ],
  examples: [
    "conveyor agent --zk zk1:2181,zk2:2181/conveyor --host-id web-01 --groups web",
    "conveyor agent --config /etc/conveyor/conveyor.toml --trusted-key /etc/conveyor/release.key.pub",
  ],
  async run(_args, ctx) {
    const settings = await loadSettings(ctx);
    const file = settings.file.agent ?? {};
    const o = ctx.options;
    // Each value named in an error as the user gave it: the flag, or the config file's key.
    const setting = (flag: string, fromFile: string | undefined, key: string) =>
      o.string(flag) !== undefined
        ? { value: o.string(flag), source: `--${flag}` }
        : { value: fromFile, source: `agent.${key} in the config file` };
    const hostId = setting("host-id", file.hostId, "hostId");
    const host = parseHostId(hostId.value ?? hostname().split(".")[0] ?? "", hostId.value === undefined ? "--host-id" : hostId.source);
    const groupList = setting("groups", file.groups?.join(","), "groups");
    const groups = parseGroups(groupList.value ?? "", groupList.source);
    const timeout = setting("session-timeout", file.sessionTimeout, "sessionTimeout");
    const sessionTimeoutMs = parseDurationInput(timeout.value ?? "10s", timeout.source, 1_000, 300_000);
    const logFormat = setting("log-format", file.logFormat, "logFormat");
    const format = logFormat.value ?? "text";
    if (!(LOG_FORMATS as readonly string[]).includes(format)) {
      throw new UsageError(`invalid ${logFormat.source} ${quote(format)}: use text or json`);
    }
    const keyFlags = o.strings("trusted-key");
    const trustedKeys = await Promise.all(
      keyFlags.length > 0
        ? keyFlags.map((path) => loadTrustedKey(path, "--trusted-key"))
        : (file.trustedKeys ?? []).map((path) => loadTrustedKey(path, "agent.trustedKeys in the config file")),
    );
    const metricsListen = setting("metrics-listen", file.metricsListen, "metricsListen");
    const metricsText = metricsListen.value;
    const metricsAddress = metricsText === undefined ? undefined : parseListenAddress(metricsText, metricsListen.source);
    const stateDir = createStateDir(setting("state-dir", file.stateDir, "stateDir"), ctx.env, host);
    const logger = createLogger(settings.logLevel, format as LogFormat, (line) => void process.stdout.write(line));
    // SIGHUP's default would kill the agent on the spot and orphan a running deploy. There is
    // nothing to reload (settings are read at start): log it and go on.
    process.on("SIGHUP", () => logger.warn("SIGHUP ignored: the agent has nothing to reload; restart it to apply new settings"));

    const zk = await connectZk(ctx, settings, { sessionTimeoutMs });
    const metrics = metricsAddress === undefined ? undefined : serveAgentMetrics(metricsAddress, metricsText ?? "", zk, logger);
    const daemon = new Agent(
      {
        host,
        groups,
        ...(file.apps === undefined ? {} : { apps: file.apps }),
        // Whole-command matches: "deploy\\.sh" must not allow "rm -rf / #deploy.sh".
        ...(file.allowCommands === undefined ? {} : { allowCommands: file.allowCommands.map((p) => new RegExp(`^(?:${p})$`)) }),
        agentVersion: VERSION,
        pid: process.pid,
        stateDir,
        trustedKeys,
      },
      {
        zk,
        runner: new ShellCommandRunner(undefined, withoutSecrets(ctx.env)),
        logger,
        now: () => new Date(),
        ...(metrics ? { observer: metrics.observer } : {}),
      },
    );
    // Listening before start(): a SIGTERM while it adopts a crashed run's deploy or waits for
    // its host id must stop the agent as at any other time, not end it (the default action).
    const stopped = untilSignalled(ctx, daemon, logger.warn);
    try {
      if ((await zk.adoptTreeAcl()) === "invalid") logger.error(INVALID_ACL_RECORD);
      await daemon.start();
    } catch (error) {
      metrics?.stop();
      await zk.close();
      if (error instanceof DuplicateHostError) throw new UsageError(error.message);
      throw error;
    }
    await stopped;
    metrics?.stop();
    await zk.close();
    logger.info("agent stopped", { host });
    return ExitCode.ok;
  },
};

/** The agent's /metrics (AgentMetrics), fed by its ZooKeeper connection states too. */
function serveAgentMetrics(
  address: ListenAddress,
  typed: string,
  zk: ZkClient,
  logger: Logger,
): { observer: AgentMetrics; stop: () => void } {
  const registry = new Registry();
  const observer = new AgentMetrics(registry, { version: VERSION, commit: COMMIT });
  observer.connection("connected");
  const offState = zk.onState((state) => observer.connection(state));
  const server = listen(address, `--metrics-listen ${typed}`, (request) =>
    new URL(request.url).pathname === "/metrics"
      ? new Response(registry.render(), { headers: { "content-type": CONTENT_TYPE } })
      : new Response("not found: the metrics are at /metrics\n", { status: 404 }),
  );
  logger.info("metrics served", { url: `${serverUrl(server)}/metrics` });
  return {
    observer,
    stop: () => {
      offState();
      void server.stop(true);
    },
  };
}

/** First SIGTERM/SIGINT: graceful stop. A second one: kill running deploys, then stop. */
async function untilSignalled(ctx: CommandContext, daemon: Agent, warn: (m: string) => void): Promise<void> {
  let signals = 0;
  let stopping: Promise<void> | undefined;
  await new Promise<void>((resolve) => {
    const onSignal = (): void => {
      signals += 1;
      if (signals === 1) {
        stopping = daemon.stop().then(resolve);
      } else {
        warn("second signal: killing running deploys");
        daemon.kill();
      }
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    ctx.signal.addEventListener("abort", onSignal, { once: true });
  });
  await stopping;
}

/**
 * `<state dir>/<host>`, created (0700) now: a path that cannot be a directory (a file, no
 * permission) is a usage error naming the setting as given, not an internal error later.
 */
function createStateDir(
  given: { value: string | undefined; source: string },
  env: Record<string, string | undefined>,
  host: string,
): string {
  if (given.value === "") throw new UsageError(`invalid ${given.source} "": give a directory`);
  const base = given.value ?? defaultStateDir(env);
  const dir = join(base, host);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code ?? String(error);
    const named =
      given.value === undefined ? `the default state directory ${quote(base)} (set --state-dir)` : `${given.source} ${quote(base)}`;
    throw new UsageError(`invalid ${named}: cannot create ${quote(dir)} (${why})`);
  }
  return dir;
}

/** systemd's StateDirectory=, else the conventional place for the user we run as. */
function defaultStateDir(env: Record<string, string | undefined>): string {
  if (env.STATE_DIRECTORY) return env.STATE_DIRECTORY.split(":")[0] ?? env.STATE_DIRECTORY;
  if (process.getuid?.() === 0) return "/var/lib/conveyor";
  return join(env.XDG_STATE_HOME ?? join(env.HOME ?? homedir(), ".local", "state"), "conveyor");
}
