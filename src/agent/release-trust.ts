import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AppSpec } from "../config/app-spec.ts";
import type { TrustedKey } from "../config/signing-keys.ts";
import { untrustedRelease } from "../apps/release-signature.ts";
import type { Logger } from "./logger.ts";

/** The file, in the agent's state directory, holding the newest release accepted per app. */
export const ACCEPTED_RELEASES_FILE = "accepted-releases.json";

/**
 * An agent's trust in releases. With no trusted keys it trusts every spec (as before signing
 * existed: adoption is gradual). With keys, a spec is run only if signed by one of them, intact,
 * and not older than the newest release this agent has accepted for the app — so a signed old
 * release written back into ZooKeeper cannot downgrade the fleet; a deliberate rollback is a new
 * signature, with a new sequence. The newest sequences are kept in the state directory, across
 * restarts; without one (or if it cannot be written) they last as long as the process, and the
 * failure to keep them is logged.
 */
export class ReleaseTrust {
  private readonly newest = new Map<string, number>();
  private readonly file: string | undefined;

  constructor(
    private readonly keys: readonly TrustedKey[],
    stateDir: string | undefined,
    private readonly log: Logger,
  ) {
    this.file = keys.length > 0 && stateDir ? join(stateDir, ACCEPTED_RELEASES_FILE) : undefined;
    this.load();
  }

  get enforced(): boolean {
    return this.keys.length > 0;
  }

  /**
   * Why `spec` must not run here; undefined when it may. Accepting a release remembers its
   * sequence: call this right before acting on a spec, every time.
   */
  refusal(app: string, spec: AppSpec): string | undefined {
    if (!this.enforced) return undefined;
    const untrusted = untrustedRelease(app, spec, this.keys);
    if (untrusted || !spec.signature) return untrusted ?? "the release is not signed";
    const { sequence } = spec.signature;
    const newest = this.newest.get(app) ?? 0;
    if (sequence < newest) {
      return `the release's sequence ${sequence} is older than ${newest}, the newest this agent accepted for ${app}: an old release replayed? (to go back, publish a newly signed release, e.g. conveyor app rollback --sign-key)`;
    }
    if (sequence > newest) {
      this.newest.set(app, sequence);
      this.save();
    }
    return undefined;
  }

  private load(): void {
    if (!this.file) return;
    let text: string;
    try {
      text = readFileSync(this.file, "utf8");
    } catch (error) {
      if ((error as { code?: string }).code !== "ENOENT") this.log.error("cannot read the accepted releases", { error: String(error) });
      return;
    }
    try {
      const value: unknown = JSON.parse(text);
      if (typeof value !== "object" || value === null) throw new Error("not a JSON object");
      for (const [app, sequence] of Object.entries(value)) {
        if (Number.isSafeInteger(sequence) && (sequence as number) > 0) this.newest.set(app, sequence as number);
      }
    } catch (error) {
      this.log.error("the accepted releases file is unreadable; starting from none", { file: this.file, error: String(error) });
    }
  }

  /** Write-then-rename, so a crash leaves the old file or the new one, never half of one. */
  private save(): void {
    if (!this.file) return;
    try {
      mkdirSync(join(this.file, ".."), { recursive: true, mode: 0o700 });
      const temporary = `${this.file}.${process.pid}.tmp`;
      writeFileSync(temporary, JSON.stringify(Object.fromEntries(this.newest)), { mode: 0o600 });
      renameSync(temporary, this.file);
    } catch (error) {
      this.log.error("cannot record the accepted release; replay protection lasts only until restart", {
        file: this.file,
        error: String(error),
      });
    }
  }
}
