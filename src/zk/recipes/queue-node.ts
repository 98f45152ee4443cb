/**
 * Names of the semaphore's queue and lease nodes: `<host>-<sessionId>-<sequence>`. The session
 * id (16 hex digits) lets an agent find its own node after a connection loss during create
 * (ZOOKEEPER-1262); the host lets `status` show queue positions.
 */
export interface QueueNodeName {
  name: string;
  host: string;
  sessionId: string;
  sequence: number;
}

const QUEUE_NODE = /^(.+)-([0-9a-f]{16})-(\d{10})$/;

export function queueNodePrefix(host: string, sessionId: string): string {
  return `${host}-${sessionId}-`;
}

export function parseQueueNode(name: string): QueueNodeName | undefined {
  const match = QUEUE_NODE.exec(name);
  if (!match?.[1] || !match[2] || !match[3]) return undefined;
  return { name, host: match[1], sessionId: match[2], sequence: Number(match[3]) };
}
