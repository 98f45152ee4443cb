/**
 * The ZooKeeper layout (docs/ARCHITECTURE.md), relative to the chroot. Names passed in are already
 * validated (app and host ids never contain "/"), so joining is safe.
 */
export const APPS = "/apps";
export const AGENTS = "/agents";
/** The two digest identities of a locked tree, written by `acl init`. */
export const ACL_INFO = "/acl";

/** The directories every app node owns, created with the app. */
export const APP_DIRS = ["lock", "leases", "hosts", "failures", "history", "canary", "done"] as const;
export type AppDir = (typeof APP_DIRS)[number];

export const appPath = (app: string): string => `${APPS}/${app}`;
export const appDir = (app: string, dir: AppDir): string => `${appPath(app)}/${dir}`;
export const lockDir = (app: string): string => appDir(app, "lock");
export const leasesDir = (app: string): string => appDir(app, "leases");
export const hostsDir = (app: string): string => appDir(app, "hosts");
export const hostStatusPath = (app: string, host: string): string => `${hostsDir(app)}/${host}`;
export const failuresDir = (app: string): string => appDir(app, "failures");
export const failurePath = (app: string, rolloutId: string, host: string): string => `${failuresDir(app)}/${rolloutId}-${host}`;
/** Canary admissions: `<rolloutId>-<host>`, created with the lease while a canary is open. */
export const canaryDir = (app: string): string => appDir(app, "canary");
export const canaryMarkerPath = (app: string, rolloutId: string, host: string): string => `${canaryDir(app)}/${rolloutId}-${host}`;
export const historyDir = (app: string): string => appDir(app, "history");
/** Hosts that completed a rollout (`<rolloutId>-<host>`), counted by the slot ramp. */
export const doneDir = (app: string): string => appDir(app, "done");
/** One directory per rollout under done/: the slot ramp counts a rollout's completions from the
 *  directory's child count (one small read), not by listing every marker. */
export const doneRolloutDir = (app: string, rolloutId: string): string => `${doneDir(app)}/${rolloutId}`;
export const doneMarkerPath = (app: string, rolloutId: string, host: string): string => `${doneRolloutDir(app, rolloutId)}/${host}`;
/** The host a per-rollout marker (`<rolloutId>-<host>`: failures, canary; done before it had a
 *  directory per rollout) names; a rollout id has no "-". */
export function markerHost(name: string): string | undefined {
  const dash = name.indexOf("-");
  return dash === -1 ? undefined : name.slice(dash + 1);
}
export const historyPrefix = (app: string): string => `${historyDir(app)}/h-`;
export const agentPath = (host: string): string => `${AGENTS}/${host}`;

/** Sub-directories every app node owns; created with the app. */
export const appSubdirs = (app: string): string[] => APP_DIRS.map((dir) => appDir(app, dir));

/** What a chroot-relative path is in the layout: the inverse of the builders above. */
export type LayoutNode =
  | { kind: "root" | "apps" | "agents" | "aclInfo" | "other" }
  | { kind: "agent"; host: string }
  | { kind: "app"; app: string }
  | { kind: "appDir"; app: string; dir: AppDir }
  /** A child of an app directory: hosts/<host>, lock/<node>, failures/<rolloutId>-<host>, …
   *  and done/<rolloutId>/<host> (name `<rolloutId>/<host>`). */
  | { kind: "appEntry"; app: string; dir: AppDir; name: string };

export function layoutNode(path: string): LayoutNode {
  const parts = path.split("/").filter(Boolean);
  const [top, name, dir, entry, ...deeper] = parts;
  if (top === undefined) return { kind: "root" };
  if (`/${top}` === ACL_INFO && name === undefined) return { kind: "aclInfo" };
  if (`/${top}` === AGENTS) {
    if (name === undefined) return { kind: "agents" };
    return dir === undefined ? { kind: "agent", host: name } : { kind: "other" };
  }
  if (`/${top}` !== APPS) return { kind: "other" };
  if (name === undefined) return { kind: "apps" };
  if (dir === undefined) return { kind: "app", app: name };
  if (!(APP_DIRS as readonly string[]).includes(dir)) return { kind: "other" };
  const known = dir as AppDir;
  if (deeper.length > 0) {
    return known === "done" && deeper.length === 1
      ? { kind: "appEntry", app: name, dir: known, name: `${entry}/${deeper[0]}` }
      : { kind: "other" };
  }
  return entry === undefined ? { kind: "appDir", app: name, dir: known } : { kind: "appEntry", app: name, dir: known, name: entry };
}

/**
 * Whether `name` can be one segment of a ZooKeeper path: what the server accepts (PathUtils):
 * not empty, not "." or "..", no "/", no control characters, no surrogates or private use.
 */
export function isZnodeName(name: string): boolean {
  return name !== "" && name !== "." && name !== ".." && !/[/\u0000-\u001f\u007f-\u009f\ud800-\uf8ff\ufff0-\uffff]/.test(name);
}

/** The last segment of a path. */
export const basename = (path: string): string => path.slice(path.lastIndexOf("/") + 1);

/** Sequence suffix of a sequential node name ("host-sid-0000000012" → 12), or NaN. */
export function sequenceOf(name: string): number {
  // Called for every name of a queue on every wake-up: no regex, no allocation but the slice.
  if (name.length < 10) return Number.NaN;
  const digits = name.slice(-10);
  for (let i = 0; i < 10; i++) {
    const c = digits.charCodeAt(i);
    if (c < 48 || c > 57) return Number.NaN;
  }
  return Number(digits);
}
