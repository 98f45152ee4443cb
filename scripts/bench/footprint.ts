import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { publishApp } from "../../src/apps/publish.ts";
import { ZkClient } from "../../src/zk/client.ts";
import { clockTicksPerSecond, procStat } from "../../test/harness/processes.ts";
import type { ZooKeeperServer } from "../../test/harness/zookeeper.ts";
import { until } from "./rollout.ts";
import { median, round } from "./stats.ts";

export interface Footprint {
  agentRssMb: number;
  idleCpuPct: number;
  binaryMb: number;
  startupMs: number;
  appCreateMs: number;
}

function cpuTicks(pid: number): number {
  const stat = procStat(pid);
  if (stat === undefined) throw new Error(`the idle agent (pid ${pid}) is gone`);
  return stat.utime + stat.stime;
}

function rssMb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match?.[1] ? Number(match[1]) / 1024 : Number.NaN;
}

/** Compiled agent idle with 10 apps: RSS and CPU over `idleSeconds`; binary size; cold starts. */
export async function measureFootprint(server: ZooKeeperServer, binary: string, idleSeconds: number): Promise<Footprint> {
  const connect = `${server.connectString}/bench-footprint-${Math.random().toString(36).slice(2, 8)}`;
  const dir = mkdtempSync(join(tmpdir(), "conveyor-footprint-"));
  const admin = await ZkClient.connect({ connectString: connect, connectTimeoutMs: 30_000 });
  const ctx = { actor: "bench", now: () => new Date() };
  const agent = Bun.spawn([binary, "agent", "--zk", connect, "--host-id", "idle", "--state-dir", join(dir, ".state")], {
    cwd: dir,
    stdout: "ignore",
    stderr: "ignore",
    env: { PATH: "/usr/bin:/bin", HOME: dir },
  });
  try {
    for (let i = 1; i <= 10; i++) {
      await publishApp(
        admin,
        `app${i}`,
        "1",
        { getVersionCmd: `cat V${i} 2>/dev/null || true`, deployCmd: `echo %(version)s > V${i}` },
        ctx,
      );
    }
    await until(
      async () => {
        let current = 0;
        for (let i = 1; i <= 10; i++) {
          const status = await admin.get(`/apps/app${i}/hosts/idle`).catch(() => undefined);
          if (status && JSON.parse(status.data.toString()).state === "current") current++;
        }
        return current === 10;
      },
      60_000,
      "10 apps deployed",
    );
    // Idle means idle: the first ~30 s after the deploys still include their garbage collection
    // (measured: 4 ticks in the first 30 s, then 1 tick per 30 s).
    await Bun.sleep(20_000);
    const ticks0 = cpuTicks(agent.pid);
    const t0 = performance.now();
    await Bun.sleep(idleSeconds * 1_000);
    const seconds = (performance.now() - t0) / 1_000;
    const idleCpuPct = ((cpuTicks(agent.pid) - ticks0) / clockTicksPerSecond() / seconds) * 100;
    const agentRssMb = rssMb(agent.pid);

    const starts: number[] = [];
    for (let i = 0; i < 30; i++) {
      const t = performance.now();
      const p = Bun.spawnSync([binary, "--version"], { env: { PATH: "/usr/bin:/bin" }, cwd: dir });
      if (p.exitCode !== 0) throw new Error("--version failed");
      starts.push(performance.now() - t);
    }
    const creates: number[] = [];
    for (let i = 0; i < 15; i++) {
      const t = performance.now();
      const p = Bun.spawnSync([binary, "--zk", connect, "app", "create", "app1", `2.${i}`], { env: { PATH: "/usr/bin:/bin" }, cwd: dir });
      if (p.exitCode !== 0) throw new Error(`app create failed: ${p.stderr.toString()}`);
      creates.push(performance.now() - t);
    }
    return {
      agentRssMb: round(agentRssMb),
      idleCpuPct: round(idleCpuPct, 3),
      binaryMb: round(statSync(binary).size / 1_048_576),
      startupMs: round(median(starts)),
      appCreateMs: round(median(creates)),
    };
  } finally {
    agent.kill("SIGTERM");
    await Promise.race([agent.exited, Bun.sleep(5_000)]);
    if (agent.exitCode === null) agent.kill("SIGKILL");
    await admin.deleteRecursive("/apps").catch(() => undefined);
    await admin.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
