// The demo behind ./scripts/demo (which installs what is missing and builds dist/conveyor first).
//
//   bun scripts/demo.ts [--hosts N] [--slots S] [--deploy-seconds D] [--ready-seconds R] [--tls] [--keep]
//
// A ZooKeeper on a free loopback port, N agents (dist/conveyor agent, hosts web-1..web-N), each
// in its own directory standing in for a server (VERSION there is the installed version,
// agent.log the agent's log). Each "service" needs a moment after its deploy before it is ready
// (READY_AT there), and the app has a health gate: a host keeps its slot until its health check
// has passed for the bake time, so the next host starts only once this one serves again. Then
// the product shows itself: `app create demo 1.0 … --wait`, whose progress output is the live
// view of the staggered rollout, `status demo`, and the same for 1.1 (a plain publish keeps
// every other attribute).
//
// --tls: the README's "Production hardening", end to end. openssl makes a CA and certificates
// (ZooKeeper's, "CN=ci" for the CLI, "CN=agent" for the agents); every client connects to
// ZooKeeper's secureClientPort with its certificate; `conveyor keygen` makes the release key;
// `acl init` locks the tree to the two certificate subjects; the agents run only releases
// signed with that key, and every publish is signed. The CLI's and the agents' settings are
// config files, as in production.
//
// Everything it starts is stopped by PID — at the end, on error and on SIGINT/SIGTERM/SIGHUP:
// agents first (SIGTERM: they finish or stop their deploy and close their sessions while
// ZooKeeper still runs; SIGKILL after 10 s), then ZooKeeper, then its directories. A second
// signal kills everything at once. ZooKeeper runs in its own session (detached), so a Ctrl-C in
// the terminal reaches the demo, the agents and the CLI, never the server they need to shut down.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { shellQuote } from "../src/agent/placeholders.ts";
import { type AgentProcess, startAgent } from "../test/harness/agent-process.ts";
import { type Pki, makePki } from "../test/harness/certs.ts";
import { ensureBinary } from "../test/harness/cli.ts";
import { signalPid } from "../test/harness/processes.ts";
import { type ZooKeeperServer, freePort, startZooKeeper } from "../test/harness/zookeeper.ts";

const DIST = join(resolve(import.meta.dir, ".."), "dist", "conveyor");
const CHROOT = "/conveyor-demo";
const APP = "demo";
const AGENTS_READY_MS = 20_000;
const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

const USAGE = `usage: ./scripts/demo [--hosts N] [--slots S] [--deploy-seconds D] [--ready-seconds R] [--tls] [--keep]
  --hosts N           agents (servers) to start, 1-50 (default 5)
  --slots S           hosts that may deploy at once (default 2)
  --deploy-seconds D  how long each deploy takes, 0.1-60 (default 1)
  --ready-seconds R   how long a service needs after its deploy to become ready, 0-60 (default 1)
  --tls               mutual TLS to ZooKeeper, x509 ACLs and signed releases (README: Production hardening)
  --keep              after the rollouts, keep ZooKeeper and the agents running until Ctrl-C`;

/** The health gate's bake: a host counts as current once healthy this long. */
const MIN_HEALTHY = "1s";

type Options = { hosts: number; slots: number; deploySeconds: number; readySeconds: number; tls: boolean; keep: boolean };

class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
  }
}

