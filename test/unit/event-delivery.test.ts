// OrderedDelivery: strict order, one event at a time, retried while the receiver is down, the
// documented bound (the oldest waiting event is dropped, and said so), refused events skipped.
// The receiver and the backoff's sleep are passed in, so each step is forced, not timed.

import { describe, expect, test } from "bun:test";
import { sleep } from "../../src/agent/sleep.ts";
import { type DeliveryTarget, OrderedDelivery, type Outcome } from "../../src/apps/event-delivery.ts";

interface Ev {
  seq: number;
}

/** A receiver whose answers the test sets: down (retry) until `up`, with a log of attempts. */
function receiver() {
  const attempts: number[] = [];
  const accepted: number[] = [];
  let answer: (seq: number) => Outcome = () => ({ ok: false, retry: true, reason: "ECONNREFUSED" });
  const target: DeliveryTarget = {
    name: "test",
    async send(body) {
      const seq = (JSON.parse(body) as Ev).seq;
      attempts.push(seq);
      const outcome = answer(seq);
      if (outcome.ok) accepted.push(seq);
      return outcome;
    },
  };
  return {
    target,
    attempts,
    accepted,
    set: (f: (seq: number) => Outcome) => {
      answer = f;
    },
  };
}

/** A sleep that resolves only when the test says so: the retry happens at the step we choose. */
function manualSleep() {
  const waiting: (() => void)[] = [];
  return {
    sleep: (_ms: number, signal: AbortSignal) =>
      new Promise<void>((resolve) => {
        waiting.push(resolve);
        signal.addEventListener("abort", () => resolve(), { once: true });
      }),
    async wake(): Promise<void> {
      for (let i = 0; i < 50 && waiting.length === 0; i++) await Bun.sleep(1);
      waiting.shift()?.();
      await Bun.sleep(1);
    },
  };
}

describe("OrderedDelivery", () => {
  test("retries the head while the receiver is down; the rest wait; all arrive in order once it is back", async () => {
    const r = receiver();
    const s = manualSleep();
    const warnings: string[] = [];
    const d = new OrderedDelivery<Ev>(r.target, {
      maxQueued: 100,
      retryInitialMs: 500,
      retryMaxMs: 4_000,
      warn: (m) => warnings.push(m),
      sleep: s.sleep,
    });
    for (const seq of [1, 2, 3]) d.push({ seq });
    await s.wake();
    await s.wake();
    expect(r.attempts).toEqual([1, 1, 1]); // only the head is tried
    expect(warnings.map((w) => w.replace(/.*retrying in /, ""))).toEqual(["500 ms", "1000 ms", "2000 ms"]);
    r.set(() => ({ ok: true }));
    d.push({ seq: 4 });
    await s.wake();
    expect(await d.close(1_000)).toBe(0);
    expect(r.accepted).toEqual([1, 2, 3, 4]);
    expect(d.delivered).toBe(4);
  });

  test("beyond maxQueued the oldest waiting event (not the one in flight) is dropped, with a warning naming it", async () => {
    const r = receiver();
    const s = manualSleep();
    const warnings: string[] = [];
    const d = new OrderedDelivery<Ev>(r.target, {
      maxQueued: 3,
      retryInitialMs: 10,
      retryMaxMs: 10,
      warn: (m) => warnings.push(m),
      sleep: s.sleep,
    });
    for (const seq of [1, 2, 3, 4, 5]) d.push({ seq });
    expect(d.dropped).toBe(2);
    expect(warnings.filter((w) => w.includes("dropped"))).toEqual([
      "test: dropped event seq 2: 3 events already waiting",
      "test: dropped event seq 3: 3 events already waiting",
    ]);
    r.set(() => ({ ok: true }));
    await s.wake();
    expect(await d.close(1_000)).toBe(0);
    expect(r.accepted).toEqual([1, 4, 5]);
  });

  test("an event refused for good is reported and skipped; the next goes on", async () => {
    const r = receiver();
    const warnings: string[] = [];
    r.set((seq) => (seq === 2 ? { ok: false, retry: false, reason: "HTTP 400" } : { ok: true }));
    const d = new OrderedDelivery<Ev>(r.target, {
      maxQueued: 10,
      retryInitialMs: 10,
      retryMaxMs: 10,
      warn: (m) => warnings.push(m),
      sleep,
    });
    for (const seq of [1, 2, 3]) d.push({ seq });
    expect(await d.close(1_000)).toBe(0);
    expect(r.accepted).toEqual([1, 3]);
    expect(warnings).toEqual(["test: event seq 2 refused, skipped: HTTP 400"]);
  });

  test("an event pushed while the pump is finishing (at any microtask) is delivered, and so is the next", async () => {
    // The push lands 0…12 microtasks after the receiver accepted the last queued event: one of
    // these falls between the pump's end and its clean-up.
    for (let depth = 0; depth <= 12; depth++) {
      const accepted: number[] = [];
      let d: OrderedDelivery<Ev> | undefined;
      const later = (n: number, f: () => void): void => (n === 0 ? f() : queueMicrotask(() => later(n - 1, f)));
      const target: DeliveryTarget = {
        name: "test",
        async send(body) {
          const seq = (JSON.parse(body) as Ev).seq;
          accepted.push(seq);
          if (seq === 1) later(depth, () => d?.push({ seq: 2 }));
          return { ok: true };
        },
      };
      d = new OrderedDelivery<Ev>(target, { maxQueued: 10, retryInitialMs: 5, retryMaxMs: 5, warn: () => undefined, sleep });
      d.push({ seq: 1 });
      await Bun.sleep(1);
      d.push({ seq: 3 });
      expect(await d.close(200), `depth ${depth}`).toBe(0);
      expect(accepted, `depth ${depth}`).toEqual([1, 2, 3]);
    }
  });

  test("close() gives up after its grace and returns what is left undelivered", async () => {
    const r = receiver();
    const d = new OrderedDelivery<Ev>(r.target, { maxQueued: 10, retryInitialMs: 5, retryMaxMs: 5, warn: () => undefined, sleep });
    for (const seq of [1, 2]) d.push({ seq });
    expect(await d.close(50)).toBe(2);
    expect(r.accepted).toEqual([]);
  });
});
