import type { ZkClient } from "../zk/client.ts";
import { FleetReader } from "./fleet-reader.ts";
import type { FleetStatus } from "./fleet-view.ts";

export type { AgentView, AppState, AppView, FleetStatus, HostState, HostView } from "./fleet-view.ts";

/** One snapshot of the fleet (or of one app), no watches. */
export async function readFleetStatus(zk: ZkClient, app?: string): Promise<FleetStatus> {
  const reader = new FleetReader(zk, app === undefined ? {} : { app });
  await reader.load();
  return reader.snapshot();
}
