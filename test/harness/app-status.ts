// The parts of `conveyor status <app> --json` the zero-downtime tests read, typed here rather
// than imported from src/: the tests check the documented output, not our own types (issue 12
// adds `phase`, `healthyForMs`, `drained` to hosts).

export interface HostStatusJson {
  host: string;
  state: string;
  version: string;
  target: string;
  online: boolean;
  rolloutId: string;
  since: string;
  queuePosition?: number;
  error?: string;
  exitCode?: number | null;
  /** Issue 12: draining | deploying | verifying | health | undraining. */
  phase?: string;
  /** Issue 12: while gated and healthy, how long the current healthy streak has lasted. */
  healthyForMs?: number;
  /** Issue 12: a host whose deploy or gate failed after its drain stays out of rotation. */
  drained?: boolean;
}

export interface AppStatusJson {
  name: string;
  version: string;
  rolloutId: string;
  state: string;
  halted: boolean;
  counts: Record<string, number>;
  hosts: HostStatusJson[];
  failedHosts: string[];
}

/** The app's entry in a `status --json` document; throws naming what is missing. */
export function appFromStatus(stdout: string, app: string): AppStatusJson {
  const doc: unknown = JSON.parse(stdout);
  const apps = typeof doc === "object" && doc !== null ? (doc as { apps?: unknown }).apps : undefined;
  if (!Array.isArray(apps)) throw new Error(`status --json: no "apps" array in ${stdout.slice(0, 300)}`);
  const found = (apps as AppStatusJson[]).find((a) => a.name === app);
  if (!found) throw new Error(`status --json: no app ${app} in ${stdout.slice(0, 300)}`);
  return found;
}
