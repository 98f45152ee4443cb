/**
 * The ZooKeeper layout of DESIGN.md, relative to the chroot. Names passed in are already
 * validated (app and host ids never contain "/"), so joining is safe.
 */
export const APPS = "/apps";
export const AGENTS = "/agents";
/** The two digest identities of a locked tree, written by `acl init`. */
export const ACL_INFO = "/acl";

export const appPath = (app: string): string => `${APPS}/${app}`;
export const lockDir = (app: string): string => `${appPath(app)}/lock`;
export const leasesDir = (app: string): string => `${appPath(app)}/leases`;
export const hostsDir = (app: string): string => `${appPath(app)}/hosts`;
export const hostStatusPath = (app: string, host: string): string => `${hostsDir(app)}/${host}`;
export const failuresDir = (app: string): string => `${appPath(app)}/failures`;
export const failurePath = (app: string, rolloutId: string, host: string): string =>
  `${failuresDir(app)}/${rolloutId}-${host}`;
/** Canary admissions: `<rolloutId>-<host>`, created with the lease while a canary is open. */
export const canaryDir = (app: string): string => `${appPath(app)}/canary`;
export const canaryMarkerPath = (app: string, rolloutId: string, host: string): string =>
  `${canaryDir(app)}/${rolloutId}-${host}`;
export const historyDir = (app: string): string => `${appPath(app)}/history`;
export const historyPrefix = (app: string): string => `${historyDir(app)}/h-`;
export const agentPath = (host: string): string => `${AGENTS}/${host}`;

/** Sub-directories every app node owns; created with the app. */
export const appSubdirs = (app: string): string[] => [
  lockDir(app),
  leasesDir(app),
  hostsDir(app),
  failuresDir(app),
  historyDir(app),
  canaryDir(app),
];

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
