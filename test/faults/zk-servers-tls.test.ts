// The server-failure scenarios of server-restart-scenarios.ts over mutual TLS: every member
// serves its secureClientPort (Netty, PEM stores, client certificates required), agents and CLI
// connect only there with certificates made by openssl. Reconnects, failover to another member
// and the TLS handshake on each new connection must keep every invariant of the plain runs.

import { afterAll, beforeAll, describe, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Pki, makePki } from "../harness/certs.ts";
import { useFaultSuite } from "./fixture.ts";
import { followerRestarted, leaderKilledAndRestarted } from "./server-restart-scenarios.ts";

setDefaultTimeout(120_000);

let pki: Pki | undefined;
beforeAll(() => {
  pki = makePki(mkdtempSync(join(tmpdir(), "conveyor-pki-faults-")));
});
afterAll(() => {
  if (pki) rmSync(pki.dir, { recursive: true, force: true });
});

const suite = useFaultSuite({
  tls: () => {
    if (!pki) throw new Error("no PKI: the certificates are made in beforeAll");
    return {
      server: { keyStore: pki.serverKeyStore, trustStore: pki.ca },
      fleet: { ca: pki.ca, agent: pki.client("agent"), admin: pki.client("ci") },
    };
  },
});

describe("ZooKeeper servers fail mid-rollout, over mutual TLS", () => {
  test("TLS: leader killed mid-rollout and restarted: sessions survive, ≤ slots, converges within 20 s of publish", () =>
    leaderKilledAndRestarted(suite, "TLS: leader killed + restarted"));

  test("TLS: a follower restarted mid-rollout: sessions survive, ≤ slots, converges within 20 s of publish", () =>
    followerRestarted(suite, "TLS: follower restarted"));
});
