import type { Registry } from "../metrics/prometheus.ts";
import type { DashboardState } from "./dashboard-feed.ts";
import type { HostState } from "./fleet-view.ts";
import { rolloutStartedAt } from "./mutate-app.ts";

const HOST_STATES: readonly HostState[] = ["current", "queued", "deploying", "verifying", "failed", "offline"];

/**
 * The dashboard's /metrics: the fleet as its last state shows it, set on each scrape — hosts
 * by app and state, rollout progress, halted apps, the current rollout's age, agents online,
 * and whether ZooKeeper is reachable (while it is not, the rest is as of the last read).
 */
export function registerFleetMetrics(registry: Registry, state: () => DashboardState, now: () => number = Date.now): void {
  const hosts = registry.gauge(
    "conveyor_fleet_hosts",
    "Hosts of each app by state (current, queued, deploying, verifying, failed, offline)",
  );
  const progress = registry.gauge("conveyor_fleet_rollout_progress_ratio", "Share of an app's hosts that run its current version (0 to 1)");
  const halted = registry.gauge("conveyor_fleet_app_halted", "1 while the app's rollout is halted (failures over its budget)");
  const paused = registry.gauge("conveyor_fleet_app_paused", "1 while the app is paused");
  const converged = registry.gauge("conveyor_fleet_app_converged", "1 once the app's current rollout has converged");
  const age = registry.gauge("conveyor_fleet_rollout_age_seconds", "Time since the app's current rollout was published");
  const agents = registry.gauge("conveyor_fleet_agents_online", "Agents with a live ZooKeeper session");
  const connected = registry.gauge("conveyor_fleet_zookeeper_connected", "1 while the dashboard's ZooKeeper connection is up");
  registry.onCollect(() => {
    const { fleet, zookeeper } = state();
    for (const gauge of [hosts, progress, halted, paused, converged, age]) gauge.clear();
    connected.set({}, zookeeper.state === "connected" ? 1 : 0);
    agents.set({}, fleet?.agents.length ?? 0);
    for (const app of fleet?.apps ?? []) {
      const name = { app: app.name };
      for (const s of HOST_STATES) hosts.set({ ...name, state: s }, app.counts[s]);
      const done = app.hosts.filter((h) => h.version === app.version && h.state !== "failed").length;
      progress.set(name, app.counts.total === 0 ? 0 : done / app.counts.total);
      halted.set(name, app.halted ? 1 : 0);
      paused.set(name, app.paused ? 1 : 0);
      converged.set(name, app.state === "converged" ? 1 : 0);
      const started = rolloutStartedAt(app.rolloutId);
      if (started !== undefined) age.set(name, Math.max(0, (now() - started) / 1_000));
    }
  });
}
