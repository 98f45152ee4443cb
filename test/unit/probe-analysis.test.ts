// The prober's counting (test/harness/probe-analysis.ts): the zero-downtime scenarios are only
// worth as much as this.
import { describe, expect, test } from "bun:test";
import { type ProbeSample, analyseProbes } from "../harness/probe-analysis.ts";

const HOSTS = ["h1", "h2", "h3"];

/** Rounds from a compact script: "0:h1,h2" = at t=0 h1 and h2 did not answer; "|h1,h3" after
 *  it lists the LB members ("0:h2|h1,h3"). */
function rounds(...steps: string[]): ProbeSample[] {
  return steps.map((step) => {
    const m = /^(\d+):([\w,]*)(?:\|([\w,]*))?$/.exec(step);
    if (!m?.[1]) throw new Error(`bad step ${step}`);
    const list = (text: string | undefined): string[] => (text ? text.split(",") : []);
    const sample: ProbeSample = { at: Number(m[1]), down: list(m[2]) };
    return m[3] === undefined ? sample : { ...sample, members: list(m[3]) };
  });
}

describe("probe analysis", () => {
  test("no samples, or everybody up: nothing down, no gap", () => {
    for (const samples of [[], rounds("0:", "20:", "40:")]) {
      const r = analyseProbes(samples, { hosts: HOSTS });
      expect(r.maxDown).toEqual({ count: 0, at: undefined, hosts: [] });
      expect(r.maxOut.count).toBe(0);
      expect(r.downMs).toEqual({ h1: 0, h2: 0, h3: 0 });
      expect(r.downSpans).toEqual([]);
    }
    const gaps = analyseProbes(rounds("0:", "20:", "45:"), { hosts: HOSTS });
    expect(gaps.maxGapMs).toBe(25);
    expect(gaps.p99GapMs).toBe(25);
    expect(analyseProbes([], { hosts: HOSTS }).p99GapMs).toBe(0);
  });

  test("without an LB every host serves: most down at once, the first round it happened, time and spans per host", () => {
    // h1 restarts 20..80, h2 overlaps it 60..100: two down at t=60 only.
    const samples = rounds("0:", "20:h1", "40:h1", "60:h1,h2", "80:h2", "100:", "120:");
    const r = analyseProbes(samples, { hosts: HOSTS });
    expect(r.rounds).toBe(7);
    expect(r.maxDown).toEqual({ count: 2, at: 60, hosts: ["h1", "h2"] });
    expect(r.maxOut).toEqual(r.maxDown); // without an LB, out = down
    expect(r.downMs).toEqual({ h1: 60, h2: 40, h3: 0 });
    expect(r.unansweredMs).toEqual(r.downMs);
    expect(r.downSpans).toEqual([
      { host: "h1", from: 20, to: 80 },
      { host: "h2", from: 60, to: 100 },
    ]);
  });

  test("a host still down in the last round: its span ends there, the last round adds no time", () => {
    const r = analyseProbes(rounds("0:", "20:h3", "40:h3"), { hosts: HOSTS });
    expect(r.downSpans).toEqual([{ host: "h3", from: 20, to: 40 }]);
    expect(r.downMs.h3).toBe(20);
  });

  test("LB mode: a drained host that does not answer is out but not down; a member that does not answer is down", () => {
    const samples = rounds(
      "0:|h1,h2,h3",
      "20:|h2,h3", // h1 drained
      "40:h1|h2,h3", // h1 restarting: not a member, no outage
      "60:h1|h2,h3",
      "80:|h2,h3", // h1 healthy again, still drained
      "100:|h1,h2,h3", // undrained
      "120:h2|h1,h2,h3", // h2 down while a member: an outage
      "140:|h1,h2,h3",
    );
    const r = analyseProbes(samples, { hosts: HOSTS });
    expect(r.maxDown).toEqual({ count: 1, at: 120, hosts: ["h2"] });
    expect(r.downMs).toEqual({ h1: 0, h2: 20, h3: 0 });
    expect(r.unansweredMs).toEqual({ h1: 40, h2: 20, h3: 0 });
    expect(r.outMs).toEqual({ h1: 80, h2: 20, h3: 0 });
    expect(r.outSpans).toEqual([
      { host: "h1", from: 20, to: 100 },
      { host: "h2", from: 120, to: 140 },
    ]);
  });

  test("out of service counts drained and unanswering hosts together; two at once is a peak of 2", () => {
    // h1 drained 20..80; h2 (never drained) stops answering at 60.
    const r = analyseProbes(rounds("0:|h1,h2,h3", "20:|h2,h3", "40:h1|h2,h3", "60:h1,h2|h2,h3", "80:|h1,h2,h3"), { hosts: HOSTS });
    expect(r.maxOut).toEqual({ count: 2, at: 60, hosts: ["h1", "h2"] });
    expect(r.maxDown).toEqual({ count: 1, at: 60, hosts: ["h2"] });
  });

  test("a failed host stops counting as out at its verdict (it stays drained by design)", () => {
    const samples = rounds("0:|h1,h2,h3", "20:|h2,h3", "40:h1|h2,h3", "60:h1|h2,h3", "80:h1,h2|h3", "100:h1|h2,h3");
    const all = analyseProbes(samples, { hosts: HOSTS });
    expect(all.maxOut.count).toBe(2);
    const settled = analyseProbes(samples, { hosts: HOSTS, settledAt: { h1: 70 } });
    expect(settled.maxOut).toEqual({ count: 1, at: 20, hosts: ["h1"] });
    expect(settled.outMs.h1).toBe(60); // 20..80
    expect(settled.unansweredMs.h1).toBe(60); // still measured: it does not answer
  });

  test("an exempt host (its session lost) is left out of the counted peak only inside its window", () => {
    const samples = rounds("0:h1", "20:h1,h2", "40:h1,h2", "60:h2,h3", "80:");
    const exempt = [{ host: "h1", from: 0, to: 40 }];
    const r = analyseProbes(samples, { hosts: HOSTS, exempt });
    expect(r.maxOut.count).toBe(2);
    expect(r.maxOutCounted).toEqual({ count: 2, at: 60, hosts: ["h2", "h3"] });
    const narrow = analyseProbes(rounds("0:h1", "20:h1,h2", "40:h1,h2", "60:h2"), {
      hosts: HOSTS,
      exempt: [{ host: "h1", from: 0, to: 20 }],
    });
    expect(narrow.maxOutCounted).toEqual({ count: 2, at: 40, hosts: ["h1", "h2"] });
  });
});
