// Samples every host's GET /health from the test process, all hosts at once, a round every
// `intervalMs` (default 20 ms), each probe on a fresh connection with a short timeout; records
// per round which hosts did not answer and (with a load balancer's member file) which hosts were
// members throughout the round. ./probe-analysis.ts turns the samples into the numbers tests
// assert: most hosts down at once, down time per host, timelines. Typical use:
//
//   const prober = Prober.start({ targets: [{ host: "h1", port }], membersFile });
//   await prober.waitUntil((s) => s.down.length === 0, 5_000, "every host up");
//   … the rollout …
//   await prober.stop();
//   const r = prober.report();          // r.maxDown.count, r.downMs, r.downSpans, …

import { probeHealth } from "./http-probe.ts";
import { type ProbeAnalysisOptions, type ProbeReport, type ProbeSample, analyseProbes } from "./probe-analysis.ts";
import { readMembers } from "./load-balancer.ts";
import { untilNotified } from "./until-notified.ts";

export interface ProbeTarget {
  host: string;
  port: number;
}

export interface ProberOptions {
  targets: readonly ProbeTarget[];
  /** Time from one round's start to the next (a slow round starts the next at once); default 20. */
  intervalMs?: number;
  /** Per probe; a local server answers in a few ms. Default 300. */
  timeoutMs?: number;
  /** Load-balancer mode: the member list (./load-balancer.ts). */
  membersFile?: string;
}

export class Prober {
  readonly samples: ProbeSample[] = [];
  /** The body (version) each host last answered with. */
  readonly lastVersion = new Map<string, string>();
  private readonly listeners = new Set<() => void>();
  private stopped = false;
  private readonly loop: Promise<void>;

  private constructor(private readonly options: ProberOptions) {
    this.loop = this.run();
  }

  static start(options: ProberOptions): Prober {
    return new Prober(options);
  }

  get hosts(): string[] {
    return this.options.targets.map((t) => t.host);
  }

  private members(): string[] | undefined {
    return this.options.membersFile === undefined ? undefined : readMembers(this.options.membersFile);
  }

  private async run(): Promise<void> {
    const interval = this.options.intervalMs ?? 20;
    const timeout = this.options.timeoutMs ?? 300;
    while (!this.stopped) {
      const at = Date.now();
      const before = this.members();
      const results = await Promise.all(this.options.targets.map((t) => probeHealth(t.port, timeout)));
      const after = this.members();
      const down: string[] = [];
      results.forEach((r, i) => {
        const host = this.options.targets[i]?.host ?? "";
        if (r.outcome === "up") this.lastVersion.set(host, r.body ?? "");
        else down.push(host);
      });
      // A member throughout the round: listed before the probes went out and after they came back.
      const members = before === undefined || after === undefined ? undefined : before.filter((h) => after.includes(h));
      this.samples.push(members === undefined ? { at, down } : { at, down, members });
      for (const listener of [...this.listeners]) listener();
      const rest = interval - (Date.now() - at);
      if (rest > 0) await Bun.sleep(rest);
    }
  }

  /** Resolves with the first value `check` returns for a new sample (or the latest one now). */
  waitUntil<T>(check: (sample: ProbeSample) => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return untilNotified(
      this.listeners,
      () => {
        const last = this.samples.at(-1);
        return last === undefined ? undefined : check(last);
      },
      timeoutMs,
      () => `prober: timed out after ${timeoutMs} ms waiting for ${what} (last sample: ${JSON.stringify(this.samples.at(-1))})`,
    );
  }

  /** Stops sampling; resolves once the round in flight is recorded. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  /** The analysis of every sample so far (from `since`, epoch ms, if given). */
  report(options: Omit<ProbeAnalysisOptions, "hosts"> & { since?: number } = {}): ProbeReport {
    const samples = options.since === undefined ? this.samples : this.samples.filter((s) => s.at >= (options.since ?? 0));
    return analyseProbes(samples, { ...options, hosts: this.hosts });
  }
}
