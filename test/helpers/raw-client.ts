import { ZkClient } from "../../src/zk/client.ts";

/** A raw client on `connect` (not through the CLI) for what a test writes or reads by hand;
 *  closed after `fn`, whatever it does. */
export async function withRaw<T>(connect: string, fn: (client: ZkClient) => Promise<T>): Promise<T> {
  const client = await ZkClient.connect({ connectString: connect, connectTimeoutMs: 5_000 });
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}
