/**
 * cac names an unknown option by the key it parsed it into, not as it was typed: mri turns
 * `--health-cmd` into the key `health-cmd` (and `--no-such-flag` into `such-flag`, `-xy` into
 * `x` and `y`), cac camel-cases it and reports "Unknown option `--healthCmd`". This finds the
 * word of argv that produced that key, the same way mri and cac do, so the error can name the
 * option as the user typed it. Undefined when `message` is no such complaint or no word
 * matches (the caller then shows cac's own message).
 */
export function unknownOptionAsTyped(message: string, argv: readonly string[]): string | undefined {
  const reported = /^Unknown option `-{1,2}([^`]+)`$/.exec(message)?.[1];
  if (reported === undefined) return undefined;
  for (const word of argv) {
    if (word === "--") break; // the rest is positional for mri
    const dashes = /^-*/.exec(word)?.[0].length ?? 0;
    if (dashes === 0 || word.length === dashes) continue;
    const name = word.slice(dashes);
    // mri: `--no-x` sets x to false; `--name[=value]` is one key; `-abc` (one or 3+ dashes) is a, b, c.
    const keys = name.startsWith("no-") ? [name.slice(3)] : dashes === 2 ? [name.split("=")[0] ?? name] : [...(name.split("=")[0] ?? name)];
    if (keys.some((key) => cacKey(key) === reported)) return word.split("=")[0] ?? word;
  }
  return undefined;
}

/** The key cac checks an mri key under: its first dot-segment, camel-cased as cac does it. */
function cacKey(key: string): string {
  const [first = ""] = key.split(".");
  return first.replaceAll(/([a-z])-([a-z])/g, (_, a: string, b: string) => a + b.toUpperCase());
}
