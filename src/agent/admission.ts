import { AppSpec } from "../config/app-spec.ts";
import { decodeZnode } from "../config/decode.ts";
import { InvalidDataError } from "../config/errors.ts";
import { resolveSlots } from "../config/slots.ts";
import { failuresOf } from "../apps/fleet-view.ts";
import type { ZkClient } from "../zk/client.ts";
import { appPath, failuresDir, hostsDir } from "../zk/paths.ts";
import type { Admission, ReadAdmission } from "../zk/recipes/semaphore.ts";

/**
 * How many deploys the app admits right now, read live from its node (watched by the mutex
 * holder, so set-slots, pause and resume take effect at once). Paused and halted block; "N%"
 * resolves against the number of hosts that have reported for the app.
 */
export function appAdmission(zk: ZkClient, app: string): ReadAdmission {
  return async (wake): Promise<Admission> => {
    const path = appPath(app);
    const { data } = await zk.get(path, wake);
    let spec: AppSpec;
    try {
      spec = decodeZnode(AppSpec, data, path);
    } catch (error) {
      if (error instanceof InvalidDataError) return { blocked: `invalid app spec (${error.reason})` };
      throw error;
    }
    if (spec.paused) return { blocked: "paused" };
    const failures = failuresOf(await zk.children(failuresDir(app)), spec);
    if (failures > spec.maxFailures) return { blocked: `halted (${failures} failure(s) > max ${spec.maxFailures})` };
    const hosts = typeof spec.slots === "number" ? 0 : (await zk.children(hostsDir(app))).length;
    return { limit: resolveSlots(spec.slots, hosts) };
  };
}