function parseOptions(argv: string[]): Options | "help" {
  const { values } = parseArgs({
    args: argv,
    options: {
      hosts: { type: "string", default: "5" },
      slots: { type: "string", default: "2" },
      "deploy-seconds": { type: "string", default: "1" },
      "ready-seconds": { type: "string", default: "1" },
      tls: { type: "boolean", default: false },
      keep: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return "help";
  const number = (flag: string, text: string, pattern: RegExp, min: number, max: number): number => {
    const value = Number(text);
    if (!pattern.test(text) || value < min || value > max)
      throw new Error(`${flag}: expected a number from ${min} to ${max}, got "${text}"`);
    return value;
  };
  return {
    hosts: number("--hosts", values.hosts, /^\d+$/, 1, 50),
    slots: number("--slots", values.slots, /^\d+$/, 1, 1_000),
    deploySeconds: number("--deploy-seconds", values["deploy-seconds"], /^\d+(\.\d+)?$/, 0.1, 60),
    readySeconds: number("--ready-seconds", values["ready-seconds"], /^\d+(\.\d+)?$/, 0, 60),
    tls: values.tls,
    keep: values.keep,
  };
}

// ---------------------------------------------------------------------------------------------
// What the demo started, so that every way out stops it.

const started = {
  zk: undefined as ZooKeeperServer | undefined,
  agents: [] as AgentProcess[],
  cli: undefined as Bun.Subprocess | undefined,
  dashboard: undefined as Bun.Subprocess | undefined,
  root: undefined as string | undefined,
};

let interruptedBy: NodeJS.Signals | undefined;
let interrupt: (error: Interrupted) => void = () => undefined;
/** Rejects at the first signal: every wait races it, so a Ctrl-C never waits out a timeout. */
const interrupted = new Promise<never>((_, reject) => (interrupt = reject));
interrupted.catch(() => undefined); // rejected when nobody is waiting: not an unhandled error

function installSignalHandlers(): void {
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      if (interruptedBy !== undefined) {
        console.error(`\ndemo: second ${sig}: killing everything now`);
        process.exit(128 + (SIGNAL_NUMBERS[sig] ?? 1)); // the exit hooks below SIGKILL by PID
      }
      interruptedBy = sig;
      if (started.cli) signalPid(started.cli.pid, "SIGTERM");
      interrupt(new Interrupted(sig));
    });
  }
  // The last resort on any way out (second signal, a crash): synchronous SIGKILLs by PID. The
  // agents have their own (test/harness/agent-process.ts), which also kills their deploys.
  process.on("exit", () => {
    if (started.cli) signalPid(started.cli.pid, "SIGKILL");
    if (started.dashboard) signalPid(started.dashboard.pid, "SIGKILL");
    if (started.zk) {
      started.zk.kill("SIGKILL");
      rmSync(started.zk.dataDir, { recursive: true, force: true });
    }
    if (started.root) rmSync(started.root, { recursive: true, force: true });
  });
}

/** `promise`, or Interrupted as soon as a signal came (or at once if one already did). */
function unlessInterrupted<T>(promise: Promise<T>): Promise<T> {
  return Promise.race([promise, interrupted]);
}

async function stopEverything(): Promise<void> {
  const dashboard = started.dashboard;
  if (dashboard) {
    signalPid(dashboard.pid, "SIGTERM");
    await Promise.race([dashboard.exited, Bun.sleep(5_000)]);
    started.dashboard = undefined;
  }
  await Promise.all(started.agents.map((a) => a.stop()));
  await started.zk?.stop(); // removes its data directory
  started.zk = undefined;
  if (started.root) rmSync(started.root, { recursive: true, force: true });
  started.root = undefined;
}

// ---------------------------------------------------------------------------------------------
// Narration and the product's own commands

/** A command as a user would type it (the product's shellQuote only where a word needs it). */
function shown(words: readonly string[]): string {
  return words.map((w) => (/^[A-Za-z0-9_./:=@%+,-]+$/.test(w) ? w : shellQuote(w))).join(" ");
}

/** The compiled CLI and its global options (`--zk …`, or `--config ci.toml`); `hidden` ones
 *  (an empty --config) are not shown. */
type Cli = { binary: string; globals: readonly string[]; hidden: readonly string[] };

/** Shows and runs the compiled CLI with the demo's terminal as its output (so `--wait` draws
 *  its live progress there); throws unless it exits 0. */
async function conveyor(cli: Cli, args: readonly string[]): Promise<void> {
  if (interruptedBy) throw new Interrupted(interruptedBy);
  console.log(`\n$ ${shown(["conveyor", ...cli.globals, ...args])}`);
  const child = Bun.spawn([cli.binary, ...cli.hidden, ...cli.globals, ...args], {
    stdio: ["ignore", "inherit", "inherit"],
    env: { PATH: "/usr/bin:/bin" }, // nothing of the caller's (CONVEYOR_ZK, CONVEYOR_AUTH) leaks in
  });
  started.cli = child;
  try {
    const code = await unlessInterrupted(child.exited);
    if (code !== 0) throw new Error(`conveyor ${args.slice(0, 2).join(" ")} exited ${code}`);
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      signalPid(child.pid, "SIGTERM"); // interrupted: a waiting CLI stops at once
      await Promise.race([child.exited, Bun.sleep(5_000)]);
    }
    if (child.exitCode !== null || child.signalCode !== null) started.cli = undefined; // else the exit hook kills it
  }
}

