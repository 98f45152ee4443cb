import type { ReleaseSigning } from "../apps/release-signature.ts";

/** How `status` and `app show` say whether a release is signed, and by which key. */
export function signingText(release: ReleaseSigning): string {
  if (!release.signed) return "unsigned";
  if (!release.intact) return `signed by ${release.fingerprint} BUT THE SIGNATURE DOES NOT MATCH (changed after signing)`;
  return `signed by ${release.fingerprint}`;
}
