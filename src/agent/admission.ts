import { AppSpec } from "../config/app-spec.ts";
import { decodeZnode } from "../config/decode.ts";
import { InvalidDataError } from "../config/errors.ts";
import { HostStatus } from "../config/payloads.ts";
import { resolveFailureBudget } from "../config/budget.ts";
import { resolveSlots, slotLimit } from "../config/slots.ts";
import { failuresOf, rolloutHosts } from "../apps/fleet-view.ts";
import type { ZkClient } from "../zk/client.ts";
import { isNoNode } from "../zk/errors.ts";
import { appPath, canaryDir, canaryMarkerPath, doneRolloutDir, failuresDir, hostStatusPath, hostsDir, leasesDir } from "../zk/paths.ts";
import type { Admission, ReadAdmission } from "../zk/recipes/semaphore.ts";
import type { Watcher } from "../zk/watchers.ts";

/**
 * How many deploys the app admits right now, read live from its node (watched by the mutex
 * holder, so set-slots, pause, resume and promote take effect at once). Paused and halted
 * block; "N%" resolves against the number of hosts that have reported for the app. The slot
 * ramp widens the limit as hosts complete (slotLimit). While a canary is open (`--canary`, or
 * `--slot-increment 0`), only that many hosts are admitted in the rollout (each admission
 * leaves a marker, created atomically with its lease); the rest wait for `app promote`, or —
 * with canaryAuto — until every canary host reports the version as current.
 */
export function appAdmission(zk: ZkClient, app: string, host: string): ReadAdmission<AppSpec> {
  return async (wake): Promise<Admission<AppSpec>> => {
    const path = appPath(app);
    // Spec and failures in one round trip; the spec read leaves the watch.
    const [{ data }, failureNames] = await Promise.all([zk.get(path, wake), zk.children(failuresDir(app))]);
    let spec: AppSpec;
    try {
      spec = decodeZnode(AppSpec, data, path);
    } catch (error) {
      if (error instanceof InvalidDataError) return { blocked: `invalid app spec (${error.reason})` };
      throw error;
    }
    if (spec.paused) return { blocked: "paused" };
    // "N%" (slots, max-slots, the failure budget) counts the hosts that have reported for the app.
    const percent = [spec.slots, spec.maxSlots, spec.maxFailures].some((value) => typeof value === "string");
    // The directory's child count (one small read), not a listing: O(1) per admission at any fleet size.
    const hosts = percent ? ((await zk.exists(hostsDir(app)))?.numChildren ?? 0) : 0;
    const failures = failuresOf(failureNames, spec);
    const budget = resolveFailureBudget(spec.maxFailures, hosts);
    if (failures > budget) return { blocked: `halted (${failures} failure(s) > max ${budget})` };
    // The ramp counts the hosts that completed this rollout (its directory's child count: O(1));
    // they write their marker before they release their slot, so the leases watch wakes us after each.
    const ramps = spec.slotIncrement !== undefined && spec.slotIncrement > 1;
    const completed = ramps ? ((await zk.exists(doneRolloutDir(app, spec.rolloutId)))?.numChildren ?? 0) : 0;
    const limit = slotLimit(spec, hosts, completed);
    // --slot-increment 0: exactly `slots` hosts in the rollout, then wait for promote — a canary.
    const canary = spec.canary ?? (spec.slotIncrement === 0 ? resolveSlots(spec.slots, hosts) : undefined);
    // No canary: the head may admit the waiters behind it too, up to the free slots (bulk).
    if (canary === undefined || spec.promoted) return { limit, context: spec, bulk: true };
    return canaryAdmission(zk, app, host, spec, canary, limit, wake);
  };
}

async function canaryAdmission(
  zk: ZkClient,
  app: string,
  host: string,
  spec: AppSpec,
  canary: number,
  limit: number,
  wake: Watcher,
): Promise<Admission<AppSpec>> {
  const canaryHosts = rolloutHosts(await childrenOrNone(zk, canaryDir(app)), spec.rolloutId);
  if (canaryHosts.includes(host)) return { limit, context: spec };
  if (canaryHosts.length < canary) return { limit, alsoCreate: canaryMarkerPath(app, spec.rolloutId, host), context: spec };
  if (spec.canaryAuto) {
    // Wake when a canary host finishes (it releases its lease after reporting; a release
    // touches leases/: a data watch, not a listing).
    await zk.exists(leasesDir(app), wake);
    const done = await Promise.all(canaryHosts.map((h) => isCurrent(zk, app, h, spec)));
    if (done.every(Boolean)) return { limit, context: spec };
    return { blocked: `canary: waiting for ${done.filter((d) => !d).length} of ${canary} canary host(s) to finish` };
  }
  return { blocked: `canary: ${canary} host(s) admitted; waiting for "conveyor app promote ${app}"` };
}

/** Children of a marker directory; none when it is missing (re-created when needed). */
async function childrenOrNone(zk: ZkClient, path: string): Promise<string[]> {
  try {
    return await zk.children(path);
  } catch (error) {
    if (isNoNode(error)) return [];
    throw error;
  }
}

async function isCurrent(zk: ZkClient, app: string, host: string, spec: AppSpec): Promise<boolean> {
  const path = hostStatusPath(app, host);
  try {
    const status = decodeZnode(HostStatus, (await zk.get(path)).data, path);
    return status.state === "current" && status.rolloutId === spec.rolloutId && status.version === spec.version;
  } catch (error) {
    if (isNoNode(error) || error instanceof InvalidDataError) return false;
    throw error;
  }
}
