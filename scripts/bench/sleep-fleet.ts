import { Agent } from "../../src/agent/agent.ts";
import type { CommandRequest, CommandResult, CommandRunner } from "../../src/agent/command-runner.ts";
import type { LogFields, Logger } from "../../src/agent/logger.ts";
import { ZkClient, type ZkClientOptions } from "../../src/zk/client.ts";
import { inBatches } from "./in-batches.ts";

/**
 * Stands in for a server in benchmarks: `get-version` prints the installed version, `deploy`
 * sleeps D ms and installs the version in its argument. Everything else about the agent is
 * the real thing (its own ZooKeeper session, semaphore, status writes).
 */
export class SleepRunner implements CommandRunner {
  installed = "";

  constructor(private readonly deployMs: number) {}

  async run(request: CommandRequest): Promise<CommandResult> {
    const started = performance.now();
    const [verb, arg] = request.command.split(" ");
    if (verb === "deploy") {
      await Bun.sleep(this.deployMs);
      this.installed = (arg ?? "").replaceAll("'", "");
    }
    const out = verb === "get-version" ? this.installed : "";
    return {
      exitCode: 0,
      signal: null,
      timedOut: false,
      killed: false,
      outputTail: out,
      firstLine: out,
      durationMs: performance.now() - started,
    };
  }
}

export const SLEEP_COMMANDS = { getVersionCmd: "get-version", deployCmd: "deploy %(version)s" };

export interface FleetEvent {
  at: number;
  message: string;
  host: string;
}

/** Collects the agents' own log events with a monotonic clock (deploy started, slot released…). */
export class EventLog {
  readonly events: FleetEvent[] = [];

  logger(host: string): Logger {
    const push = (message: string, _fields?: LogFields): void => {
      this.events.push({ at: performance.now(), message, host });
    };
    return { debug: () => undefined, info: push, warn: push, error: push };
  }

  clear(): void {
    this.events.length = 0;
  }

  times(message: string): number[] {
    return this.events.filter((e) => e.message === message).map((e) => e.at);
  }
}

export interface SleepFleet {
  agents: { agent: Agent; zk: ZkClient; runner: SleepRunner }[];
  log: EventLog;
  stop(): Promise<void>;
}

/** N in-process agents, each with its own ZooKeeper session (over TLS when `tls` is given). */
export async function startSleepFleet(
  connectString: string,
  hosts: number,
  deployMs: number,
  tls?: ZkClientOptions["tls"],
): Promise<SleepFleet> {
  const log = new EventLog();
  const agents: SleepFleet["agents"] = await inBatches(hosts, 50, async (index) => {
    const host = `h${String(index + 1).padStart(4, "0")}`;
    const zk = await ZkClient.connect({
      connectString,
      sessionTimeoutMs: 30_000,
      connectTimeoutMs: 30_000,
      operationTimeoutMs: 60_000,
      ...(tls ? { tls } : {}),
    });
    const runner = new SleepRunner(deployMs);
    const agent = new Agent(
      { host, groups: [], agentVersion: "bench", pid: process.pid },
      { zk, runner, logger: log.logger(host), now: () => new Date() },
    );
    await agent.start();
    return { agent, zk, runner };
  });
  return {
    agents,
    log,
    stop: async () => {
      await Promise.all(
        agents.map(async ({ agent, zk }) => {
          agent.kill();
          await agent.stop();
          await zk.close();
        }),
      );
    },
  };
}