async function main(o: Options): Promise<void> {
  const binary = await ensureBinary(); // dist/conveyor, through a hard link a rebuild cannot pull away
  const root = mkdtempSync(join(tmpdir(), "conveyor-demo-"));
  started.root = root;
  const pki = o.tls ? makePki(join(root, "pki")) : undefined;
  const serverTls = pki ? { tls: { keyStore: pki.serverKeyStore, trustStore: pki.ca } } : {};
  const zk = await startZooKeeper({ detached: true, ...serverTls }); // not raced with a signal: it must be recorded
  started.zk = zk;
  const connect = `${(pki && zk.secureConnectString) || zk.connectString}${CHROOT}`;
  // A real /etc/conveyor/conveyor.toml on this machine must not change what the demo does.
  const config: string[] = [];
  if (existsSync("/etc/conveyor/conveyor.toml")) {
    writeFileSync(join(root, "empty.toml"), "# demo: deliberately empty\n");
    config.push("--config", join(root, "empty.toml"));
  }
  const hardened = pki ? await harden(pki, root, connect, binary) : undefined;
  const hosts = Array.from({ length: o.hosts }, (_, i) => `web-${i + 1}`);
  const s = (n: number): string => (n === 1 ? "" : "s");
  console.log(
    [
      `Conveyor demo: ${o.hosts} server${s(o.hosts)}, each running \`conveyor agent\`; app "${APP}" with ${o.slots} slot${s(o.slots)}, ${o.deploySeconds} s deploys`,
      `  ZooKeeper  ${connect.slice(0, -CHROOT.length)} (pid ${zk.pid}${pki ? ", TLS only, client certificates required" : ""}), chroot ${CHROOT}`,
      `  servers    ${root}/{${hosts.join(",")}}: VERSION = installed version, agent.log = the agent's log`,
    ].join("\n"),
  );

  const cli: Cli = { binary, globals: hardened ? ["--config", hardened.ciConfig] : ["--zk", connect], hidden: hardened ? [] : config };
  if (hardened) {
    console.log(
      [
        "\nHardened (--tls): every connection is mutual TLS; the CLI is CN=ci and the agents are CN=agent (certificates in pki/);",
        `the release key ${hardened.fingerprint} signs every publish, and the agents run nothing else.`,
      ].join("\n"),
    );
    console.log(`\n$ conveyor keygen --out ${hardened.releaseKey}\n${hardened.keygenOutput.trimEnd()}`);
    console.log(`\n$ cat ${hardened.ciConfig}\n${readFileSync(hardened.ciConfig, "utf8").trimEnd()}`);
    console.log(`\n$ cat ${hardened.agentConfig}\n${readFileSync(hardened.agentConfig, "utf8").trimEnd()}`);
    await conveyor(cli, ["acl", "init", "--admin-x509", hardened.ciSubject, "--agent-x509", hardened.agentSubject]);
  }
  const agentArgs = hardened ? ["--config", hardened.agentConfig] : config;
  for (const host of hosts) {
    const dir = join(root, host);
    mkdirSync(dir);
    started.agents.push(await startAgent({ connect, hostId: host, sessionTimeout: "4s", dir, args: agentArgs }));
  }
  await unlessInterrupted(Promise.all(started.agents.map((a) => a.waitForLog(/agent started/, AGENTS_READY_MS))));
  console.log(`  agents     ${started.agents.map((a) => `${a.hostId} pid ${a.pid}`).join(", ")}: all registered`);
  const dashboardUrl = await startDashboard(cli);
  console.log(`  dashboard  ${dashboardUrl}  (open it in a browser: the rollouts below, live)`);

  const waves = Math.ceil(o.hosts / o.slots);
  const perWave = o.deploySeconds + o.readySeconds + 1;
  const waitTimeout = ["--wait", "--wait-timeout", `${Math.max(60, Math.ceil(3 * waves * perWave) + 30)}s`];
  const readyMs = Math.round(o.readySeconds * 1000);
  console.log(
    [
      `\nPublish 1.0: at most ${o.slots} host${s(o.slots)} out of service at once; the rest queue for a slot (first come, first served).`,
      `Each service needs ${o.readySeconds} s after its deploy to become ready: a host holds its slot until its health check has passed for ${MIN_HEALTHY}.`,
    ].join("\n"),
  );
  await conveyor(cli, [
    ...["app", "create", APP, "1.0", "--slots", String(o.slots)],
    ...["--get-version-cmd", "cat VERSION 2>/dev/null || true"],
    ...[
      "--deploy-cmd",
      `echo deploying %(version)s on %(host)s; sleep ${o.deploySeconds}; echo %(version)s > VERSION; echo $(( $(date +%s%3N) + ${readyMs} )) > READY_AT`,
    ],
    ...["--health-cmd", '[ "$(date +%s%3N)" -ge "$(cat READY_AT)" ]', "--health-interval", "250ms", "--min-healthy-time", MIN_HEALTHY],
    ...waitTimeout,
  ]);
  await conveyor(cli, ["status", APP]);
  console.log("\nPublish 1.1: a new rollout; slots, commands and the health gate stay as they were.");
  await conveyor(cli, ["app", "create", APP, "1.1", ...waitTimeout]);
  await conveyor(cli, ["status", APP]);

  if (o.keep) {
    const hint = (args: string): string => `\n  ${shown([DIST, ...cli.globals])} ${args}`;
    console.log(
      `\n--keep: ZooKeeper, the agents and the dashboard (${dashboardUrl}) keep running. In another terminal, try:${hint("status --watch")}` +
        `${hint(`app create ${APP} 1.2 --wait`)}${hint(`app set-slots ${APP} 3`)}\nCtrl-C here stops everything.`,
    );
    await interrupted.catch(() => undefined); // the signal is how a kept demo ends: exit 0
  }
}

