// Where a semaphore queue node stands (src/zk/recipes/semaphore.ts placeInQueue): the node it
// must watch (the one just before it, so a release wakes one waiter, not the herd) and how many
// are ahead. Pure: no ZooKeeper.

import { describe, expect, test } from "bun:test";
import { placeInQueue } from "../../src/zk/recipes/semaphore.ts";

const SID = "0123456789abcdef";
const node = (host: string, seq: number): string => `${host}-${SID}-${String(seq).padStart(10, "0")}`;

const cases: { name: string; names: string[]; ours: string; place: ReturnType<typeof placeInQueue> }[] = [
  { name: "alone: nobody ahead, nothing to watch", names: [node("a", 1)], ours: node("a", 1), place: { ahead: 0 } },
  { name: "lowest sequence: holds the mutex", names: [node("b", 5), node("a", 2), node("c", 9)], ours: node("a", 2), place: { ahead: 0 } },
  {
    name: "watches the next lower sequence, whatever the listing order",
    names: [node("d", 7), node("a", 2), node("c", 9), node("b", 5)],
    ours: node("c", 9),
    place: { predecessor: node("d", 7), ahead: 3 },
  },
  {
    name: "nodes after ours do not count",
    names: [node("a", 2), node("b", 5), node("c", 9)],
    ours: node("b", 5),
    place: { predecessor: node("a", 2), ahead: 1 },
  },
  {
    name: "gaps in the sequence (deleted nodes) do not matter",
    names: [node("a", 10), node("b", 400)],
    ours: node("b", 400),
    place: { predecessor: node("a", 10), ahead: 1 },
  },
  {
    name: "names without a sequence are ignored",
    names: ["junk", `x-${SID}-12`, node("a", 3), node("b", 4)],
    ours: node("b", 4),
    place: { predecessor: node("a", 3), ahead: 1 },
  },
  {
    name: "our node is gone (deleted by hand): undefined, queue again",
    names: [node("a", 1), node("b", 2)],
    ours: node("c", 3),
    place: undefined,
  },
  { name: "an empty queue: undefined", names: [], ours: node("a", 1), place: undefined },
  {
    name: "the same host's node of an older session is ahead like any other",
    names: [`a-fedcba9876543210-0000000001`, node("a", 2)],
    ours: node("a", 2),
    place: { predecessor: "a-fedcba9876543210-0000000001", ahead: 1 },
  },
];

describe("placeInQueue", () => {
  test.each(cases)("$name", ({ names, ours, place }) => {
    expect(placeInQueue(names, ours)).toEqual(place);
  });
});
