import { parseCredential, readCredentialFile } from "../../config/settings.ts";
import type { DigestCredential } from "../../zk/client.ts";
import { UsageError } from "../../config/errors.ts";
import { type RoleIdentity, aclIdentities, lockTree, readTreeAcl } from "../../apps/tree-acl.ts";
import { type AclId, describeAclId, x509SubjectProblem } from "../../zk/acl-policy.ts";
import { formatPerms } from "../../zk/acl.ts";
import { quote } from "../../text/printable.ts";
import type { CommandContext, CommandSpec } from "../command.ts";
import { ExitCode } from "../exit-codes.ts";
import { printJson, renderTable } from "../io.ts";
import { loadSettings, withZk } from "../session.ts";

export const aclInit: CommandSpec = {
  usage: "init",
  description: "Lock the tree: specs/history writable by the admin identity only, agent nodes by agents, no world access",
  createsChroot: true,
  options: [
    { flag: "--agent-auth <user:pass>", description: "The digest identity agents use (their --auth)" },
    { flag: "--agent-auth-file <path>", description: "Read the agent USER:PASS from a file instead" },
    {
      flag: "--admin-x509 <subject>",
      description: "Also (or instead of --auth) an admin: the client certificate with this subject, RFC 2253 (e.g. CN=ci,O=Example)",
    },
    { flag: "--agent-x509 <subject>", description: "Also (or instead of --agent-auth) an agent: the certificate subject agents use" },
  ],
  examples: [
    "conveyor --auth admin:s3cret acl init --agent-auth agent:an0ther",
    "conveyor --tls-cert ci.pem --tls-key ci.key acl init --admin-x509 CN=ci --agent-x509 CN=agent",
  ],
  async run(_args, ctx) {
    const settings = await loadSettings(ctx);
    // Everything is checked before connecting: a refused `acl init` writes nothing.
    const admin: RoleIdentity = {
      ...(settings.credentials[0] ? { digest: settings.credentials[0] } : {}),
      ...x509Option(ctx, "admin-x509"),
    };
    const agentDigest = await agentCredential(ctx);
    const agent: RoleIdentity = { ...(agentDigest ? { digest: agentDigest } : {}), ...x509Option(ctx, "agent-x509") };
    const ids = aclIdentities(admin, agent);
    const { nodes } = await withZk(ctx, (zk) => lockTree(zk, ids));
    if (ctx.options.flag("json")) {
      printJson(ctx.io, { locked: true, nodes, admin: ids.admin.map(describeAclId), agent: ids.agent.map(describeAclId) });
    } else {
      ctx.io.out(
        `locked ${nodes} node(s): admin ${roleText(ids.admin)} may write specs, agent ${roleText(ids.agent)} may write agent nodes; no world access`,
      );
    }
    return ExitCode.ok;
  },
};

async function agentCredential(ctx: CommandContext): Promise<DigestCredential | undefined> {
  const text = ctx.options.string("agent-auth");
  if (text !== undefined) return parseCredential(text, "--agent-auth");
  const file = ctx.options.string("agent-auth-file");
  return file === undefined ? undefined : readCredentialFile(file, "--agent-auth-file");
}

function x509Option(ctx: CommandContext, name: "admin-x509" | "agent-x509"): { x509?: string } {
  const subject = ctx.options.string(name);
  if (subject === undefined) return {};
  const problem = x509SubjectProblem(subject);
  if (problem) throw new UsageError(`invalid --${name} ${quote(subject)}: ${problem}`);
  return { x509: subject };
}

function roleText(ids: AclId[]): string {
  return ids.map((id) => `"${describeAclId(id)}"`).join(" + ");
}

export const aclShow: CommandSpec = {
  usage: "show",
  description: "Print the identities and schemes in force, and the effective ACLs of the chroot, /apps, /agents and every app",
  examples: ["conveyor --auth admin:s3cret acl show"],
  async run(_args, ctx) {
    const tree = await withZk(ctx, (zk) => readTreeAcl(zk));
    const renderAcl = (a: { scheme: string; id: string; perms: number }) => `${describeAclId(a)}:${formatPerms(a.perms)}`;
    if (ctx.options.flag("json")) {
      printJson(ctx.io, {
        locked: tree.identities !== undefined,
        recordInvalid: tree.recordInvalid,
        schemes: tree.schemes,
        admin: tree.identities?.admin.map(describeAclId) ?? [],
        agent: tree.identities?.agent.map(describeAclId) ?? [],
        nodes: tree.nodes.map((e) => ({
          path: e.path,
          acl: e.acl.map((a) => ({ scheme: a.scheme, id: a.id, perms: formatPerms(a.perms) })),
        })),
      });
      return ExitCode.ok;
    }
    const rows = tree.nodes.map((e) => [e.path, e.acl.map(renderAcl).join(", ")]);
    ctx.io.out(renderTable(["PATH", "ACL"], rows));
    ctx.io.out("");
    ctx.io.out(`schemes in force: ${tree.schemes.join(", ") || "none"}`);
    ctx.io.out(
      tree.identities
        ? `locked by acl init: admin ${roleText(tree.identities.admin)}, agent ${roleText(tree.identities.agent)}`
        : tree.recordInvalid
          ? "/acl INVALID: run conveyor acl init as the admin"
          : "not locked: run conveyor acl init",
    );
    return ExitCode.ok;
  },
};