/** `conveyor dashboard` on a free loopback port, as the CLI (its identity, with --tls); its URL. */
async function startDashboard(cli: Cli): Promise<string> {
  const port = await freePort();
  const child = Bun.spawn([cli.binary, ...cli.hidden, ...cli.globals, "dashboard", "--listen", `127.0.0.1:${port}`], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { PATH: "/usr/bin:/bin" },
  });
  started.dashboard = child;
  const reader = child.stderr.getReader();
  let said = "";
  const ready = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`conveyor dashboard exited: ${said.trim()}`);
      said += new TextDecoder().decode(value);
      const url = /dashboard: (http:\/\/\S+\/)/.exec(said)?.[1];
      if (url) return url;
    }
  })();
  const url = await unlessInterrupted(
    Promise.race([ready, Bun.sleep(15_000).then(() => Promise.reject(new Error("conveyor dashboard did not start in 15 s")))]),
  );
  reader.releaseLock();
  return url;
}

/**
 * --tls: the release key (made with the product's own keygen) and the config files of CI and
 * of the agents, as the README's "Production hardening" writes them.
 */
async function harden(
  pki: Pki,
  root: string,
  connect: string,
  binary: string,
): Promise<{
  ciConfig: string;
  agentConfig: string;
  ciSubject: string;
  agentSubject: string;
  releaseKey: string;
  fingerprint: string;
  keygenOutput: string;
}> {
  const releaseKey = join(pki.dir, "release.key");
  const keygen = Bun.spawnSync([binary, "keygen", "--out", releaseKey], { env: { PATH: "/usr/bin:/bin" } });
  const keygenOutput = keygen.stdout.toString();
  if (keygen.exitCode !== 0) throw new Error(`conveyor keygen exited ${keygen.exitCode}: ${keygen.stderr.toString().trim()}`);
  const fingerprint = /SHA256:\S+/.exec(keygenOutput)?.[0] ?? "?";
  const ci = pki.client("ci");
  const agent = pki.client("agent");
  const ciConfig = join(root, "ci.toml");
  writeFileSync(
    ciConfig,
    [`zk = "${connect}"`, `signKey = "${releaseKey}"`, "[tls]", `ca = "${pki.ca}"`, `cert = "${ci.cert}"`, `key = "${ci.key}"`, ""].join(
      "\n",
    ),
  );
  const agentConfig = join(root, "agent.toml");
  writeFileSync(
    agentConfig,
    [
      `zk = "${connect}"`,
      "[tls]",
      `ca = "${pki.ca}"`,
      `cert = "${agent.cert}"`,
      `key = "${agent.key}"`,
      "[agent]",
      `trustedKeys = ["${releaseKey}.pub"]`,
      "",
    ].join("\n"),
  );
  return { ciConfig, agentConfig, ciSubject: ci.subject, agentSubject: agent.subject, releaseKey, fingerprint, keygenOutput };
}

async function run(): Promise<number> {
  let options: Options | "help";
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    console.error(`demo: error: ${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
    return 2;
  }
  if (options === "help") {
    console.log(USAGE);
    return 0;
  }
  installSignalHandlers();
  let failure: unknown;
  try {
    await main(options);
  } catch (error) {
    failure = error;
  } finally {
    await stopEverything();
  }
  if (failure === undefined) {
    console.log("\ndemo: stopped the agents and ZooKeeper");
    return 0;
  }
  if (failure instanceof Interrupted) {
    console.error(`\ndemo: interrupted by ${failure.signal}; stopped the agents and ZooKeeper`);
    return 128 + (SIGNAL_NUMBERS[failure.signal] ?? 1);
  }
  console.error(`demo: error: ${failure instanceof Error ? failure.message : String(failure)}`);
  return 1;
}

process.exit(await run());
