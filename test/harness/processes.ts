// What the harness knows about processes, read from /proc (Linux): is a PID alive, what is its
// command line, its children and their process groups (the deploys an agent started), and
// signalling a PID or a group. Tests, the fault fleet, the ZooKeeper harness and the
// benchmarks all ask here; everything is by PID, never by name.
// (Whether any process of a group exists, zombies included, is the agent's own check:
// groupAlive in src/agent/deploy-journal.ts.)

import { existsSync, readdirSync, readFileSync } from "node:fs";

export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  pgrp: number;
  /** User + system CPU time of the process (all threads), in clock ticks. */
  utime: number;
  stime: number;
}

/** Parses /proc/<pid>/stat; undefined when the process is gone. */
export function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  // Fields after the command name start at field 3 (state); field n is at index n - 3.
  const rest = text.slice(close + 2).split(" ");
  return {
    pid,
    comm: text.slice(open + 1, close),
    state: rest[0] ?? "?",
    ppid: Number(rest[1]),
    pgrp: Number(rest[2]),
    utime: Number(rest[11]),
    stime: Number(rest[12]),
  };
}

/** True while a process with this PID exists and is not a zombie (a zombie still answers
 *  kill(pid, 0) until its parent reaps it, but runs nothing). */
export function pidAlive(pid: number): boolean {
  const stat = procStat(pid);
  return stat !== undefined && stat.state !== "Z";
}

/** Members of a process group that still run (zombies, which only wait for a reaper, excluded). */
export function liveGroupMembers(pgid: number): number[] {
  const members: number[] = [];
  try {
    process.kill(-pgid, 0); // cheap answer for the usual case: no such group
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return members;
  }
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = procStat(Number(name));
    if (stat && stat.pgrp === pgid && stat.state !== "Z") members.push(stat.pid);
  }
  return members;
}

/** Direct children of `pid` (every thread's /proc/<pid>/task/<tid>/children); [] once it is gone. */
export function childrenOf(pid: number): number[] {
  const dir = `/proc/${pid}/task`;
  if (!existsSync(dir)) return [];
  const out: number[] = [];
  for (const tid of readdirSync(dir)) {
    try {
      const text = readFileSync(`${dir}/${tid}/children`, "utf8").trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    } catch {
      // thread gone
    }
  }
  return out;
}

/** Process groups of `pid`'s direct children that are not in `pid`'s own group (the commands
 *  an agent runs). */
export function childGroups(pid: number): number[] {
  const own = procStat(pid)?.pgrp;
  const groups: number[] = [];
  for (const child of childrenOf(pid)) {
    const stat = procStat(child);
    if (stat && stat.pgrp !== own && stat.pgrp > 1) groups.push(stat.pgrp);
  }
  return groups;
}

/** The command line of `pid` (NUL-separated), "" when it is gone: to check that a PID still
 *  names the process we mean before signalling it. */
export function cmdlineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return "";
  }
}

/** Sends a signal by PID; a process already gone is fine. */
export function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** SIGKILL a process group by id; a group already gone is fine. Refuses ids that are not a
 *  plain group of ours (≤ 1, or this process's own PID). */
export function killGroup(pgid: number): void {
  if (!Number.isInteger(pgid) || pgid <= 1 || pgid === process.pid) return;
  try {
    process.kill(-pgid, "SIGKILL");
  } catch {
    // gone
  }
}

/** Clock ticks per second (`getconf CLK_TCK`), for /proc CPU times; 100 if it cannot be read. */
export function clockTicksPerSecond(): number {
  const res = Bun.spawnSync(["getconf", "CLK_TCK"], { env: { PATH: "/usr/bin:/bin" } });
  const value = Number(res.stdout.toString().trim());
  return Number.isInteger(value) && value > 0 ? value : 100;
}

/** PIDs of live processes (zombies excluded) with `arg` as one whole argument of their command
 *  line: how the harness finds the processes a test directory's scripts started (the directory
 *  is an argument of each), to stop them by PID. */
export function pidsWithArg(arg: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid || !cmdlineOf(pid).split("\0").includes(arg)) continue;
    if (pidAlive(pid)) out.push(pid);
  }
  return out;
}
