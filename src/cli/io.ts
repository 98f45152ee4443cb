import { printable } from "../text/printable.ts";
/** Where the CLI writes; tests and the agent's in-process harness pass their own. */
export interface Io {
  /** A line to stdout (newline added). */
  out(text: string): void;
  /** Raw text to stdout, no newline (live progress lines). */
  write(text: string): void;
  err(text: string): void;
  isTty: boolean;
}

export const processIo: Io = {
  out: (text) => void process.stdout.write(text.endsWith("\n") ? text : `${text}\n`),
  write: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text.endsWith("\n") ? text : `${text}\n`),
  isTty: process.stdout.isTTY === true,
};

/** Left-aligned columns separated by two spaces; the last column is not padded. */
/** A table for humans. Every cell is made printable (one line, no escape sequences): cells
 *  carry text read from ZooKeeper. */
export function renderTable(header: string[], rawRows: string[][], indent = ""): string {
  const rows = rawRows.map((r) => r.map(printable));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string =>
    indent +
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

export function printJson(io: Io, value: unknown): void {
  io.out(JSON.stringify(value, null, 2));
}
