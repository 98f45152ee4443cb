// What ZkClient needs from inside node-zookeeper-client (1.1.3) beyond its public API, each
// to mend a defect of the library: a handshake that is never answered, a retired client that
// re-dials, requests that were never sent and would never fail. Only src/zk imports this.
import type { EventEmitter } from "node:events";
import * as zookeeper from "node-zookeeper-client";

interface ConnectionManager extends EventEmitter {
  state: number;
  socket?: { destroy(): void; once(event: "data", fn: () => void): void };
  connect(): void;
  onSocketConnected(): void;
  findNextServer(callback: (server: unknown) => void): void;
  packetQueue: { shift(): { callback?: (error: unknown) => void } | undefined };
  /** The library's timer for the TCP connect of the current socket. */
  connectTimeoutHandler: ReturnType<typeof setTimeout> | null;
  /** Ours: set when the library is retired; a scheduled reconnect then does nothing. */
  retired?: boolean;
}

export interface LibraryInternals {
  connectionManager: ConnectionManager;
}

const LIB_STATE_CLOSING = -1;
const LIB_STATE_CLOSED = -2;
const LIB_STATE_CONNECTING = 1;
const LIB_STATE_CONNECTED = 2;

export function libraryInternals(lib: zookeeper.Client): LibraryInternals {
  return lib as unknown as LibraryInternals;
}

/**
 * The library bounds only the TCP connect; a server that accepts the connection but never
 * answers the handshake (frozen, partitioned behind a proxy) would hold it forever. Each
 * attempt gets `limitMs()` (a share of the session timeout); then the socket is dropped and the
 * library tries the next server. A reconnect the library scheduled (spin delay) does not dial
 * once the client is retired (disposeLibrary).
 */
export function boundHandshakes(lib: zookeeper.Client, limitMs: () => number): void {
  const manager = libraryInternals(lib).connectionManager;
  const findNextServer = manager.findNextServer.bind(manager);
  manager.findNextServer = (callback) =>
    findNextServer((server) => {
      if (!manager.retired) callback(server);
    });
  let timer: ReturnType<typeof setTimeout> | undefined;
  manager.on("state", (state: number) => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (state !== LIB_STATE_CONNECTING) return;
    timer = setTimeout(() => {
      if (manager.state !== LIB_STATE_CONNECTING) return;
      // The library's own TCP-connect timer is cleared only by a connect or a socket error,
      // and destroy() gives neither: left running, it would later destroy whatever socket is
      // current then — a healthy connection to the next server.
      if (manager.connectTimeoutHandler) clearTimeout(manager.connectTimeoutHandler);
      manager.connectTimeoutHandler = null;
      manager.socket?.destroy();
    }, limitMs());
    timer.unref?.();
  });
}

/**
 * Retires a library client for good. It must never connect again: a reconnect attempt it had
 * already scheduled would present the old session id and keep a session we declared lost
 * alive on the server (its ephemeral lease and presence nodes with it). A CLOSE_SESSION is
 * sent only on an established connection (waiting at most `graceMs` for the answer) — queued
 * during a handshake, the library would misread the handshake reply as the close's answer and
 * throw.
 */
export async function disposeLibrary(lib: zookeeper.Client, graceMs: number): Promise<void> {
  const manager = libraryInternals(lib).connectionManager;
  if (manager.state === LIB_STATE_CLOSED) return;
  const wasConnected = manager.state === LIB_STATE_CONNECTED;
  manager.retired = true;
  manager.connect = () => undefined;
  manager.onSocketConnected = function (this: ConnectionManager) {
    this.socket?.destroy();
  };
  if (wasConnected && graceMs > 0) {
    const closed = new Promise<void>((resolve) => {
      const onState = (state: number): void => {
        if (state === LIB_STATE_CLOSED) {
          manager.off("state", onState);
          resolve();
        }
      };
      manager.on("state", onState);
    });
    lib.close();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
  }
  // In CLOSING the library does not reconnect when the socket closes.
  if (manager.state !== LIB_STATE_CLOSED) {
    manager.state = LIB_STATE_CLOSING;
    manager.socket?.destroy();
  }
  // Requests issued while disconnected were never sent, and the library fails only sent ones:
  // fail the rest now, so their callers retry on the new session at once instead of waiting
  // out the operation timeout. With a real library Exception: some of the library's own
  // callbacks (exists) call getCode() on it. One callback that throws must neither stop the
  // drain nor escape as an unhandled rejection (which would end the agent mid-outage).
  for (let packet = manager.packetQueue.shift(); packet; packet = manager.packetQueue.shift()) {
    try {
      packet.callback?.(connectionLossException());
    } catch {
      // That request's own promise is settled by the operation timeout instead.
    }
  }
}

/** The library's own CONNECTION_LOSS exception (with getCode(), which its callbacks call). */
function connectionLossException(): zookeeper.Exception {
  return new zookeeper.Exception(zookeeper.Exception.CONNECTION_LOSS, "CONNECTION_LOSS", connectionLossException);
}
