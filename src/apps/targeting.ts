/** An agent as far as targeting goes: its groups and its local `apps` allowlist, if any. */
export interface AgentTargeting {
  groups: readonly string[];
  /** The agent serves only these apps (local config); undefined = any app. */
  apps?: readonly string[] | undefined;
}

/**
 * Whether an agent serves an app: its local allowlist names the app (or it has none), and the
 * app has no groups or shares one with the agent. The one rule both sides apply — the agent
 * deciding what to deploy, and `status`/`--wait` deciding which hosts to wait for — so they
 * never disagree. Without `appGroups` (the spec not read yet) only the allowlist is checked.
 */
export function servesApp(agent: AgentTargeting, app: string, appGroups?: readonly string[]): boolean {
  if (agent.apps !== undefined && !agent.apps.includes(app)) return false;
  return appGroups === undefined || appGroups.length === 0 || appGroups.some((g) => agent.groups.includes(g));
}
