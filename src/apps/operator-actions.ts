import type { AppSpec } from "../config/app-spec.ts";
import { UsageError } from "../config/errors.ts";
import type { ZkClient } from "../zk/client.ts";
import { failuresDir } from "../zk/paths.ts";
import { OperationError } from "./errors.ts";
import { type MutationContext, updateApp } from "./mutate-app.ts";
import { rolloutHosts } from "./fleet-view.ts";
import { startRollout } from "./publish.ts";
import { assertSignableBasis } from "./release-signature.ts";

/** Paused admits no new deploy; running ones finish. */
export function pauseApp(zk: ZkClient, app: string, ctx: MutationContext): Promise<AppSpec> {
  return updateApp(zk, app, ctx, (current) => ({
    spec: { ...current, paused: true },
    history: { action: "pause", to: current.version },
  }));
}

/**
 * Admits deploys again, and clears a halt: the failures of the current rollout recorded so far
 * stop counting toward its budget (the failed hosts are still not retried — `app retry` does).
 */
export function resumeApp(zk: ZkClient, app: string, ctx: MutationContext): Promise<AppSpec> {
  return updateApp(zk, app, ctx, async (current) => {
    const failures = rolloutHosts(await zk.children(failuresDir(app)), current.rolloutId).length;
    const forgiven = failures - (current.ignoredFailures ?? 0);
    return {
      spec: { ...current, paused: false, ...(failures > 0 ? { ignoredFailures: failures } : {}) },
      history: { action: "resume", to: current.version, ...(forgiven > 0 ? { detail: `cleared ${forgiven} failure(s)` } : {}) },
    };
  });
}

/**
 * A new rollout of the same version, so hosts that failed it try again. A canary that was not
 * promoted stays a canary: retrying a failed canary must not open the whole fleet.
 */
export function retryApp(zk: ZkClient, app: string, ctx: MutationContext): Promise<AppSpec> {
  return updateApp(zk, app, ctx, (current) => {
    assertSignableBasis(app, current, ctx.signer, "a signed retry");
    const canary =
      current.canary !== undefined && !current.promoted ? { canary: current.canary, canaryAuto: current.canaryAuto === true } : {};
    return {
      spec: startRollout(current, { version: current.version }, canary, ctx.now()),
      history: {
        action: "retry",
        from: current.version,
        to: current.version,
        ...(canary.canary ? { detail: `canary ${canary.canary}` } : {}),
      },
    };
  });
}

/**
 * Publishes the previous version (or `to`) as a new rollout. With `onlyFromRollout`, only if
 * that rollout is still the current one (`--rollback-on-failure`: a publish that landed after
 * the halt is not rolled back over).
 */
export function rollbackApp(
  zk: ZkClient,
  app: string,
  to: string | undefined,
  ctx: MutationContext,
  onlyFromRollout?: string,
): Promise<AppSpec> {
  return updateApp(zk, app, ctx, (current) => {
    if (onlyFromRollout !== undefined && current.rolloutId !== onlyFromRollout) {
      throw new OperationError(`app "${app}" was published again by ${current.updatedBy} (now ${current.version}); not rolling it back`);
    }
    assertSignableBasis(app, current, ctx.signer, "a signed rollback");
    const target = to ?? current.previousVersion;
    if (target === undefined || (to === undefined && target === current.version)) {
      throw new OperationError(`app "${app}" has no previous version to roll back to; use --to VERSION`);
    }
    if (target === current.version) throw new UsageError(`app "${app}" is already at version ${target}`);
    return {
      spec: startRollout(current, { version: target, previousVersion: current.version }, {}, ctx.now()),
      history: { action: "rollback", from: current.version, to: target },
    };
  });
}

/** Ends the canary phase of the current rollout: every host may now be admitted. */
export function promoteApp(zk: ZkClient, app: string, ctx: MutationContext): Promise<AppSpec> {
  return updateApp(zk, app, ctx, (current) => {
    // --slot-increment 0 admits `slots` hosts per rollout, then waits for promote: a canary too.
    const held = current.canary !== undefined ? `canary ${current.canary}` : current.slotIncrement === 0 ? "slot-increment 0" : undefined;
    if (held === undefined) throw new OperationError(`app "${app}": the current rollout has no canary to promote`);
    if (current.promoted) throw new OperationError(`app "${app}": the canary of rollout ${current.rolloutId} is already promoted`);
    return {
      spec: { ...current, promoted: true },
      history: { action: "promote", to: current.version, detail: held },
    };
  });
}
