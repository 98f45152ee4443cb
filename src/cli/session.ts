import { resolveActor } from "../config/actor.ts";
import { UsageError } from "../config/errors.ts";
import { DEFAULT_CONNECT_SOURCE, type Settings, resolveSettings } from "../config/settings.ts";
import { OperationError } from "../apps/errors.ts";
import { INVALID_ACL_RECORD } from "../apps/tree-acl.ts";
import type { MutationContext } from "../apps/mutate-app.ts";
import { ZkClient } from "../zk/client.ts";
import { enclosingConveyorTree } from "../zk/chroot-guard.ts";
import type { CommandContext, OptionSpec } from "./command.ts";
import { resolveSigningKey } from "../config/signing-keys.ts";
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
  const zk = await connectZk(ctx, settings, { operationTimeoutMs: settings.connectTimeoutMs });
  try {
    if ((await zk.adoptTreeAcl("ownIdentities")) === "invalid") ctx.io.err(`warning: ${INVALID_ACL_RECORD}`);
    return await fn(zk, settings);
  } finally {
    await zk.close();
  }
}

/**
 * The one way a command (the agent included) connects, and the one home of the chroot rules:
 * - a chroot inside a Conveyor tree (`/conveyor/apps`) is refused, exit 2, before anything is
 *   written: it would be taken for a tree of its own;
 * - a missing chroot is created only by commands that start a tree (CommandSpec.createsChroot:
 *   app create, acl init, agent); any other exits 1 naming it — a mistyped chroot must not be
 *   created silently and then reported as "no apps".
 * The client is closed again if a rule refuses.
 */
export async function connectZk(
  ctx: CommandContext,
  settings: Settings,
  options: { sessionTimeoutMs?: number; operationTimeoutMs?: number } = {},
): Promise<ZkClient> {
  const zk = await ZkClient.connect({
    connectString: settings.connectString,
    credentials: settings.credentials,
    ...(settings.tls === undefined ? {} : { tls: settings.tls }),
    connectTimeoutMs: settings.connectTimeoutMs,
    ...options,
    createChroot: false,
  });
  try {
    await checkChroot(zk, settings, ctx.createsChroot);
  } catch (error) {
    await zk.close();
    throw error;
  }
  return zk;
}

async function checkChroot(zk: ZkClient, settings: Settings, mayCreate: boolean): Promise<void> {
  if (zk.chroot === "") return; // the server's root always exists
  const source = settings.connectSource;
  const tree = await enclosingConveyorTree(zk);
  if (tree) {
    const servers = settings.connectString.trim().split("/")[0] ?? "";
    throw new UsageError(
      `the chroot ${zk.chroot} (in ${source}) lies inside the Conveyor tree at ${tree.root || "/"} (its ${tree.under}): use the Conveyor root as the chroot, e.g. --zk ${servers}${tree.root || "/"}`,
    );
  }
  if (await zk.existsOutsideChroot(zk.chroot)) return;
  if (mayCreate) return zk.ensureChroot();
  const check = source === DEFAULT_CONNECT_SOURCE ? "--zk" : source;
  throw new OperationError(`ZooKeeper has no ${zk.chroot} (the chroot in ${source}): nothing was ever created there; check ${check}`);
}

export function mutationContext(ctx: CommandContext): MutationContext {
  return { actor: resolveActor(ctx.env), now: () => new Date() };
}

/** The option of every command that writes a new release (create, rollback, retry). */
export const SIGN_KEY_OPTION: OptionSpec = {
  flag: "--sign-key <file>",
  description: "Sign the release with this Ed25519 private key (conveyor keygen); env CONVEYOR_SIGN_KEY, config signKey",
};

/** mutationContext, signing with the key of SIGN_KEY_OPTION if one is configured. Read before
 *  connecting: a bad key exits 2 with nothing written. */
export async function signingMutationContext(ctx: CommandContext): Promise<MutationContext> {
  const settings = await loadSettings(ctx);
  const signer = await resolveSigningKey(ctx.options.string("sign-key"), ctx.env, settings.file);
  return { ...mutationContext(ctx), ...(signer ? { signer } : {}) };
}
