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
  let user = env.USER ?? env.LOGNAME;
  if (!user) {
    try {
      user = userInfo().username;
    } catch {
      user = "unknown";
    }
  }
  return `${user}@${hostname()}`.slice(0, 512);
}
