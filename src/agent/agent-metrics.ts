import type { ConnectionState } from "../zk/client.ts";
import type { Registry } from "../metrics/prometheus.ts";
import type { Report } from "./host-reporter.ts";

/** What the agent tells whoever watches it (metrics); every call is cheap and never throws. */
export interface AgentObserver {
  /** A status this host is reporting for an app: queued, deploying (phase), current, failed. */
  reported(app: string, report: Report): void;
  /** Waiting in the app's slot queue, at this position (1: next). */
  waiting(app: string, position: number): void;
}

/** Phases of one app on this host, as `conveyor_agent_app_phase` labels them. */
export const AGENT_PHASES = ["idle", "queued", "draining", "deploying", "verifying", "health", "undraining"] as const;
type AgentPhase = (typeof AGENT_PHASES)[number];

/** Phases whose length is a histogram of its own. */
const TIMED: Partial<Record<AgentPhase, "deploy" | "verify" | "health">> = { deploying: "deploy", verifying: "verify", health: "health" };

/**
 * The agent's Prometheus metrics (`agent --metrics-listen`), derived from the status reports
 * the agent writes anyway, so they say exactly what ZooKeeper was told: a phase ends when the
 * next report names another, and its length goes to its histogram; an admission ends with
 * `current` (success) or `failed`.
 */
export class AgentMetrics implements AgentObserver {
  private readonly phases = new Map<string, { phase: AgentPhase; since: number; admitted: boolean }>();
  private readonly phase;
  private readonly queuePosition;
  private readonly deploys;
  private readonly durations;
  private readonly connected;
  private readonly sessionLosses;
  private readonly reconnects;

  constructor(
    registry: Registry,
    build: { version: string; commit: string },
    private readonly now: () => number = Date.now,
  ) {
    registry.gauge("conveyor_build_info", "Version and git commit of this conveyor binary").set(build, 1);
    this.phase = registry.gauge(
      "conveyor_agent_app_phase",
      "1 for the phase each app is in on this host (idle, queued, draining, deploying, verifying, health, undraining)",
    );
    this.queuePosition = registry.gauge(
      "conveyor_agent_queue_position",
      "Position in the app's slot queue while waiting (1: next; at most this many ahead: departed waiters may still be counted until the next wake-up); 0 when not waiting",
    );
    this.deploys = registry.counter(
      "conveyor_agent_deploys_total",
      "Admissions finished on this host, by app and outcome (success, failed)",
    );
    this.durations = {
      deploy: registry.histogram("conveyor_agent_deploy_duration_seconds", "Length of deploy-cmd (the deploying phase)"),
      verify: registry.histogram(
        "conveyor_agent_verify_duration_seconds",
        "Length of the checks after a deploy: get-version-cmd again and verify-cmd",
      ),
      health: registry.histogram(
        "conveyor_agent_health_duration_seconds",
        "Time in the health gate until healthy for min-healthy-time (or failed)",
      ),
    };
    this.connected = registry.gauge("conveyor_agent_zookeeper_connected", "1 while the agent's ZooKeeper connection is up, else 0");
    this.sessionLosses = registry.counter(
      "conveyor_agent_zookeeper_session_losses_total",
      "ZooKeeper sessions lost (expired): leases and queue places went with them",
    );
    this.reconnects = registry.counter(
      "conveyor_agent_zookeeper_reconnects_total",
      "Reconnections to ZooKeeper on the same session after a disconnection",
    );
    this.connected.set({}, 0);
    this.sessionLosses.touch();
    this.reconnects.touch();
  }

  connection(state: ConnectionState): void {
    this.connected.set({}, state === "connected" || state === "reconnected" ? 1 : 0);
    if (state === "lost") this.sessionLosses.inc();
    if (state === "reconnected") this.reconnects.inc();
  }

  waiting(app: string, position: number): void {
    this.queuePosition.set({ app }, position);
  }

  reported(app: string, report: Report): void {
    const next: AgentPhase =
      report.state === "queued"
        ? "queued"
        : report.state === "deploying" || report.state === "verifying"
          ? (report.phase ?? report.state)
          : "idle";
    const was = this.phases.get(app);
    const now = this.now();
    if (!was) {
      this.deploys.touch({ app, outcome: "success" });
      this.deploys.touch({ app, outcome: "failed" });
    }
    if (was && was.phase !== next) {
      const timed = TIMED[was.phase];
      if (timed) this.durations[timed].observe({ app }, (now - was.since) / 1_000);
    }
    const admitted = next !== "idle" && next !== "queued";
    if (next === "idle" && was?.admitted) this.deploys.inc({ app, outcome: report.state === "failed" ? "failed" : "success" });
    if (!was || was.phase !== next) {
      this.phases.set(app, { phase: next, since: now, admitted: admitted || (was?.admitted === true && next !== "idle") });
      for (const phase of AGENT_PHASES) this.phase.set({ app, phase }, phase === next ? 1 : 0);
    }
    if (next !== "queued") this.queuePosition.set({ app }, 0);
  }
}
