// The ZooKeeper layout has one home (src/zk/paths.ts): the builders, and layoutNode, which reads
// a path back. Each builder's output must read back as what it built.
import { describe, expect, test } from "bun:test";
import {
  ACL_INFO,
  AGENTS,
  APPS,
  APP_DIRS,
  agentPath,
  appDir,
  appPath,
  appSubdirs,
  canaryMarkerPath,
  failurePath,
  historyPrefix,
  hostStatusPath,
  doneMarkerPath,
  doneRolloutDir,
  layoutNode,
  sequenceOf,
} from "../../src/zk/paths.ts";

describe("layoutNode reads back every path the builders make", () => {
  const cases: [string, ReturnType<typeof layoutNode>][] = [
    ["/", { kind: "root" }],
    [APPS, { kind: "apps" }],
    [AGENTS, { kind: "agents" }],
    [ACL_INFO, { kind: "aclInfo" }],
    [agentPath("web-1"), { kind: "agent", host: "web-1" }],
    [appPath("web"), { kind: "app", app: "web" }],
    ...APP_DIRS.map((dir): [string, ReturnType<typeof layoutNode>] => [appDir("web", dir), { kind: "appDir", app: "web", dir }]),
    [hostStatusPath("web", "h1"), { kind: "appEntry", app: "web", dir: "hosts", name: "h1" }],
    [failurePath("web", "rabc123", "h1"), { kind: "appEntry", app: "web", dir: "failures", name: "rabc123-h1" }],
    [canaryMarkerPath("web", "rabc123", "h1"), { kind: "appEntry", app: "web", dir: "canary", name: "rabc123-h1" }],
    [doneRolloutDir("web", "rabc123"), { kind: "appEntry", app: "web", dir: "done", name: "rabc123" }],
    [doneMarkerPath("web", "rabc123", "h1"), { kind: "appEntry", app: "web", dir: "done", name: "rabc123/h1" }],
    ["/apps/web/done/rabc123/h1/deeper", { kind: "other" }],
    [`${historyPrefix("web")}0000000007`, { kind: "appEntry", app: "web", dir: "history", name: "h-0000000007" }],
    ["/apps/web/unknown", { kind: "other" }],
    ["/apps/web/hosts/h1/deeper", { kind: "other" }],
    ["/agents/h1/deeper", { kind: "other" }],
    ["/elsewhere", { kind: "other" }],
  ];
  for (const [path, node] of cases) test(path, () => expect(layoutNode(path)).toEqual(node));
  test("appSubdirs is every app directory", () =>
    expect(
      appSubdirs("a")
        .map(layoutNode)
        .map((n) => n.kind),
    ).toEqual(APP_DIRS.map(() => "appDir")));
  test("sequenceOf", () => {
    expect(sequenceOf("h1-0123456789abcdef-0000000012")).toBe(12);
    expect(sequenceOf("short")).toBeNaN();
    expect(sequenceOf("h1-x-00000000x2")).toBeNaN();
  });
});
