// What the prober's samples say (pure: test/unit/probe-analysis.test.ts). A sample is one round
// of GET /health to every host at once: which hosts did not answer, and — with a load balancer —
// which hosts were in its member list throughout the round.
//
// Two counts per round:
//   down — members that did not answer: an outage users see (without an LB every host is a
//          member, so it is simply "not answering");
//   out  — hosts out of service: not a member (drained), or not answering. This is what the
//          slot bound limits: a host is out from the start of its drain (or deploy) to the end
//          of its health gate.
// Time is counted per round: a round's condition lasts until the next round starts.

import { percentile } from "./percentile.ts";

export interface ProbeSample {
  /** Epoch ms when the round started. */
  at: number;
  /** Hosts that did not answer 200 in this round. */
  down: readonly string[];
  /** LB members throughout the round (in the list before and after it); undefined: no LB. */
  members?: readonly string[];
}

/** A window in which a host's absence is the documented exception to the slot bound (its
 *  agent's session was lost while the host was out): counted apart, not as a violation. */
export interface Exemption {
  host: string;
  from: number;
  to: number;
}

export interface ProbeAnalysisOptions {
  hosts: readonly string[];
  /** Host → epoch ms of its failure verdict: a failed host stays out of rotation by design
   *  (its slot is released), so it stops counting as out then. */
  settledAt?: Readonly<Record<string, number>>;
  exempt?: readonly Exemption[];
}

export interface Span {
  host: string;
  from: number;
  to: number;
}

export interface Peak {
  count: number;
  /** Start of the first round with that count; undefined when it was 0 throughout. */
  at: number | undefined;
  hosts: string[];
}

export interface ProbeReport {
  rounds: number;
  /** Longest time between two round starts: what the prober may have missed. */
  maxGapMs: number;
  /** 99th percentile of the time between round starts (the target is the prober's interval). */
  p99GapMs: number;
  /** Most members down in one round. */
  maxDown: Peak;
  /** Most hosts out of service in one round (settled hosts excluded). */
  maxOut: Peak;
  /** maxOut without the exempt hosts: what the slot bound is checked against. */
  maxOutCounted: Peak;
  downMs: Record<string, number>;
  outMs: Record<string, number>;
  /** Time each host did not answer, member or not (proves the restarts were seen). */
  unansweredMs: Record<string, number>;
  downSpans: Span[];
  outSpans: Span[];
}

type Condition = (host: string, sample: ProbeSample) => boolean;

export function analyseProbes(samples: readonly ProbeSample[], options: ProbeAnalysisOptions): ProbeReport {
  const { hosts } = options;
  const settled = options.settledAt ?? {};
  const exempt = options.exempt ?? [];
  const member = (host: string, s: ProbeSample): boolean => s.members === undefined || s.members.includes(host);
  const unanswered: Condition = (host, s) => s.down.includes(host);
  const down: Condition = (host, s) => unanswered(host, s) && member(host, s);
  const out: Condition = (host, s) => (unanswered(host, s) || !member(host, s)) && s.at < (settled[host] ?? Number.POSITIVE_INFINITY);
  const counted: Condition = (host, s) => out(host, s) && !exempt.some((e) => e.host === host && e.from <= s.at && s.at <= e.to);

  const gaps = samples.slice(1).map((s, i) => s.at - (samples[i]?.at ?? s.at));
  return {
    rounds: samples.length,
    maxGapMs: Math.max(0, ...gaps),
    p99GapMs: gaps.length === 0 ? 0 : percentile(gaps, 99),
    maxDown: peak(samples, hosts, down),
    maxOut: peak(samples, hosts, out),
    maxOutCounted: peak(samples, hosts, counted),
    downMs: durations(samples, hosts, down),
    outMs: durations(samples, hosts, out),
    unansweredMs: durations(samples, hosts, unanswered),
    downSpans: spans(samples, hosts, down),
    outSpans: spans(samples, hosts, out),
  };
}

function peak(samples: readonly ProbeSample[], hosts: readonly string[], holds: Condition): Peak {
  let best: Peak = { count: 0, at: undefined, hosts: [] };
  for (const s of samples) {
    const now = hosts.filter((h) => holds(h, s));
    if (now.length > best.count) best = { count: now.length, at: s.at, hosts: now };
  }
  return best;
}

/** A round's condition lasts until the next round starts (the last round: no time). */
function durations(samples: readonly ProbeSample[], hosts: readonly string[], holds: Condition): Record<string, number> {
  const total: Record<string, number> = Object.fromEntries(hosts.map((h) => [h, 0]));
  for (let i = 0; i + 1 < samples.length; i++) {
    const s = samples[i];
    const next = samples[i + 1];
    if (!s || !next) continue;
    for (const h of hosts) if (holds(h, s)) total[h] = (total[h] ?? 0) + (next.at - s.at);
  }
  return total;
}

/** Maximal runs of rounds in which the condition held for a host: [first round, next round). */
function spans(samples: readonly ProbeSample[], hosts: readonly string[], holds: Condition): Span[] {
  const out: Span[] = [];
  for (const host of hosts) {
    let from: number | undefined;
    for (const s of samples) {
      if (holds(host, s)) from ??= s.at;
      else if (from !== undefined) {
        out.push({ host, from, to: s.at });
        from = undefined;
      }
    }
    const last = samples.at(-1);
    if (from !== undefined && last) out.push({ host, from, to: last.at });
  }
  return out.sort((a, b) => a.from - b.from);
}
