import { AppSpec } from "../config/app-spec.ts";
import { decodeZnode } from "../config/decode.ts";
import { InvalidDataError } from "../config/errors.ts";
import { NAME_PATTERN } from "../config/names.ts";
import type { NodeStat, ZkClient } from "../zk/client.ts";
import { isNoNode } from "../zk/errors.ts";
import { APPS, appPath } from "../zk/paths.ts";
import { AppNotFoundError } from "./errors.ts";

export interface StoredApp {
  spec: AppSpec;
  stat: NodeStat;
}

/**
 * The app node as stored: its validated spec, or why it is invalid with its raw payload. The
 * stat either way, so even an invalid spec can be replaced by compare-and-set. AppNotFoundError
 * when missing.
 */
export type AppNode = (StoredApp & { invalid?: undefined }) | { invalid: InvalidDataError; data: Buffer; stat: NodeStat; spec?: undefined };

export async function readAppNode(zk: ZkClient, app: string): Promise<AppNode> {
  const path = appPath(app);
  let node: { data: Buffer; stat: NodeStat };
  try {
    node = await zk.get(path);
  } catch (error) {
    if (isNoNode(error)) throw new AppNotFoundError(app);
    throw error;
  }
  try {
    return { spec: decodeZnode(AppSpec, node.data, path), stat: node.stat };
  } catch (error) {
    if (error instanceof InvalidDataError) return { invalid: error, ...node };
    throw error;
  }
}

/** Reads and validates an app; AppNotFoundError when missing, InvalidDataError when corrupt. */
export async function readApp(zk: ZkClient, app: string): Promise<StoredApp> {
  const node = await readAppNode(zk, app);
  if (node.invalid) throw node.invalid;
  return node;
}

export type ListedApp = { name: string; spec: AppSpec; error?: undefined } | { name: string; spec?: undefined; error: string };

/** Every child of /apps, sorted; invalid names and payloads are listed with the reason. */
export async function listApps(zk: ZkClient): Promise<ListedApp[]> {
  let names: string[];
  try {
    names = await zk.children(APPS);
  } catch (error) {
    if (isNoNode(error)) return [];
    throw error;
  }
  names.sort();
  return Promise.all(
    names.map(async (name): Promise<ListedApp> => {
      if (!NAME_PATTERN.test(name)) return { name, error: "invalid app name" };
      try {
        return { name, spec: (await readApp(zk, name)).spec };
      } catch (error) {
        if (error instanceof InvalidDataError) return { name, error: error.reason };
        if (error instanceof AppNotFoundError) return { name, error: "deleted while listing" };
        throw error;
      }
    }),
  );
}
