import { parseCredential, readCredentialFile } from "../../config/settings.ts";
import type { DigestCredential } from "../../zk/client.ts";
import { UsageError } from "../../config/errors.ts";
import { assertDistinctIdentities, lockTree, readTreeAcl } from "../../apps/tree-acl.ts";
import { formatPerms } from "../../zk/acl.ts";
import type { CommandSpec } from "../command.ts";
import { ExitCode } from "../exit-codes.ts";
import { printJson, renderTable } from "../io.ts";
import { loadSettings, withZk } from "../session.ts";

export const aclInit: CommandSpec = {
  usage: "init",
  description: "Lock the tree: specs/history writable by the admin identity only, agent nodes by agents, no world access",
  createsChroot: true,
  options: [
    { flag: "--agent-auth <user:pass>", description: "The identity agents use (their --auth); required" },
    { flag: "--agent-auth-file <path>", description: "Read the agent USER:PASS from a file instead" },
  ],
  examples: ["conveyor --auth admin:s3cret acl init --agent-auth agent:an0ther"],
  async run(_args, ctx) {
    const settings = await loadSettings(ctx);
    const admin = settings.credentials[0];
    if (!admin) throw new UsageError("acl init needs the admin identity: pass --auth ADMIN:PASS (or --auth-file, CONVEYOR_AUTH)");
    const agentText = ctx.options.string("agent-auth");
    const agentFile = ctx.options.string("agent-auth-file");
    let agent: DigestCredential;
    if (agentText !== undefined) agent = parseCredential(agentText, "--agent-auth");
    else if (agentFile !== undefined) agent = await readCredentialFile(agentFile, "--agent-auth-file");
    else throw new UsageError("acl init needs --agent-auth USER:PASS (or --agent-auth-file)");
    const locked = agent;
    assertDistinctIdentities(admin, locked);
    const { nodes } = await withZk(ctx, (zk) => lockTree(zk, admin, locked));
    if (ctx.options.flag("json")) printJson(ctx.io, { locked: true, nodes, admin: admin.user, agent: locked.user });
    else
      ctx.io.out(
        `locked ${nodes} node(s): admin "${admin.user}" may write specs, agent "${locked.user}" may write agent nodes; no world access`,
      );
    return ExitCode.ok;
  },
};

export const aclShow: CommandSpec = {
  usage: "show",
  description: "Print the effective ACLs of the chroot, /apps, /agents and every app",
  examples: ["conveyor --auth admin:s3cret acl show"],
  async run(_args, ctx) {
    const entries = await withZk(ctx, (zk) => readTreeAcl(zk));
    if (ctx.options.flag("json")) {
      printJson(
        ctx.io,
        entries.map((e) => ({ path: e.path, acl: e.acl.map((a) => ({ scheme: a.scheme, id: a.id, perms: formatPerms(a.perms) })) })),
      );
      return ExitCode.ok;
    }
    const rows = entries.map((e) => [
      e.path,
      e.acl.map((a) => `${a.scheme}:${a.scheme === "digest" ? (a.id.split(":")[0] ?? "") : a.id}:${formatPerms(a.perms)}`).join(", "),
    ]);
    ctx.io.out(renderTable(["PATH", "ACL"], rows));
    return ExitCode.ok;
  },
};
