import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, type AgentConfig } from "../../src/agent/agent.ts";
import { type CommandRunner, ShellCommandRunner } from "../../src/agent/command-runner.ts";
import { type Logger, silentLogger } from "../../src/agent/logger.ts";
import { publishApp, type AppAttributes } from "../../src/apps/publish.ts";
import type { MutationContext } from "../../src/apps/mutate-app.ts";
import { ZkClient } from "../../src/zk/client.ts";

export interface FleetAgent {
  host: string;
  dir: string;
  zk: ZkClient;
  agent: Agent;
  /** Graceful stop + close the session (ephemeral nodes vanish at once). */
  stop(): Promise<void>;
}

export interface FleetOptions {
  connectString: string;
  sessionTimeoutMs?: number;
  runner?: (dir: string) => CommandRunner;
  logger?: Logger;
}

export const testActor: MutationContext = { actor: "test", now: () => new Date() };

/**
 * Agents in this process, each with its own ZooKeeper session and its own directory standing
 * in for a server (commands run there). Everything is stopped by `stopAll`.
 */
export class InProcessFleet {
  readonly root = mkdtempSync(join(tmpdir(), "conveyor-fleet-"));
  readonly agents: FleetAgent[] = [];
  private admin: ZkClient | undefined;

  constructor(private readonly options: FleetOptions) {}

  async start(host: string, config: Partial<AgentConfig> = {}): Promise<FleetAgent> {
    const dir = join(this.root, host);
    mkdirSync(dir, { recursive: true });
    const zk = await ZkClient.connect({
      connectString: this.options.connectString,
      sessionTimeoutMs: this.options.sessionTimeoutMs ?? 2_000,
      connectTimeoutMs: 10_000,
    });
    const runner = this.options.runner?.(dir) ?? new ShellCommandRunner(dir);
    const agent = new Agent(
      { host, groups: [], agentVersion: "test", pid: process.pid, ...config },
      { zk, runner, logger: this.options.logger ?? silentLogger, now: () => new Date() },
    );
    await agent.start();
    const member: FleetAgent = {
      host,
      dir,
      zk,
      agent,
      stop: async () => {
        await agent.stop();
        await zk.close();
      },
    };
    this.agents.push(member);
    return member;
  }

  async startMany(prefix: string, count: number, config: Partial<AgentConfig> = {}): Promise<FleetAgent[]> {
    const started: FleetAgent[] = [];
    for (let i = 1; i <= count; i++) started.push(await this.start(`${prefix}${i}`, config));
    return started;
  }

  /** A separate admin session for publishing and reading, like the CLI would use. */
  async client(): Promise<ZkClient> {
    this.admin ??= await ZkClient.connect({ connectString: this.options.connectString, connectTimeoutMs: 10_000 });
    return this.admin;
  }

  async publish(app: string, version: string, attributes: AppAttributes = {}): Promise<void> {
    await publishApp(await this.client(), app, version, attributes, testActor);
  }

  /** Tears everything down fast: running deploys are killed (as on a second SIGTERM). */
  async stopAll(): Promise<void> {
    await Promise.all(
      this.agents.splice(0).map((a) => {
        a.agent.kill();
        return a.stop().catch(() => undefined);
      }),
    );
    await this.admin?.close();
    this.admin = undefined;
    rmSync(this.root, { recursive: true, force: true });
  }
}
