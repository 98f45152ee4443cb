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

/** Reads and validates an app; AppNotFoundError when missing, InvalidDataError when corrupt. */
export async function readApp(zk: ZkClient, app: string): Promise<StoredApp> {
  const path = appPath(app);
  try {
    const { data, stat } = await zk.get(path);
    return { spec: decodeZnode(AppSpec, data, path), stat };
  } catch (error) {
    if (isNoNode(error)) throw new AppNotFoundError(app);
    throw error;
  }
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
