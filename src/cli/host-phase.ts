import type { AppView, HostView } from "../apps/fleet-view.ts";
import { formatDuration } from "../config/durations.ts";

/**
 * What an admitted host is doing, for people: "draining", "deploying", "verifying",
 * "health: not yet healthy", "healthy 2.1s/10s", "undraining". Undefined when it is not
 * admitted (or its agent predates phases).
 */
export function phaseText(host: HostView, app: Pick<AppView, "minHealthyMs">): string | undefined {
  if (host.phase === undefined || (host.state !== "deploying" && host.state !== "verifying")) return undefined;
  if (host.phase !== "health") return host.phase;
  if (host.healthyForMs === undefined) return "health: not yet healthy";
  return `healthy ${formatDuration(host.healthyForMs)}/${formatDuration(app.minHealthyMs ?? 0)}`;
}

/** " (drained: out of rotation)" for a host whose drain-cmd ran and undrain-cmd did not. */
export function drainedNote(host: HostView): string {
  return host.drained ? " (drained: out of rotation)" : "";
}
