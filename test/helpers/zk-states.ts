// Recording the connection states a ZkClient reports (connected, suspended, reconnected, lost, …),
// with when each came and the session id the client had then. Typical use:
//
//   const log = recordStates(client);
//   const t0 = performance.now();
//   proxy.cut();
//   const suspended = await waitForState(log, "suspended", t0, 2_000);
//   expect(firstState(log, "lost")).toBeUndefined();

import type { ConnectionState, ZkClient } from "../../src/zk/client.ts";
import { waitFor } from "../harness/wait.ts";

export interface StateRecord {
  state: ConnectionState;
  /** performance.now() when the client reported it. */
  at: number;
  sessionId: string;
}

/** Every state the client reports from now on, with when and the session id it had at that moment. */
export function recordStates(client: ZkClient): StateRecord[] {
  const log: StateRecord[] = [];
  client.onState((state) => log.push({ state, at: performance.now(), sessionId: client.sessionId }));
  return log;
}

/** The first record of `state` after `after` (a performance.now() instant; default: any). */
export function firstState(log: readonly StateRecord[], state: ConnectionState, after = -Infinity): StateRecord | undefined {
  return log.find((r) => r.state === state && r.at > after);
}

/** Waits for `state` to be reported after `after` (a performance.now() instant). */
export async function waitForState(
  log: readonly StateRecord[],
  state: ConnectionState,
  after: number,
  timeoutMs: number,
): Promise<StateRecord> {
  return await waitFor(() => firstState(log, state, after), timeoutMs, `the client to report ${state}`, 10);
}
