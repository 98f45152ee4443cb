// The ticket queue's names and marker (src/zk/recipes/ticket-queue.ts): a ticket's name is what
// ZooKeeper appends to "q-", and anything else is not a ticket; the marker reads back what was
// written, and an empty or foreign marker means "nobody admitted yet".

import { describe, expect, test } from "bun:test";
import { formatMarker, parseMarker, readMarker, ticketName, ticketSequence } from "../../src/zk/recipes/ticket-queue.ts";

describe("ticket names", () => {
  test("ten digits, zero-padded, as ZooKeeper writes sequence suffixes; read back exactly", () => {
    expect(ticketName(0)).toBe("q-0000000000");
    expect(ticketName(42)).toBe("q-0000000042");
    expect(ticketName(2_147_483_647)).toBe("q-2147483647");
    for (const n of [0, 7, 1_000_000, 2_147_483_647]) expect(ticketSequence(ticketName(n))).toBe(n);
  });

  test("anything else is not a ticket: the listing queue's names, other prefixes, short or long numbers", () => {
    for (const name of ["h1-0123456789abcdef-0000000042", "x-0000000001", "q-42", "q-00000000420", "q-000000004a", "q-", ""]) {
      expect(ticketSequence(name)).toBeUndefined();
    }
  });
});

describe("the admitted-up-to marker", () => {
  test("reads back what was written; empty, garbage or negative data means none admitted (-1)", () => {
    for (const n of [0, 5, 2_147_483_647]) expect(parseMarker(formatMarker(n))).toBe(n);
    for (const data of ["", "  ", "-3", "abc", "1e3", "12345678901", '{"limit":1}']) expect(parseMarker(Buffer.from(data))).toBe(-1);
  });

  test("pending tickets (admitted in bulk, not yet leases) read back in order, written as runs", () => {
    expect(formatMarker(9, [7, 3, 4, 5, 9]).toString()).toBe("9;3-5,7,9");
    expect(readMarker(formatMarker(9, [7, 3, 4, 5, 9]))).toEqual({ upTo: 9, pending: [3, 4, 5, 7, 9] });
    expect(formatMarker(12, []).toString()).toBe("12");
    expect(readMarker(Buffer.from("12"))).toEqual({ upTo: 12, pending: [] });
  });

  test("a marker that is not one an admission writes means none admitted, nothing pending", () => {
    // Overlapping, out of order, above what was admitted, or more than any slot count.
    const tooMany = `300000;${Array.from({ length: 3 }, (_, i) => `${i * 100_000}-${i * 100_000 + 60_000}`).join(",")}`;
    for (const data of [
      "9;",
      "9;5-3",
      "9;a",
      "9;1-200000",
      "9;1,,2",
      ";4",
      "9 4",
      "9;3,3",
      "9;5,3",
      "9;1-5,4-6",
      "9;10",
      "5;0-4,0-4",
      tooMany,
    ]) {
      expect(readMarker(Buffer.from(data))).toEqual({ upTo: -1, pending: [] });
    }
  });
});
