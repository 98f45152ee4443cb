import { X509Certificate } from "node:crypto";

/** A socket error as ZkClient reports it: what went wrong in words, and whether retrying the
 *  same server can help (a certificate that does not verify will not verify next time). */
export interface SocketProblem {
  message: string;
  /** A certificate was refused (the server's by us, or ours by the server): trying again is
   *  pointless. */
  certificate: boolean;
}

/** What we know of our own client certificate, to explain the server refusing it. */
export interface OwnCertificate {
  given: boolean;
  /** When it expired, if it has (ISO date). */
  expiredOn?: string;
  /** Its subject most specific first, as ZooKeeper's x509 provider names us (`CN=ci,O=Example`). */
  subject?: string;
}

/** Node's codes for a server certificate that does not verify (tls.connect's checks). */
const UNTRUSTED = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
]);

/** TLS alerts a server sends when it refuses our certificate, or that we sent none. */
const REFUSED_OURS = ["certificate required", "bad certificate", "certificate unknown", "unknown ca", "certificate expired"];

/** Our client certificate (PEM) as far as explaining a refusal goes. */
export function ownCertificate(pem: string | undefined, now = Date.now()): OwnCertificate {
  if (pem === undefined) return { given: false };
  try {
    const certificate = new X509Certificate(pem);
    const validTo = Date.parse(certificate.validTo);
    // Node lists the subject's attributes one per line in certificate order (most general
    // first); RFC 2253, as Java prints it, is the reverse, comma-separated.
    const subject = certificate.subject.split("\n").filter(Boolean).reverse().join(",");
    return validTo < now ? { given: true, subject, expiredOn: new Date(validTo).toISOString().slice(0, 10) } : { given: true, subject };
  } catch {
    return { given: true };
  }
}

/**
 * Says why a connection to a ZooKeeper server failed, in one line an operator can act on:
 * the server's certificate (expired, not from a trusted CA, not for this address), the server
 * refusing ours (none given, expired, not from a CA it trusts), a port that does not speak TLS,
 * or the plain network error.
 */
export function describeSocketError(error: unknown, own: OwnCertificate): SocketProblem {
  const code = typeof error === "object" && error !== null && "code" in error ? String((error as { code: unknown }).code) : "";
  const text = error instanceof Error ? error.message : String(error);
  // OpenSSL's names ("SSLV3_ALERT_BAD_CERTIFICATE") and Node's ("alert bad certificate") alike.
  const lower = `${code} ${text}`.toLowerCase().replaceAll("_", " ");
  if (code === "CERT_HAS_EXPIRED") return { certificate: true, message: "the server's TLS certificate has expired" };
  if (code === "CERT_NOT_YET_VALID") return { certificate: true, message: "the server's TLS certificate is not valid yet" };
  if (UNTRUSTED.has(code)) {
    return { certificate: true, message: `the server's TLS certificate is not signed by a CA we trust (${code}; check --tls-ca)` };
  }
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID")
    return { certificate: true, message: `the server's TLS certificate is not for this address: ${text}` };
  if (REFUSED_OURS.some((alert) => lower.includes(alert))) {
    if (!own.given) return { certificate: true, message: "the server requires a client certificate (--tls-cert and --tls-key)" };
    if (own.expiredOn) return { certificate: true, message: `the server refused our client certificate: it expired on ${own.expiredOn}` };
    return { certificate: true, message: "the server refused our client certificate (not signed by a CA it trusts?)" };
  }
  if (lower.includes("wrong version number") || lower.includes("packet length too long") || lower.includes("record overflow")) {
    return { certificate: false, message: "the server does not speak TLS on this port (use its secureClientPort)" };
  }
  if (lower.includes("before secure tls connection was established")) {
    return {
      certificate: false,
      message:
        "the server closed the connection during the TLS handshake (is this its secureClientPort; does it want a client certificate?)",
    };
  }
  return { certificate: false, message: text.split("\n")[0] ?? text };
}
