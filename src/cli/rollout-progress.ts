import { resolveSlots } from "../config/slots.ts";
import { formatDuration } from "../config/durations.ts";
import { firstLine, printable } from "../text/printable.ts";
import { type AppView, type HostView, hostDone } from "../apps/fleet-view.ts";
import { drainedNote, phaseText } from "./host-phase.ts";
import { type Io, renderTable } from "./io.ts";

/**
 * Progress of a rollout while `--wait` blocks. In a terminal: one live line (done/total,
 * deploying, queued, failed, ETA) rewritten in place. Otherwise (CI logs): one plain line per
 * host event, so the log reads as a timeline. In both, a line when the app is paused or
 * resumed: a paused rollout admits nobody, and a wait that says nothing looks hung.
 */
export class RolloutProgress {
  private readonly seen = new Map<string, string>();
  private lastLine = "";
  private paused = false;

  constructor(
    private readonly io: Io,
    private readonly started: number,
    private readonly live: boolean,
  ) {}

  update(view: AppView): void {
    if (view.paused !== this.paused) {
      this.paused = view.paused;
      this.note(view.paused ? `${view.name} is paused: waiting for "conveyor app resume ${view.name}"` : `${view.name} resumed`);
    }
    if (this.live) {
      const line = progressLine(view, Date.now() - this.started);
      if (line !== this.lastLine) {
        this.io.write(`\r\x1b[2K${line}`);
        this.lastLine = line;
      }
      return;
    }
    for (const host of view.hosts) {
      // A phase change is an event; the healthy timer ticking is not (one line when it starts).
      const key = `${host.state}|${host.version}|${host.rolloutId}|${host.phase ?? ""}|${host.healthySince === undefined ? "" : "healthy"}`;
      if (this.seen.get(host.host) === key) continue;
      this.seen.set(host.host, key);
      this.io.out(`[+${formatSeconds(Date.now() - this.started)}] ${host.host.padEnd(12)} ${describeHost(host, view)}`);
    }
  }

  /** A line of its own: above the live line in a terminal (which is drawn again), else timed. */
  private note(text: string): void {
    if (this.live) this.io.write(`\r\x1b[2K${text}\n${this.lastLine}`);
    else this.io.out(`[+${formatSeconds(Date.now() - this.started)}] ${text}`);
  }

  /** Ends the live line so what follows starts on a fresh line. */
  finish(): void {
    if (this.live && this.lastLine) this.io.write("\n");
  }
}

export function progressLine(view: AppView, elapsedMs: number): string {
  const total = view.hosts.length + view.pendingAgents.length;
  const done = view.hosts.filter((h) => hostDone(h, view)).length;
  const deploying = view.counts.deploying + view.counts.verifying;
  const width = 20;
  const filled = total === 0 ? 0 : Math.round((done / total) * width);
  const bar = `[${"#".repeat(filled)}${"-".repeat(width - filled)}]`;
  const eta = estimateRemainingMs(view, total - done);
  return `${view.name} ${view.version} ${bar} ${done}/${total} done · ${deploying} deploying · ${view.counts.queued} queued · ${view.counts.failed} failed · ${formatSeconds(elapsedMs)} elapsed${eta === undefined ? "" : ` · ETA ${formatSeconds(eta)}`}`;
}

/** Remaining waves × the mean deploy time seen so far in this rollout. */
function estimateRemainingMs(view: AppView, remaining: number): number | undefined {
  const durations = view.hosts
    .filter((h) => h.rolloutId === view.rolloutId && h.state === "current" && h.durationMs !== undefined)
    .map((h) => h.durationMs ?? 0);
  if (durations.length === 0 || remaining <= 0) return undefined;
  const mean = durations.reduce((a, b) => a + b, 0) / durations.length;
  const slots = resolveSlots(view.slots, view.hosts.length);
  return Math.ceil(remaining / slots) * mean;
}

function describeHost(host: HostView, view: AppView): string {
  if (host.rolloutId !== view.rolloutId && host.state !== "offline")
    return `runs ${printable(host.version) || "nothing"}, not notified yet`;
  switch (host.state) {
    case "queued":
      return `queued${host.queuePosition === undefined ? "" : ` #${host.queuePosition}`} for ${host.target}`;
    case "deploying":
    case "verifying":
      return `${phaseText(host, view) ?? host.state} ${host.target}`;
    case "current":
      return `current ${host.version}${host.rolloutId === view.rolloutId && host.durationMs !== undefined ? ` (deploy took ${formatDuration(host.durationMs)})` : ""}`;
    case "failed":
      return `FAILED ${host.target}: exit ${host.exitCode ?? "-"}: ${firstLine(host.error)}${drainedNote(host)}`;
    case "offline":
      return `offline (agent not running; runs ${printable(host.version) || "nothing"})`;
  }
}

/** Final table: host, result, duration. */
export function summaryTable(view: AppView): string {
  const rows = view.hosts.map((h) => [
    h.host,
    hostDone(h, view)
      ? h.state === "offline"
        ? `current ${h.version} (offline)`
        : `current ${h.version}`
      : h.state === "failed"
        ? `FAILED (exit ${h.exitCode ?? "-"})`
        : `${h.state} (runs ${printable(h.version) || "nothing"})`,
    h.rolloutId === view.rolloutId && h.durationMs !== undefined ? formatDuration(h.durationMs) : "-",
  ]);
  for (const host of view.pendingAgents) rows.push([host, "never reported", "-"]);
  return renderTable(["HOST", "RESULT", "DURATION"], rows);
}

function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}
