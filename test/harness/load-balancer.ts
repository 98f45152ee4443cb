// A load balancer's member list as a file (one host per line) and the script drain and undrain
// commands run to edit it:  <root>/lb remove HOST  |  <root>/lb add HOST
// The prober (./prober.ts) reads the list each round and counts a host as an outage only while
// it is a member: users are sent only to members.
//
// Drains of several hosts run at once, so an edit is a read-modify-write under a lock (flock), and
// the new list is written to a temporary file and renamed over the old one: a reader never sees
// half a list. Each edit is also appended to <members>.log as `<add|remove> <host> <epoch-ms>`.

import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { shellQuote } from "../../src/agent/placeholders.ts";

export interface LbEdit {
  op: "add" | "remove";
  host: string;
  at: number;
}

export class LoadBalancer {
  /** The member list. */
  readonly membersFile: string;
  /** The edit script: `lb add|remove HOST`. */
  readonly script: string;

  /** Creates `<root>/members` with every host in it, and `<root>/lb`. */
  constructor(root: string, hosts: readonly string[]) {
    this.membersFile = join(root, "members");
    this.script = join(root, "lb");
    const tmp = `${this.membersFile}.init`;
    writeFileSync(tmp, hosts.map((h) => `${h}\n`).join(""));
    renameSync(tmp, this.membersFile);
    writeFileSync(this.script, lbScript(this.membersFile));
    chmodSync(this.script, 0o755);
  }

  /** --drain-cmd: take this host out of rotation. */
  get drainCmd(): string {
    return `${shellQuote(this.script)} remove %(host)s`;
  }

  /** --undrain-cmd: put it back. */
  get undrainCmd(): string {
    return `${shellQuote(this.script)} add %(host)s`;
  }

  members(): string[] {
    return readMembers(this.membersFile);
  }

  edits(): LbEdit[] {
    const path = `${this.membersFile}.log`;
    if (!existsSync(path)) return [];
    return readFileSync(path, "utf8")
      .split("\n")
      .flatMap((line) => {
        const [op = "", host = "", at = ""] = line.trim().split(" ");
        return op === "add" || op === "remove" ? [{ op, host, at: Number(at) }] : [];
      });
  }
}

/** The hosts listed in a member file ([] when it does not exist). */
export function readMembers(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return [];
  }
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
}

function lbScript(membersFile: string): string {
  return `#!/bin/sh
# lb add|remove HOST: edit the load balancer's member list under a lock, atomically.
set -eu
file=${shellQuote(membersFile)}
if [ $# -ne 2 ] || { [ "$1" != add ] && [ "$1" != remove ]; }; then
  echo "usage: lb add|remove HOST" >&2
  exit 2
fi
exec 9>>"$file.lock"
flock 9
tmp="$file.tmp.$$"
{ grep -vxF -- "$2" "$file" || true; } > "$tmp"
if [ "$1" = add ]; then printf '%s\\n' "$2" >> "$tmp"; fi
mv -f "$tmp" "$file"
printf '%s %s %s\\n' "$1" "$2" "$(date +%s%3N)" >> "$file.log"
`;
}
