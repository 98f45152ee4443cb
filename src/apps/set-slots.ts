import type { AppSpec } from "../config/app-spec.ts";
import type { Slots } from "../config/slots.ts";
import type { ZkClient } from "../zk/client.ts";
import { type MutationContext, updateApp } from "./mutate-app.ts";

/** Changes the width live: agents waiting for a slot watch the app node and re-count. */
export function setSlots(zk: ZkClient, app: string, slots: Slots, ctx: MutationContext): Promise<AppSpec> {
  return updateApp(zk, app, ctx, (current) => ({
    spec: { ...current, slots },
    history: { action: "set-slots", from: String(current.slots), to: String(slots) },
  }));
}
