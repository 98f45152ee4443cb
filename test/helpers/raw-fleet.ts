// What a FleetReader would have read, written as a table, for the pure tests of
// src/apps/fleet-view.ts and src/apps/rollout-wait.ts. Typical use:
//
//   const app = appView({ hosts: { a: ["current", "1.0"] }, agents: { a: {} }, failures: [`${R}-a`] });

import type { AppSpec } from "../../src/config/app-spec.ts";
import type { AgentInfo, HostStatus, StoredHostState } from "../../src/config/payloads.ts";
import { type AppView, type RawApp, type RawFleet, buildFleetStatus } from "../../src/apps/fleet-view.ts";
import { SAMPLE_SPEC } from "./sample-spec.ts";

/** The rollout of SAMPLE_SPEC (version 1.0) and an older one. */
export const R = SAMPLE_SPEC.rolloutId;
export const OLD = "rold00000";
export const AT = "2026-11-24T20:00:00.000Z";

/** A host's report: `state version` of rollout R, or of `rolloutId`. */
export type Report = [state: StoredHostState, version: string, rolloutId?: string];

export interface FleetFixture {
  spec?: Partial<AppSpec>;
  /** Status nodes under /apps/web/hosts. */
  hosts?: Record<string, Report>;
  /** Live agents (/agents) and their groups; `apps` is their local allowlist. */
  agents?: Record<string, { groups?: string[]; apps?: string[] }>;
  /** Queue tickets the hosts reported with their status (agents report one while queued). */
  tickets?: Record<string, number>;
  /** Names under /apps/web/failures. */
  failures?: string[];
}

export function hostStatus([state, version, rolloutId = R]: Report): HostStatus {
  return { state, version, target: SAMPLE_SPEC.version, rolloutId, since: AT, updatedAt: AT };
}

export function agentInfo({ groups = [], apps }: { groups?: string[]; apps?: string[] }): AgentInfo {
  return { groups, ...(apps ? { apps } : {}), agentVersion: "0.1.0", pid: 42, startedAt: AT };
}

export function rawFleet(f: FleetFixture): RawFleet {
  const app: RawApp = {
    name: "web",
    spec: { value: { ...SAMPLE_SPEC, ...f.spec } },
    hosts: Object.entries(f.hosts ?? {}).map(([host, report]) => {
      const ticket = f.tickets?.[host];
      return { host, status: { value: { ...hostStatus(report), ...(ticket === undefined ? {} : { ticket }) } } };
    }),
    failures: f.failures ?? [],
  };
  return { apps: [app], agents: Object.entries(f.agents ?? {}).map(([host, a]) => ({ host, info: { value: agentInfo(a) } })) };
}

/** The view of app "web" (SAMPLE_SPEC with `spec` on top). */
export function appView(f: FleetFixture): AppView {
  const app = buildFleetStatus(rawFleet(f)).apps[0];
  if (!app) throw new Error("no app view");
  return app;
}
