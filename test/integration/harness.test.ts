// Proves the real-ZooKeeper harness that every other integration test relies on.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { pidAlive } from "../harness/processes.ts";
import { poll } from "../harness/wait.ts";
import { fourLetterWord, startZooKeeper, uniqueChroot, useZooKeeper } from "../harness/zookeeper.ts";

/** True once `cond` holds, false if it does not within `ms` (the harness's one polling loop). */
async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  return await poll(cond, ms, "the condition", 20).then(
    () => true,
    () => false,
  );
}

/** Resolves "connected" or the socket error code (e.g. "ECONNREFUSED"). */
function tcpConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect({ host: "127.0.0.1", port });
    sock.once("connect", () => {
      sock.destroy();
      resolve("connected");
    });
    sock.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/** Local IPv4 addresses with a socket listening on port (from /proc/net/tcp). */
function listeningAddresses(port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  return readFileSync("/proc/net/tcp", "utf8")
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f[1]?.endsWith(`:${hexPort}`) && f[3] === "0A") // 0A = LISTEN
    .map((f) => {
      const hex = (f[1] ?? "").split(":")[0] ?? "";
      return [6, 4, 2, 0].map((i) => parseInt(hex.slice(i, i + 2), 16)).join(".");
    });
}

describe("startZooKeeper", () => {
  test("serves on 127.0.0.1, answers four-letter words, and stop() leaves nothing behind", async () => {
    const zk = await startZooKeeper();
    try {
      expect(zk.host).toBe("127.0.0.1");
      expect(zk.connectString).toBe(`127.0.0.1:${zk.port}`);
      expect(await fourLetterWord(zk.host, zk.port, "ruok")).toBe("imok");
      expect(await fourLetterWord(zk.host, zk.port, "srvr")).toContain("Mode: standalone");
      expect(await tcpConnect(zk.port)).toBe("connected");
      expect(pidAlive(zk.pid)).toBe(true);
      expect(existsSync(zk.logFile)).toBe(true);
      const conf = await fourLetterWord(zk.host, zk.port, "conf");
      expect(conf).toContain("minSessionTimeout=1000"); // tickTime 500
      expect(conf).toContain(`dataDir=${zk.dataDir}/version-2`);
      expect(listeningAddresses(zk.port)).toEqual(["127.0.0.1"]); // clientPortAddress
    } finally {
      await zk.stop();
    }
    expect(pidAlive(zk.pid)).toBe(false);
    expect(() => process.kill(zk.pid, 0)).toThrow();
    expect(await tcpConnect(zk.port)).toBe("ECONNREFUSED");
    expect(existsSync(zk.dataDir)).toBe(false);
    await zk.stop(); // idempotent
  });

  test("kill() and restart() keep the port and the data", async () => {
    const zk = await startZooKeeper();
    try {
      const firstPid = zk.pid;
      zk.kill("SIGKILL");
      expect(await waitFor(() => !pidAlive(firstPid), 5_000)).toBe(true);
      await zk.restart();
      expect(zk.pid).not.toBe(firstPid);
      expect(await fourLetterWord(zk.host, zk.port, "ruok")).toBe("imok");
      expect(existsSync(join(zk.dataDir, "version-2"))).toBe(true);
    } finally {
      await zk.stop();
    }
    expect(pidAlive(zk.pid)).toBe(false);
  });

  test("stop() also ends a SIGSTOPped server", async () => {
    const zk = await startZooKeeper();
    zk.kill("SIGSTOP");
    await zk.stop();
    expect(pidAlive(zk.pid)).toBe(false);
  });

  test("a given port and dataDir are used, and the dataDir is kept", async () => {
    const first = await startZooKeeper();
    const { port, dataDir } = first;
    await first.stop();
    const { mkdtempSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const dir = mkdtempSync(join(tmpdir(), "conveyor-zk-given-"));
    const zk = await startZooKeeper({ port, dataDir: dir, tickTime: 200, extraConfig: { maxSessionTimeout: "5000" } });
    try {
      expect(zk.port).toBe(port);
      expect(zk.dataDir).toBe(dir);
      const conf = await fourLetterWord(zk.host, zk.port, "conf");
      expect(conf).toContain("minSessionTimeout=400");
      expect(conf).toContain("maxSessionTimeout=5000");
    } finally {
      await zk.stop();
    }
    expect(existsSync(dir)).toBe(true);
    expect(existsSync(dataDir)).toBe(false);
    rmSync(dir, { recursive: true, force: true });
  });

  test("a port that is already taken fails with the reason and the log tail", async () => {
    const { createServer } = await import("node:net");
    const blocker = createServer().listen(0, "127.0.0.1");
    await new Promise((resolve) => blocker.once("listening", resolve));
    const address = blocker.address();
    const port = typeof address === "object" && address ? address.port : 0;
    try {
      const err = await startZooKeeper({ port }).then(
        () => new Error("started on a taken port"),
        (e: unknown) => e,
      );
      expect(String(err)).toContain("the port is in use");
      expect(String(err)).toContain("attempt 3");
      expect(String(err)).toContain("zookeeper.log (tail)");
    } finally {
      blocker.close();
    }
  });

  test("a process that dies without stop() takes its server with it", async () => {
    const lib = join(import.meta.dir, "../harness/zookeeper.ts");
    const script = `import { startZooKeeper } from ${JSON.stringify(lib)};
      const zk = await startZooKeeper();
      console.log(JSON.stringify({ pid: zk.pid, dataDir: zk.dataDir }));
      throw new Error("test crashed");`;
    const proc = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
    const out = await new Response(proc.stdout).text();
    expect(await proc.exited).not.toBe(0);
    const { pid, dataDir } = JSON.parse(out) as { pid: number; dataDir: string };
    expect(await waitFor(() => !pidAlive(pid), 5_000)).toBe(true);
    expect(existsSync(dataDir)).toBe(false);
  });
});

describe("useZooKeeper", () => {
  const zk = useZooKeeper();

  test("gives a live connect string inside tests", async () => {
    expect(zk.connectString).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(await fourLetterWord("127.0.0.1", zk.port, "ruok")).toBe("imok");
    expect(zk.withChroot("a b")).toMatch(/^127\.0\.0\.1:\d+\/t-a-b-[0-9a-f]{10}$/);
  });

  test("uniqueChroot never repeats", () => {
    const seen = new Set(Array.from({ length: 100 }, () => uniqueChroot("same")));
    expect(seen.size).toBe(100);
  });
});
