// The failed tests of a `bun test --reporter=junit` report (scripts/failed-tests.ts prints them
// again at the end of a failed run). A small scanner, not an XML library: bun writes one
// element per tag, attributes in double quotes, text escaped with entities.

export interface FailedTest {
  /** Suite names and the test name, as bun prints them: `a > b > test`. */
  name: string;
  /** `file:line` of the test. */
  where: string;
  /** The failure text (error, message, stack), entities decoded. */
  error: string;
}

const TAG = /<(\/?)(testsuite|testcase|failure|error)\b((?:[^>"]|"[^"]*")*?)(\/?)>/g;
const ATTRIBUTE = /(\w+)="([^"]*)"/g;

/** The failed test cases of a JUnit XML report, in report order. */
export function failedTests(xml: string): FailedTest[] {
  const failed: FailedTest[] = [];
  const suites: string[] = [];
  let current: { name: string; where: string } | undefined;
  for (const match of xml.matchAll(TAG)) {
    const [, closing, tag, rawAttributes = "", selfClosing] = match;
    const attributes = Object.fromEntries([...rawAttributes.matchAll(ATTRIBUTE)].map(([, k = "", v = ""]) => [k, decode(v)]));
    if (tag === "testsuite") {
      if (closing) suites.pop();
      else if (!selfClosing) suites.push(attributes.name ?? "");
    } else if (tag === "testcase") {
      // The outermost suite is the file: bun names a test without it.
      current =
        closing || selfClosing
          ? undefined
          : { name: [...suites.slice(1), attributes.name ?? ""].join(" > "), where: `${attributes.file ?? "?"}:${attributes.line ?? "?"}` };
    } else if (!closing && current) {
      const start = match.index + match[0].length;
      const end = xml.indexOf(`</${tag}>`, start);
      const body = selfClosing || end < 0 ? "" : xml.slice(start, end);
      failed.push({ ...current, error: decode(body).trimEnd() || attributes.message || `${tag} (no text)` });
    }
  }
  return failed;
}

function decode(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_, entity: string) => {
    const named: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
    if (entity[0] !== "#") return named[entity.toLowerCase()] ?? "";
    const code = entity[1] === "x" || entity[1] === "X" ? Number.parseInt(entity.slice(2), 16) : Number(entity.slice(1));
    return String.fromCodePoint(code);
  });
}
