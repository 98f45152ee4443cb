import { createHash, timingSafeEqual } from "node:crypto";
import { UsageError } from "../../config/errors.ts";
import { readSmallFile } from "../../config/small-file.ts";
import { quote } from "../../text/printable.ts";

/** Who may see the dashboard: HTTP basic credentials, or a bearer token. */
export type DashboardAuth = { kind: "basic"; user: string; password: string } | { kind: "bearer"; token: string };

/**
 * `--dashboard-auth-file FILE`: one line, `USER:PASSWORD` (HTTP basic: what a browser asks
 * for) or a token with no ":" (`Authorization: Bearer TOKEN`: scripts, Prometheus). The secret
 * is never echoed in an error.
 */
export async function loadDashboardAuth(path: string): Promise<DashboardAuth> {
  const text = ((await readSmallFile(path, "--dashboard-auth-file")) ?? "").trim();
  const where = `--dashboard-auth-file ${quote(path)}`;
  if (text === "" || /\s/.test(text)) {
    throw new UsageError(
      `${where}: expected one line, USER:PASSWORD (HTTP basic) or a token without ":" (bearer); the content is not shown`,
    );
  }
  const colon = text.indexOf(":");
  if (colon === -1) {
    if (text.length < 16) throw new UsageError(`${where}: a bearer token must be at least 16 characters`);
    return { kind: "bearer", token: text };
  }
  const user = text.slice(0, colon);
  const password = text.slice(colon + 1);
  if (user === "" || password.length < 8) throw new UsageError(`${where}: expected USER:PASSWORD with a password of at least 8 characters`);
  return { kind: "basic", user, password };
}

const digest = (text: string): Buffer => createHash("sha256").update(text).digest();

/** Whether the request carries the credentials; compared in constant time. */
export function authorised(auth: DashboardAuth, header: string | null): boolean {
  if (header === null) return false;
  const expected =
    auth.kind === "basic" ? `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString("base64")}` : `Bearer ${auth.token}`;
  return timingSafeEqual(digest(header.trim()), digest(expected));
}

/** The 401 a browser answers with its login prompt (basic) or a script reads (bearer). */
export function challenge(auth: DashboardAuth): Response {
  const scheme = auth.kind === "basic" ? 'Basic realm="conveyor dashboard", charset="UTF-8"' : 'Bearer realm="conveyor dashboard"';
  return new Response("authentication required\n", { status: 401, headers: { "www-authenticate": scheme } });
}
