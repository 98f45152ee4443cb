// Watch and connection-state listeners are called from the ZooKeeper library's socket handler
// and from session-loss handling: one that throws must not keep the others from hearing.
import { afterEach, describe, expect, test } from "bun:test";
import { deliverAll } from "../../src/zk/watchers.ts";

const realQueueMicrotask = globalThis.queueMicrotask;
afterEach(() => {
  globalThis.queueMicrotask = realQueueMicrotask;
});

describe("deliverAll", () => {
  test("every listener hears, even after one throws; the first error is raised again afterwards, on its own", () => {
    const deferred: (() => void)[] = [];
    globalThis.queueMicrotask = (fn: () => void) => void deferred.push(fn);
    const heard: string[] = [];
    const boom = new Error("listener bug");
    deliverAll<string>(
      [
        (v) => heard.push(`a:${v}`),
        () => {
          throw boom;
        },
        (v) => heard.push(`c:${v}`),
        () => {
          throw new Error("second bug");
        },
      ],
      "lost",
    );
    expect(heard).toEqual(["a:lost", "c:lost"]);
    expect(deferred).toHaveLength(1);
    expect(() => deferred[0]?.()).toThrow(boom);
  });

  test("a listener that removes itself (or another) while being called does not disturb the round", () => {
    const listeners = new Set<(v: number) => void>();
    const heard: string[] = [];
    const first = (v: number): void => {
      heard.push(`first ${v}`);
      listeners.delete(second);
    };
    const second = (v: number): void => void heard.push(`second ${v}`);
    listeners.add(first);
    listeners.add(second);
    deliverAll(listeners, 1);
    deliverAll(listeners, 2);
    expect(heard).toEqual(["first 1", "second 1", "first 2"]);
  });
});
