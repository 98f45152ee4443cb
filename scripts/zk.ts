// A local ZooKeeper for poking at things by hand; it keeps running after this script exits.
//
//   bun scripts/zk.ts start [--port N] [--dir D] [--tick-time MS]
//       → prints "connect=127.0.0.1:PORT pid=PID dir=D" and writes D/zk.pid
//   bun scripts/zk.ts status --dir D
//   bun scripts/zk.ts stop --dir D [--rm]      (--rm also deletes D)
//
// Tests do not use this: they call startZooKeeper() (test/harness/zookeeper.ts).

import { existsSync, mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { fourLetterWord, isZooKeeperPid, startZooKeeper, stopPid, ZOOKEEPER_HOST } from "../test/harness/zookeeper.ts";

const USAGE = `usage:
  bun scripts/zk.ts start [--port N] [--dir D] [--tick-time MS]
  bun scripts/zk.ts status --dir D
  bun scripts/zk.ts stop --dir D [--rm]`;

function fail(message: string, code = 2): never {
  console.error(message);
  process.exit(code);
}

function readPid(dir: string): number | undefined {
  const file = join(dir, "zk.pid");
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, "utf8").trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function readPort(dir: string): number | undefined {
  const cfg = join(dir, "zoo.cfg");
  if (!existsSync(cfg)) return undefined;
  const m = /^clientPort=(\d+)$/m.exec(readFileSync(cfg, "utf8"));
  return m ? Number(m[1]) : undefined;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      port: { type: "string" },
      dir: { type: "string" },
      "tick-time": { type: "string" },
      rm: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || command === undefined || rest.length > 0) fail(USAGE, values.help ? 0 : 2);
  const dir = values.dir === undefined ? undefined : resolve(values.dir);

  switch (command) {
    case "start": {
      const port = values.port === undefined ? undefined : Number(values.port);
      if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) fail(`--port: not a port: ${values.port}`);
      const tickTime = values["tick-time"] === undefined ? undefined : Number(values["tick-time"]);
      if (tickTime !== undefined && !(Number.isInteger(tickTime) && tickTime > 0))
        fail(`--tick-time: not a positive integer: ${values["tick-time"]}`);
      if (dir !== undefined) {
        const pid = readPid(dir);
        if (pid !== undefined && isZooKeeperPid(pid)) fail(`a ZooKeeper is already running from ${dir} (pid ${pid})`, 1);
        mkdirSync(dir, { recursive: true });
      }
      const zk = await startZooKeeper({ port, dataDir: dir, tickTime, detached: true });
      writeFileSync(join(zk.dataDir, "zk.pid"), `${zk.pid}\n`);
      console.log(`connect=${zk.connectString} pid=${zk.pid} dir=${zk.dataDir}`);
      return 0;
    }
    case "status":
    case "stop": {
      if (dir === undefined) fail(`${command} needs --dir D\n${USAGE}`);
      const pid = readPid(dir);
      const running = pid !== undefined && isZooKeeperPid(pid);
      if (command === "status") {
        const port = readPort(dir);
        if (!running || port === undefined) {
          console.log(`not running (dir=${dir})`);
          return 1;
        }
        const ruok = await fourLetterWord(ZOOKEEPER_HOST, port, "ruok").catch((e: unknown) => String(e));
        console.log(`connect=${ZOOKEEPER_HOST}:${port} pid=${pid} dir=${dir} ruok=${ruok}`);
        return ruok === "imok" ? 0 : 1;
      }
      if (running) {
        await stopPid(pid);
        console.log(`stopped pid=${pid} dir=${dir}`);
      } else {
        console.log(`not running (dir=${dir})`);
      }
      if (existsSync(join(dir, "zk.pid"))) unlinkSync(join(dir, "zk.pid"));
      if (values.rm) rmSync(dir, { recursive: true, force: true });
      return 0;
    }
    default:
      fail(`unknown command: ${command}\n${USAGE}`);
  }
}

try {
  process.exit(await main(process.argv.slice(2)));
} catch (err) {
  fail(err instanceof Error ? err.message : String(err), 1);
}
