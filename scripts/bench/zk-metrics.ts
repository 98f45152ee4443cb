import { fourLetterWord } from "../../test/harness/zookeeper.ts";

/** Requests the server has received so far (mntr's zk_packets_received). */
export async function packetsReceived(port: number): Promise<number> {
  const text = await fourLetterWord("127.0.0.1", port, "mntr", 5_000);
  const match = /zk_packets_received\s+(\d+)/.exec(text);
  if (!match?.[1]) throw new Error(`mntr did not report zk_packets_received: ${text.slice(0, 200)}`);
  return Number(match[1]);
}
