import { sign, verify } from "node:crypto";
import { OperationError } from "./errors.ts";
import { type AppSpec, COMMAND_FIELDS } from "../config/app-spec.ts";
import { type SigningKey, type TrustedKey, fingerprintOf, publicKeyObject } from "../config/signing-keys.ts";

/**
 * Signed releases. A signature covers what decides what runs on a server — the app's name, the
 * version, the rollout id, the previous version (%(previous)s), every command, the groups — and
 * a release sequence, so that an agent that has accepted one release refuses an older one
 * replayed into ZooKeeper. Slots, pause, canary and failure budget are not covered: they
 * decide how fast a release spreads, not what it runs, and operators change them without the
 * release key.
 */

/** The bytes signed: a tagged JSON array in a fixed order. Absent optional fields are left
 *  out (not null), so adding a command type later leaves older signatures valid. */
export function releasePayload(app: string, spec: AppSpec, sequence: number): Buffer {
  const commands: Record<string, string> = {};
  for (const [field] of COMMAND_FIELDS) {
    const template = spec[field];
    if (template !== undefined) commands[field] = template;
  }
  const previous = spec.previousVersion === undefined ? {} : { previousVersion: spec.previousVersion };
  return Buffer.from(
    JSON.stringify([
      "conveyor-release-1",
      { app, version: spec.version, rolloutId: spec.rolloutId, ...previous, commands, groups: spec.groups, sequence },
    ]),
  );
}

/** A spec's release, as `status` and `app show` describe it. */
export type ReleaseSigning =
  | { signed: false }
  | { signed: true; fingerprint: string; sequence: number /** the signature matches its own key */; intact: boolean };

export function describeSigning(app: string, spec: AppSpec): ReleaseSigning {
  const signature = spec.signature;
  if (!signature) return { signed: false };
  return { signed: true, fingerprint: fingerprintOf(signature.key), sequence: signature.sequence, intact: signatureIntact(app, spec) };
}

function signatureIntact(app: string, spec: AppSpec): boolean {
  const signature = spec.signature;
  const key = signature && publicKeyObject(signature.key);
  if (!signature || !key) return false;
  return verify(null, releasePayload(app, spec, signature.sequence), key, Buffer.from(signature.value, "base64"));
}

/** Why an agent trusting `trusted` must not run `spec`; undefined when it may. */
export function untrustedRelease(app: string, spec: AppSpec, trusted: readonly TrustedKey[]): string | undefined {
  const signature = spec.signature;
  if (!signature) return "the release is not signed, and this agent runs only releases signed by one of its trustedKeys";
  const fingerprint = fingerprintOf(signature.key);
  if (!trusted.some((key) => key.publicKey === signature.key)) {
    return `the release is signed by ${fingerprint}, which is not one of this agent's trustedKeys`;
  }
  if (!signatureIntact(app, spec)) {
    return `the release's signature (key ${fingerprint}) does not match its contents: changed after signing`;
  }
  return undefined;
}

/**
 * The spec to write after a change from `before` to `after`: signed by `signer` when one is
 * given; otherwise the signature `before` carried if the change left every signed field as it
 * was (pause, set-slots, promote), and none if it did not (a retry or publish without the key
 * must not keep a signature that no longer matches — agents would call the release tampered
 * with rather than unsigned).
 *
 * The sequence is the signing time in milliseconds — releases signed later are newer even
 * across keys, and across an app deleted and created again — or one more than `before`'s, if
 * that was signed with the same key at a later time by the clock of its signer.
 */
export function sealRelease(app: string, before: AppSpec | undefined, after: AppSpec, signer: SigningKey | undefined, now: Date): AppSpec {
  const { signature: carried, ...unsigned } = after;
  if (signer) {
    const last = before?.signature;
    const previous = before && last?.key === signer.publicKey && signatureIntact(app, before) ? last.sequence : 0;
    const sequence = Math.max(now.getTime(), previous + 1);
    const value = sign(null, releasePayload(app, unsigned, sequence), signer.privateKey).toString("base64");
    return { ...unsigned, signature: { key: signer.publicKey, sequence, value } };
  }
  if (carried && before && samePayload(app, before, after, carried.sequence)) return after;
  return unsigned;
}

function samePayload(app: string, a: AppSpec, b: AppSpec, sequence: number): boolean {
  return releasePayload(app, a, sequence).equals(releasePayload(app, b, sequence));
}

/**
 * Whether a release signed with `signer` may inherit what `current` holds — its commands, its
 * groups, its previous version (for a rollback) — because this very key signed `current` and
 * nothing changed since. Anything else (unsigned, another key, changed after signing) may have
 * been written by whoever could write to ZooKeeper: signing on top of it would vouch for their
 * commands with the release key.
 */
export function vouchedBy(app: string, current: AppSpec, signer: SigningKey): boolean {
  return current.signature?.key === signer.publicKey && signatureIntact(app, current);
}

/** Refuses to sign a release that would inherit from a spec `signer` does not vouch for. */
export function assertSignableBasis(app: string, current: AppSpec, signer: SigningKey | undefined, action: string): void {
  if (!signer || vouchedBy(app, current, signer)) return;
  const signature = current.signature;
  const state = !signature
    ? "is not signed"
    : signature.key !== signer.publicKey
      ? `is signed by another key (${fingerprintOf(signature.key)})`
      : "was changed after it was signed";
  throw new OperationError(
    `app "${app}": its current spec ${state}, so its commands may not be yours and ${action} would sign them; publish with every command given instead: conveyor app create ${app} VERSION --sign-key … --get-version-cmd … --deploy-cmd … --verify-cmd … --health-cmd … --drain-cmd … --undrain-cmd … --groups … ("" for none)`,
  );
}
