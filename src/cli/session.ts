import { resolveActor } from "../config/actor.ts";
import { type Settings, resolveSettings } from "../config/settings.ts";
import type { MutationContext } from "../apps/mutate-app.ts";
import { ZkClient } from "../zk/client.ts";
import type { CommandContext } from "./command.ts";
import { readGlobalFlags } from "./global-options.ts";

export function loadSettings(ctx: CommandContext): Promise<Settings> {
  return resolveSettings(readGlobalFlags(ctx.options), ctx.env);
}

/**
 * Connects, runs `fn`, always closes. Validate every argument before calling this: bad input
 * must exit 2 without touching ZooKeeper. Each request is bounded by the connect timeout, so a
 * server that dies mid-command fails the command (exit 3) instead of hanging it.
 */
export async function withZk<T>(ctx: CommandContext, fn: (zk: ZkClient, settings: Settings) => Promise<T>): Promise<T> {
  const settings = await loadSettings(ctx);
  const zk = await ZkClient.connect({
    connectString: settings.connectString,
    credentials: settings.credentials,
    connectTimeoutMs: settings.connectTimeoutMs,
    operationTimeoutMs: settings.connectTimeoutMs,
  });
  try {
    await zk.adoptTreeAcl();
    return await fn(zk, settings);
  } finally {
    await zk.close();
  }
}

export function mutationContext(ctx: CommandContext): MutationContext {
  return { actor: resolveActor(ctx.env), now: () => new Date() };
}
