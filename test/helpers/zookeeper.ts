// Real ZooKeeper for tests. Typical use:
//
//   const zk = useZooKeeper();                   // one server for this test file
//   test("...", async () => {
//     const connect = zk.withChroot("publish");  // "127.0.0.1:PORT/t-publish-k3j9x2"
//   });
//
// Tests in one file share the server, so give each its own chroot.

import { afterAll, beforeAll } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { startZooKeeper, type StartOptions, type ZooKeeperServer } from "../harness/zookeeper.ts";
import { waitForStrict } from "../harness/wait.ts";

export {
  fourLetterWord,
  freePort,
  isZooKeeperPid,
  startZooKeeper,
  zooKeeperClasspath,
  ZOOKEEPER_HOST,
  type StartOptions,
  type ZooKeeperServer,
} from "../harness/zookeeper.ts";

export interface ZooKeeperFixture {
  /** "127.0.0.1:PORT"; read it inside tests or hooks, not at module load. */
  readonly connectString: string;
  readonly port: number;
  /** The server itself (stop, kill, restart, pid, dataDir, logFile). */
  readonly server: ZooKeeperServer;
  /** connectString plus a fresh chroot: "127.0.0.1:PORT/t-<prefix>-<random>". */
  withChroot(prefix: string): string;
}

/** Start one server in beforeAll and stop it in afterAll. */
export function useZooKeeper(opts: StartOptions = {}): ZooKeeperFixture {
  let server: ZooKeeperServer | undefined;
  beforeAll(async () => {
    server = await startZooKeeper(opts);
  }, 70_000); // three start attempts of up to 20 s each
  afterAll(async () => {
    await server?.stop();
    server = undefined;
  }, 15_000);
  const current = (): ZooKeeperServer => {
    if (!server) throw new Error("useZooKeeper(): the server exists only inside tests and hooks (after beforeAll)");
    return server;
  };
  return {
    get connectString() {
      return current().connectString;
    },
    get port() {
      return current().port;
    },
    get server() {
      return current();
    },
    withChroot(prefix: string) {
      return current().connectString + uniqueChroot(prefix);
    },
  };
}

/** A chroot no other test uses: "/t-<prefix>-<random>" (prefix reduced to [A-Za-z0-9._-]). */
export function uniqueChroot(prefix: string): string {
  const clean = prefix.replace(/[^A-Za-z0-9._-]+/g, "-").slice(0, 40) || "x";
  const random = crypto.randomUUID().replaceAll("-", "").slice(0, 10);
  return `/t-${clean}-${random}`;
}

/**
 * SIGSTOP the server and wait until every thread of it is stopped (the signal takes effect
 * asynchronously: until the JVM gets CPU to act on it, its other threads may still answer
 * requests). SIGCONT resumes it.
 */
export async function freezeServer(server: ZooKeeperServer): Promise<void> {
  server.kill("SIGSTOP");
  await waitForStrict(() => allThreadsStopped(server.pid), 5_000, "the server to stop");
}

/** True once every thread of the process is stopped (or traced, a zombie, dead). */
function allThreadsStopped(pid: number): boolean {
  try {
    return readdirSync(`/proc/${pid}/task`).every((tid) => {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      return "TtZX".includes(stat.charAt(stat.lastIndexOf(")") + 2));
    });
  } catch {
    return false;
  }
}
