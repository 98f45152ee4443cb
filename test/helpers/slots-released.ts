// A host reports `current` (or `failed`) before it releases its slot — it is out of service
// until then — so a test that saw the fleet converge may read the leases a moment before the last
// one goes. This waits for them to go; a leaked lease never does, and the assertion shows it.

import { expect } from "bun:test";
import type { ZkClient } from "../../src/zk/client.ts";
import { leasesDir } from "../../src/zk/paths.ts";
import { poll } from "../harness/wait.ts";

/** Asserts that every lease of `app` is released within `timeoutMs` (5 s). */
export async function expectSlotsReleased(zk: ZkClient, app: string, timeoutMs = 5_000): Promise<void> {
  const leases = async (): Promise<string[]> => await zk.children(leasesDir(app));
  await poll(async () => (await leases()).length === 0, timeoutMs, `the leases of ${app} to be released`, 20).catch(() => undefined);
  expect(await leases()).toEqual([]);
}
