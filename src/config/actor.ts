import { readFileSync } from "node:fs";
import { hostname, userInfo } from "node:os";

type Env = Record<string, string | undefined>;

// In order: an explicit actor, then what CI systems set, so history says which pipeline acted.
const CI_VARIABLES = [
  "GITHUB_ACTOR",
  "GITLAB_USER_LOGIN",
  "BUILDKITE_BUILD_CREATOR",
  "CIRCLE_USERNAME",
  "BUILD_URL",
  "CI_JOB_URL",
] as const;

/** Who is acting, for `updatedBy` and history: CONVEYOR_ACTOR, CI variables, else user@host. */
export function resolveActor(env: Env): string {
  const candidates = [env.CONVEYOR_ACTOR, ...CI_VARIABLES.map((name) => env[name])];
  for (const value of candidates) {
    const clean = value?.replace(/[\r\n\0]/g, " ").trim();
    if (clean) return clean.slice(0, 512);
  }
  const user = env.USER ?? env.LOGNAME ?? systemUser();
  return `${user}@${hostname()}`.slice(0, 512);
}

/** The login name of our uid: os.userInfo(), else /etc/passwd (Bun may answer "unknown"). */
function systemUser(): string {
  let name = "unknown";
  try {
    name = userInfo().username;
  } catch {
    // no passwd entry
  }
  if (name !== "unknown" || typeof process.getuid !== "function") return name;
  const uid = String(process.getuid());
  try {
    const line = readFileSync("/etc/passwd", "utf8")
      .split("\n")
      .find((l) => l.split(":")[2] === uid);
    return line?.split(":")[0] || name;
  } catch {
    return name;
  }
}
