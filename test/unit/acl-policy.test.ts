// The ACL of every node of a locked tree (src/zk/acl-policy.ts lockedAcl): the admin may do
// everything everywhere; the agent may read everything and write only what agents own. Pure.

import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { Perm } from "../../src/zk/acl.ts";
import { formatAclInfo, lockedAcl, parseAclInfo, x509SubjectProblem } from "../../src/zk/acl-policy.ts";

/** A digest id as ZooKeeper stores it: `user:` + base64(sha1("user:password")). */
const digest = (user: string, password: string): string => `${user}:${createHash("sha1").update(`${user}:${password}`).digest("base64")}`;
const ADMIN = digest("admin", "admin-pw");
const AGENT = digest("agent", "agent-pw");
const IDS = { admin: [{ scheme: "digest" as const, id: ADMIN }], agent: [{ scheme: "digest" as const, id: AGENT }] };
const BOTH = {
  admin: [
    { scheme: "digest" as const, id: ADMIN },
    { scheme: "x509" as const, id: "CN=ci,O=Example" },
  ],
  agent: [{ scheme: "x509" as const, id: "CN=agent,O=Example" }],
};
const AGENT_WRITE = Perm.read | Perm.write | Perm.create | Perm.delete;

const cases: { path: string; agent: "read" | "write"; why: string }[] = [
  { path: "/", agent: "read", why: "the chroot" },
  { path: "/apps", agent: "read", why: "only the admin creates apps" },
  { path: "/apps/web", agent: "read", why: "the spec: deploy-cmd runs on every server" },
  { path: "/apps/web/history", agent: "read", why: "history" },
  { path: "/apps/web/history/h-0000000001", agent: "read", why: "a history entry" },
  { path: "/apps/web/lock", agent: "write", why: "the slot queue" },
  { path: "/apps/web/lock/h1-0123456789abcdef-0000000001", agent: "write", why: "a queue node" },
  { path: "/apps/web/leases", agent: "write", why: "held slots" },
  { path: "/apps/web/leases/h1-0123456789abcdef-0000000002", agent: "write", why: "a lease" },
  { path: "/apps/web/hosts", agent: "write", why: "host status" },
  { path: "/apps/web/hosts/h1", agent: "write", why: "a host's status" },
  { path: "/apps/web/failures", agent: "write", why: "failures" },
  { path: "/apps/web/failures/rabc12345-h1", agent: "write", why: "a failure" },
  { path: "/apps/web/canary", agent: "write", why: "canary markers" },
  { path: "/apps/web/canary/rabc12345-h1", agent: "write", why: "a canary marker" },
  { path: "/apps/web/other", agent: "read", why: "anything else under an app" },
  { path: "/apps/lock", agent: "read", why: "an app named like an agent directory is still a spec" },
  { path: "/apps/hosts/lock", agent: "write", why: "…and its lock directory is the agents'" },
  { path: "/agents", agent: "write", why: "presence" },
  { path: "/agents/h1", agent: "write", why: "an agent's presence node" },
  { path: "/acl", agent: "read", why: "the identities acl init recorded" },
  { path: "/agentsx", agent: "read", why: "not /agents" },
];

describe("lockedAcl", () => {
  test.each(cases)("$path: agent may $agent ($why)", ({ path, agent }) => {
    expect(lockedAcl(IDS, path)).toEqual([
      { scheme: "digest", id: ADMIN, perms: Perm.all },
      { scheme: "digest", id: AGENT, perms: agent === "write" ? AGENT_WRITE : Perm.read },
    ]);
  });

  test("no world access and no admin right for the agent, anywhere", () => {
    for (const { path } of cases) {
      const acl = lockedAcl(IDS, path);
      expect(acl.map((a) => a.scheme)).toEqual(["digest", "digest"]);
      expect((acl[1]?.perms ?? 0) & Perm.admin).toBe(0);
    }
  });

  test.each(cases)("x509 and digest together, $path: every admin id all, every agent id the agent's", ({ path, agent }) => {
    expect(lockedAcl(BOTH, path)).toEqual([
      { scheme: "digest", id: ADMIN, perms: Perm.all },
      { scheme: "x509", id: "CN=ci,O=Example", perms: Perm.all },
      { scheme: "x509", id: "CN=agent,O=Example", perms: agent === "write" ? AGENT_WRITE : Perm.read },
    ]);
  });
});

describe("ACL info", () => {
  test("round trip, digest and x509", () => {
    expect(parseAclInfo(formatAclInfo(IDS))).toEqual(IDS);
    expect(parseAclInfo(formatAclInfo(BOTH))).toEqual(BOTH);
  });
  test("a tree locked before x509 identities (one digest id string per role) still reads", () => {
    expect(parseAclInfo(Buffer.from(JSON.stringify({ admin: ADMIN, agent: AGENT })))).toEqual(IDS);
  });
  test.each([
    ["not JSON", "{"],
    ["not an object", '"admin"'],
    ["null", "null"],
    ["a missing id", JSON.stringify({ admin: ADMIN })],
    ["a password instead of a digest", JSON.stringify({ admin: "admin:secret", agent: AGENT })],
    ["a bad user name", JSON.stringify({ admin: ADMIN, agent: `-x:${AGENT.split(":")[1]}` })],
    ["an empty role", JSON.stringify({ admin: [], agent: AGENT })],
    ["an unknown scheme", JSON.stringify({ admin: [{ scheme: "world", id: "anyone" }], agent: AGENT })],
    ["a garbled subject", JSON.stringify({ admin: [{ scheme: "x509", id: "CN=ci, O=x" }], agent: AGENT })],
    ["one bad id among good ones", JSON.stringify({ admin: [{ scheme: "digest", id: ADMIN }, { scheme: "x509" }], agent: AGENT })],
  ])("%s is refused", (_, text) => {
    expect(parseAclInfo(Buffer.from(text))).toBeUndefined();
  });
});

describe("x509 subjects", () => {
  test.each(["CN=ci", "CN=ci,O=Example", "CN=a\\,b,O=Ex ample,C=DE", "1.2.840.113549.1.9.1=#160d63694065786d706c652e636f6d,CN=x"])(
    "%s is accepted",
    (subject) => {
      expect(x509SubjectProblem(subject)).toBeUndefined();
    },
  );
  test.each([
    ["/O=Example/CN=ci", "OpenSSL's"],
    ["CN=ci, O=Example", "no spaces"],
    ["cn=ci", "upper case"],
    ["ci", "RFC 2253"],
    ["CN=", "RFC 2253"],
    ["CN=ci,", "RFC 2253"],
    ["CN=a\nb", "RFC 2253"],
    ["x".repeat(1025), "1024"],
  ])("%s is refused (%s)", (subject, why) => {
    expect(x509SubjectProblem(subject)).toContain(why);
  });
});
