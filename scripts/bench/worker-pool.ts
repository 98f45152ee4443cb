// The processes of `bun run bench --scale`: sessions (agents, or the floor's bare sessions)
// spread over crowded worker processes plus a few sentinels in a process of their own; their
// JSON-line events gathered in one list.

import { readFileSync } from "node:fs";

/**
 * Sessions in a process of their own, beside the crowded workers: on a real fleet every agent
 * has its host's CPU to itself, while here thousands share two cores, so a crowded agent's every
 * step waits behind the others' (seconds at 10 000). The sentinels are real members of the
 * fleet (their own sessions, the same queue); publish → first deploy is what the first of the
 * whole fleet, usually a sentinel, sees.
 */
export const SENTINELS = 5;

export interface Event {
  t: number;
  m: string;
  /** Set by startWorkers: the event came from the sentinel process. */
  sentinel?: boolean;
  /** "stall": how late the worker's event loop was (ms). */
  ms?: number;
}

/** A process's CPU time so far (ms), from /proc. */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

/** Worker processes (`script`: scale-worker.ts, or the floor's) hosting `hosts` sessions
 *  between them (SENTINELS of them in one more process); their events, in one list. Each is
 *  run as `<script> <connect> <count> <offset> ...args`. */
export async function startWorkers(script: string, connectString: string, hosts: number, workers: number, args: string[]) {
  const events: Event[] = [];
  const procs: Bun.Subprocess<"ignore", "pipe", "inherit">[] = [];
  const ready: Promise<void>[] = [];
  const sentinels = Math.min(SENTINELS, Math.floor(hosts / 20));
  const crowded = hosts - sentinels;
  const per = Math.ceil(crowded / workers);
  const shares = Array.from({ length: workers }, (_, w) => ({ offset: w * per, count: Math.min(per, crowded - w * per), sentinel: false }));
  if (sentinels > 0) shares.push({ offset: crowded, count: sentinels, sentinel: true });
  for (const { offset, count, sentinel } of shares) {
    if (count <= 0) continue;
    // BENCH_SCALE_PROFILE=<dir>: each worker writes a CPU profile (markdown) there when stopped.
    const profile = process.env.BENCH_SCALE_PROFILE
      ? ["--cpu-prof", "--cpu-prof-md", `--cpu-prof-dir=${process.env.BENCH_SCALE_PROFILE}`]
      : [];
    const proc = Bun.spawn([process.execPath, ...profile, script, connectString, String(count), String(offset), ...args], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    procs.push(proc);
    ready.push(
      new Promise<void>((resolve, reject) => {
        void (async () => {
          let buffered = "";
          const decoder = new TextDecoder();
          for await (const chunk of proc.stdout) {
            buffered += decoder.decode(chunk);
            let newline = buffered.indexOf("\n");
            while (newline !== -1) {
              const line = buffered.slice(0, newline);
              buffered = buffered.slice(newline + 1);
              const value = JSON.parse(line) as Event | { ready: number };
              if ("ready" in value) resolve();
              else events.push(sentinel ? { ...value, sentinel } : value);
              newline = buffered.indexOf("\n");
            }
          }
          reject(new Error("a scale worker exited before it was ready"));
        })();
      }),
    );
  }
  await Promise.all(ready);
  return {
    events,
    /** CPU time (ms) the worker processes have used so far, together. */
    cpuMs: (): number => procs.reduce((sum, p) => sum + cpuMs(p.pid), 0),
    stop: async () => {
      for (const p of procs) p.kill("SIGTERM");
      await Promise.race([Promise.all(procs.map((p) => p.exited)), Bun.sleep(30_000)]);
      for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
    },
  };
}
