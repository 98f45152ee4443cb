// Text shown to operators. A leaf module: every layer, src/zk included, may import it, and it
// imports nothing, so imports keep flowing one way.

/**
 * Text from ZooKeeper or from a person is shown to operators: escape control characters (line
 * breaks, terminal escape sequences, NUL) so it stays on one line and cannot repaint a screen.
 */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => {
    if (c === "\n") return "\\n";
    if (c === "\t") return "\\t";
    if (c === "\r") return "\\r";
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
  });
}

/** A value quoted for an error message: JSON-style, control characters escaped, shortened. */
export function quote(value: unknown): string {
  const text = typeof value === "string" ? value : (JSON.stringify(value) ?? String(value));
  const short = text.length > 80 ? `${text.slice(0, 77)}...` : text;
  return JSON.stringify(short).replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** The first line of a message (an error, a command's output), printable and shortened to `max`. */
export function firstLine(text: string | undefined, max = 120): string {
  const line = printable((text ?? "").split("\n")[0] ?? "");
  return line.length > max ? `${line.slice(0, max - 3)}...` : line;
}
