// The fixture of the rollout CLI tests (test/cli/rollouts-*.test.ts): in-process agents on a
// fresh chroot of the file's ZooKeeper, the compiled binary run as a given actor, and the app's
// status read back through the binary. Typical use:
//
//   const zookeeper = useZooKeeper();
//   useCli();
//   const { setup, cli, warmUp, appStatus } = useRolloutFixture(zookeeper);
//   test("...", async () => {
//     const s = await setup("pause", 3);             // agents h1..h3 on their own chroot
//     expectOk(await cli(s.connect, ["app", "pause", "web"]));
//   });
//
// useRolloutFixture registers an afterEach that stops every live process (helpers/pty.ts) and
// the fleet the test set up.

import { afterEach, expect } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readFleetStatus } from "../../src/apps/fleet-status.ts";
import type { AppView, FleetStatus } from "../../src/apps/fleet-view.ts";
import { AgentEvents } from "./agent-events.ts";
import { type CliResult, show, runCli } from "../harness/cli.ts";
import { type FleetAgent, InProcessFleet } from "./in-process-fleet.ts";
import { stopAllLive } from "./pty.ts";
import { waitFor } from "../harness/wait.ts";
import type { ZooKeeperFixture } from "../harness/zookeeper.ts";

export interface RolloutSetup {
  /** The chroot's connect string ("127.0.0.1:PORT/t-<prefix>-…"). */
  connect: string;
  fleet: InProcessFleet;
  agents: FleetAgent[];
  /** The deploy log every deploy appends start/end lines to (helpers/deploy-log.ts). */
  log: string;
  /** Everything the agents logged (debug included), to wait for a decision instead of sleeping. */
  events: AgentEvents;
}

export interface RolloutFixtureOptions {
  /** CONVEYOR_ACTOR of every cli() call that passes no environment of its own; default "ops". */
  actor?: string;
}

export interface RolloutFixture {
  /** A fresh chroot with `hosts` in-process agents h1..hN (stopped by the afterEach). */
  setup(prefix: string, hosts: number): Promise<RolloutSetup>;
  /**
   * Runs the binary against `connect` (45 s hard timeout). `env` replaces the default
   * { CONVEYOR_ACTOR: actor }, so a test can run without any actor variable.
   */
  cli(connect: string, args: string[], env?: Record<string, string>): Promise<CliResult>;
  /**
   * Creates the app "web" at `version` on hosts that already run it (VERSION written), without
   * --wait, and polls until every host reports current for that rollout, so that the rollout
   * under test runs over hosts that have all reported. (A --wait on an app's very first rollout
   * can end early: see the FleetReader race exposed by the regression tests in
   * rollouts-wait.test.ts.)
   */
  warmUp(s: RolloutSetup, version: string, extra: string[]): Promise<void>;
  /** The app's view in `status <app> --json` (the binary); the command must exit 0. */
  appStatus(connect: string, app: string): Promise<AppView>;
}

/** Registers the afterEach that stops the live processes and the fleet; returns the helpers. */
export function useRolloutFixture(zookeeper: ZooKeeperFixture, options: RolloutFixtureOptions = {}): RolloutFixture {
  const defaultEnv: Record<string, string> = { CONVEYOR_ACTOR: options.actor ?? "ops" };
  let fleet: InProcessFleet | undefined;
  afterEach(async () => {
    await stopAllLive();
    await fleet?.stopAll();
    fleet = undefined;
  });

  const cli = (connect: string, args: string[], env: Record<string, string> = defaultEnv): Promise<CliResult> =>
    runCli(["--zk", connect, ...args], { env, timeoutMs: 45_000 });

  return {
    async setup(prefix, hosts) {
      const connect = zookeeper.withChroot(prefix);
      const events = new AgentEvents();
      fleet = new InProcessFleet({ connectString: connect, logger: events });
      const agents = await fleet.startMany("h", hosts);
      return { connect, fleet, agents, log: join(fleet.root, "deploys.log"), events };
    },

    cli,

    async warmUp(s, version, extra) {
      for (const a of s.agents) writeFileSync(join(a.dir, "VERSION"), `${version}\n`);
      expectOk(await cli(s.connect, ["app", "create", "web", version, ...extra]));
      await waitFor(
        async () => {
          const view = await peek(s, "web");
          return (
            view?.hosts.length === s.agents.length &&
            view.hosts.every((h) => h.state === "current" && h.version === version && h.rolloutId === view.rolloutId)
          );
        },
        15_000,
        `every host current on ${version}`,
      );
    },

    async appStatus(connect, app) {
      const r = await cli(connect, ["status", app, "--json"]);
      expectOk(r);
      const view = (JSON.parse(r.stdout) as FleetStatus).apps.find((a) => a.name === app);
      if (!view) throw new Error(`status --json has no app ${app}: ${r.stdout}`);
      return view;
    },
  };
}

/** Library read for bounded polling (fast); assertions use appStatus (the binary). */
export async function peek(s: RolloutSetup, app: string): Promise<AppView | undefined> {
  return (await readFleetStatus(await s.fleet.client(), app)).apps[0];
}

export { show };

export function expectOk(r: CliResult): void {
  expect(r.code, show(r)).toBe(0);
}

/** The VERSION file of each agent, read right now ("" when missing). */
export function versionFiles(agents: FleetAgent[]): Record<string, string> {
  return Object.fromEntries(
    agents.map((a) => {
      const path = join(a.dir, "VERSION");
      return [a.host, existsSync(path) ? readFileSync(path, "utf8").trim() : ""];
    }),
  );
}

/** What versionFiles(agents) reads when every agent runs `version`. */
export function allOn(agents: FleetAgent[], version: string): Record<string, string> {
  return Object.fromEntries(agents.map((a) => [a.host, version]));
}
