import { readFileSync } from "node:fs";
import { ZkClient, type ZkClientOptions } from "../../src/zk/client.ts";
import type { Pki } from "../../test/harness/certs.ts";
import type { ZooKeeperServer } from "../../test/harness/zookeeper.ts";

/** How a benchmark's clients reach ZooKeeper: its plain client port, or its secure port with
 *  a client certificate (mutual TLS). Measured side by side in one run (`bench --tls`). */
export interface Transport {
  name: "plain" | "tls";
  /** host:port list, without a chroot. */
  servers: string;
  tls?: ZkClientOptions["tls"];
}

export function plainTransport(server: ZooKeeperServer): Transport {
  return { name: "plain", servers: server.connectString };
}

export function tlsTransport(server: ZooKeeperServer, pki: Pki): Transport {
  if (!server.secureConnectString) throw new Error("tlsTransport: the server was started without tls");
  const client = pki.client("bench");
  const read = (path: string): string => readFileSync(path, "utf8");
  return { name: "tls", servers: server.secureConnectString, tls: { ca: read(pki.ca), cert: read(client.cert), key: read(client.key) } };
}

/** ZkClient options for `chroot` over `transport`. */
export function clientOptions(transport: Transport, chroot: string): Pick<ZkClientOptions, "connectString" | "tls"> {
  return { connectString: transport.servers + chroot, ...(transport.tls ? { tls: transport.tls } : {}) };
}

/** connect() → session established, then close; `samples` times (ms each). */
export async function connectTimes(transport: Transport, samples: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now();
    const zk = await ZkClient.connect({ ...clientOptions(transport, "/bench-connect"), connectTimeoutMs: 30_000 });
    times.push(performance.now() - t0);
    await zk.close();
  }
  return times;
}
