import type { ZkClient } from "../zk/client.ts";
import { FleetWatch } from "./fleet-watch.ts";
import { type AppView, type HostView, hostDone, hostFailed, rolloutVerdict } from "./fleet-view.ts";

export type RolloutOutcome =
  /** Every targeted host has a verdict and at least one runs the version (hosts that failed
   *  within the budget are listed). */
  | { kind: "converged"; view: AppView; failed: HostView[] }
  /** Every targeted host has a verdict and none runs the version: all failed, within the budget. */
  | { kind: "failed"; view: AppView; failed: HostView[] }
  /** Failures exceeded the budget: the rollout stopped admitting. */
  | { kind: "halted"; view: AppView; failed: HostView[] }
  /** Time ran out; `waiting` never finished (offline ones are marked so), `failed` failed. */
  | { kind: "timeout"; view: AppView; waiting: WaitingHost[]; failed: HostView[] }
  /** Someone published another rollout meanwhile. */
  | { kind: "superseded"; view: AppView }
  | { kind: "deleted" }
  /** When the wait started, no live agent served the app: no targeted host online (none ever
   *  reported, or every one is offline) and no live agent of its groups still to report. */
  | { kind: "no-hosts"; view: AppView };

export interface WaitingHost {
  host: string;
  state: HostView["state"] | "not reported";
  version: string;
}

export interface WaitOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  /** Every change to the app, as it happens (for progress output). */
  onUpdate?: (view: AppView) => void;
}

function failedThisRollout(view: AppView): HostView[] {
  return view.hosts.filter((h) => hostFailed(h, view));
}

/**
 * Decides whether the rollout has ended; undefined while it is still going. `starting`: this
 * is the first look of a wait — only then does "no live agent serves the app" end it, so an
 * agent restarting in the middle of a wait (gone for a moment) never does.
 */
export function evaluateRollout(
  view: AppView | undefined,
  rolloutId: string,
  options: { starting?: boolean } = {},
): RolloutOutcome | undefined {
  if (!view) return { kind: "deleted" };
  if (view.rolloutId !== rolloutId) return { kind: "superseded", view };
  const failed = failedThisRollout(view);
  // Halted counts even while paused: pausing a bad rollout must not hide the halt from --wait.
  if (view.halted) {
    // The failure node is written just before the host's status: wait for the status too, so
    // the report can say why (an offline host will not write it).
    const reported = view.failedHosts.every((name) => {
      const host = view.hosts.find((h) => h.host === name);
      return host === undefined || host.state === "offline" || failed.includes(host);
    });
    return reported ? { kind: "halted", view, failed } : undefined;
  }
  // The same rule as the app state `status` shows (fleet-view.ts appState).
  const verdict = rolloutVerdict(view.hosts, view.pendingAgents.length, view);
  if (verdict !== undefined) return { kind: verdict, view, failed };
  // Nobody will ever report: waiting would only run into --wait-timeout (30 min by default).
  const served = view.pendingAgents.length > 0 || view.hosts.some((h) => h.online);
  return options.starting && !served ? { kind: "no-hosts", view } : undefined;
}

function waitingHosts(view: AppView): WaitingHost[] {
  const failed = failedThisRollout(view);
  return [
    ...view.hosts
      .filter((h) => !hostDone(h, view) && !failed.includes(h))
      .map((h): WaitingHost => ({ host: h.host, state: h.state, version: h.version })),
    ...view.pendingAgents.map((host): WaitingHost => ({ host, state: "not reported", version: "" })),
  ];
}

/**
 * Follows one rollout with watches (no polling) until it converges, halts, is superseded or
 * deleted, or `timeoutMs` passes. Survives connection blips: the reader reloads everything
 * after a reconnect. Rejects only on abort or on a lasting ZooKeeper failure.
 */
export async function waitForRollout(zk: ZkClient, app: string, rolloutId: string, options: WaitOptions): Promise<RolloutOutcome> {
  const watch = new FleetWatch(zk, { app });
  const deadline = Date.now() + options.timeoutMs;
  try {
    await watch.load();
    for (let starting = true; ; starting = false) {
      const view = watch.snapshot().apps[0];
      if (view) options.onUpdate?.(view);
      const outcome = evaluateRollout(view, rolloutId, { starting });
      if (outcome) return outcome;
      // Only after the verdict: a change that ended the rollout just as time ran out still counts.
      if (view && Date.now() >= deadline) return { kind: "timeout", view, waiting: waitingHosts(view), failed: failedThisRollout(view) };
      const woke = await watch.waitForChange({ deadline, signal: options.signal });
      if (woke === "aborted") throw options.signal?.reason ?? new Error("aborted");
    }
  } finally {
    watch.stop();
  }
}
