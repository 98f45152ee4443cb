// The ticket queue's own cases (docs/ARCHITECTURE.md "The ticket queue"), against a real
// ZooKeeper: a waiter that dies in the middle of the queue is walked past in order; a late joiner
// after a run of deletions longer than the walk settles it with one listing; and two processes
// that both believe they hold the head cannot both admit on one marker version — forced by
// pausing one admission transaction until the other has committed.

import { afterEach, describe, expect, test } from "bun:test";
import { ZkClient } from "../../src/zk/client.ts";
import { ZkError } from "../../src/zk/errors.ts";
import type { Admission, Lease, ReadAdmission } from "../../src/zk/recipes/semaphore.ts";
import { Semaphore } from "../../src/zk/recipes/semaphore.ts";
import { MAX_WALK, parseMarker, ticketName, ticketSequence } from "../../src/zk/recipes/ticket-queue.ts";
import { waitForStrict } from "../harness/wait.ts";
import { useZooKeeper } from "../harness/zookeeper.ts";

const zk = useZooKeeper();
const APP = "/apps/t";
const LOCK = "/apps/t/lock";
const LEASES = "/apps/t/leases";
const text = (s: string): Buffer => Buffer.from(s, "utf8");

const opened: ZkClient[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.close()));
}, 20_000);

/** `bulk`: the admission lets a head admit the waiters behind it too (as the agent's does). */
async function setup(prefix: string, limit: number, bulk = false): Promise<{ connectString: string; admin: ZkClient }> {
  const connectString = zk.withChroot(prefix);
  const admin = await ZkClient.connect({ connectString });
  opened.push(admin);
  await admin.mkdirp(LOCK);
  await admin.mkdirp(LEASES);
  await admin.set(APP, text(JSON.stringify({ limit, bulk })));
  return { connectString, admin };
}

/** The admission from the app node ({limit, bulk} or {blocked}); `before` runs first (a test
 *  holds a member's admission read there). */
const readAdmission =
  (client: ZkClient, before?: () => Promise<void>): ReadAdmission =>
  async (wake) => {
    await before?.();
    const value = JSON.parse((await client.get(APP, wake)).data.toString("utf8")) as { limit: number; bulk: boolean; blocked?: string };
    if (value.blocked !== undefined) return { blocked: value.blocked };
    return { limit: value.limit, bulk: value.bulk } satisfies Admission;
  };

async function member(
  connectString: string,
  owner: string,
  wrap?: (real: ZkClient) => ZkClient,
  onWaiting?: (position: number, reason: string) => void,
  fullRecheckMs?: number,
  beforeAdmission?: () => Promise<void>,
): Promise<{ client: ZkClient; sem: Semaphore }> {
  const client = await ZkClient.connect({ connectString });
  opened.push(client);
  const seen = wrap ? wrap(client) : client;
  const sem = new Semaphore({
    queue: "ticket",
    zk: seen,
    lockDir: LOCK,
    leasesDir: LEASES,
    owner,
    readAdmission: readAdmission(client, beforeAdmission),
    ...(onWaiting ? { onWaiting } : {}),
    ...(fullRecheckMs !== undefined ? { fullRecheckMs } : {}),
  });
  return { client, sem };
}

/** The client with its transactions' commits held until `open()` (the first `held` of them). */
function holdingCommits(real: ZkClient, held = 1): { client: ZkClient; atCommit: Promise<void>; open: () => void } {
  let open: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  let arrived: () => void = () => undefined;
  const atCommit = new Promise<void>((resolve) => {
    arrived = resolve;
  });
  const client = overriding(real, {
    transaction: () => {
      const txn = real.transaction();
      const commit = txn.commit.bind(txn);
      if (held-- <= 0) return txn;
      txn.commit = async () => {
        arrived();
        await gate;
        return commit();
      };
      return txn;
    },
  });
  return { client, atCommit, open };
}

/** The real client with some of its methods replaced (a replacement may call the real one). */
function overriding(real: ZkClient, replaced: Partial<Pick<ZkClient, "children" | "create" | "exists" | "get" | "transaction">>): ZkClient {
  return new Proxy(real, {
    get(target, property) {
      const own: unknown = Reflect.get(replaced, property);
      if (own !== undefined) return own;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

async function tickets(admin: ZkClient): Promise<number[]> {
  return (await admin.children(LOCK))
    .map((n) => ticketSequence(n))
    .filter((n): n is number => n !== undefined)
    .sort((a, b) => a - b);
}

/** A persistent node named as the next ticket will be. ZooKeeper numbers a sequential child by
 *  the creates in its directory so far: a probe learns that count, and the stray's own create
 *  moves it on by one — to the stray's name. */
async function strayAtNextName(admin: ZkClient): Promise<number> {
  const probe = await admin.create(`${LOCK}/probe-`, Buffer.alloc(0), "ephemeralSequential");
  await admin.delete(probe);
  const next = Number(probe.slice(-10)) + 2;
  await admin.create(`${LOCK}/${ticketName(next)}`, text("made by hand"));
  return next;
}

interface Signal {
  promise: Promise<void>;
  fire: () => void;
}

/** A promise and the function that resolves it. */
function signal(): Signal {
  let fire: () => void = () => undefined;
  const promise = new Promise<void>((resolve) => {
    fire = resolve;
  });
  return { promise, fire };
}

/**
 * A point a member passes on its way (its admission read: `member`'s beforeAdmission). Unarmed,
 * `pass` goes straight on; once armed, the next pass stops there — `reached` resolves — until
 * `resume()`, and later passes go on again.
 */
function pausePoint(): { pass: () => Promise<void>; arm: () => { reached: Promise<void>; resume: () => void } } {
  let armed: { reached: Signal; resume: Signal } | undefined;
  return {
    pass: async () => {
      const at = armed;
      if (!at) return;
      armed = undefined;
      at.reached.fire();
      await at.resume.promise;
    },
    arm: () => {
      const at = { reached: signal(), resume: signal() };
      armed = at;
      return { reached: at.reached.promise, resume: at.resume.fire };
    },
  };
}

/**
 * Starts an acquire as `name` — noting the name in `admitted` once it holds a lease — and waits
 * until its ticket is the `position`-th in the queue, so members queue in the order started.
 * `acquired` rejects if the acquire does (handled here only so the wait cannot leave it
 * unhandled).
 */
async function queueUp(
  admin: ZkClient,
  sem: Semaphore,
  name: string,
  admitted: string[],
  position: number,
): Promise<{ acquired: Promise<Lease> }> {
  const acquired = sem.acquire(text(name)).then((lease) => {
    admitted.push(name);
    return lease;
  });
  acquired.catch(() => undefined);
  await waitForStrict(async () => (await tickets(admin)).length === position, 5_000, `${name} to queue`);
  return { acquired };
}

/** The client with its reads and creates under lock/ held, while `closed`, until `open()`. */
function gatedLockReads(real: ZkClient): { client: ZkClient; close: () => void; open: () => void } {
  let gate: Signal | undefined;
  const held =
    <A extends unknown[], R>(call: (path: string, ...rest: A) => Promise<R>) =>
    async (path: string, ...rest: A): Promise<R> => {
      if (gate && path.startsWith(LOCK)) await gate.promise;
      return call(path, ...rest);
    };
  const client = overriding(real, {
    get: held(real.get.bind(real)),
    exists: held(real.exists.bind(real)),
    children: held(real.children.bind(real)),
    create: held(real.create.bind(real)),
  });
  return {
    client,
    close: () => {
      gate = signal();
    },
    open: () => {
      gate?.fire();
      gate = undefined;
    },
  };
}

/** Who holds each ticket: the session ids of the nodes in lock/, by ticket number. */
async function ticketOwners(admin: ZkClient): Promise<Map<number, string>> {
  const owners = new Map<number, string>();
  for (const sequence of await tickets(admin)) {
    const stat = await admin.exists(`${LOCK}/${ticketName(sequence)}`);
    if (stat) owners.set(sequence, stat.ephemeralOwner);
  }
  return owners;
}

describe("ticket queue", () => {
  test("a waiter dying in the middle of the queue is walked past: the others are admitted in order, none twice", async () => {
    const { connectString, admin } = await setup("tq-middle", 1);
    const holder = await member(connectString, "holder");
    const lease = await holder.sem.acquire(text("holder"));
    const order: string[] = [];
    const waiters: { name: string; client: ZkClient; acquired: Promise<Lease | undefined> }[] = [];
    for (const name of ["w1", "w2", "w3", "w4"]) {
      const m = await member(connectString, name);
      const acquired = m.sem.acquire(text(name)).then(
        async (l) => {
          order.push(name);
          await l.release();
          return l;
        },
        () => undefined, // w2's session is closed under it
      );
      waiters.push({ name, client: m.client, acquired });
      await waitForStrict(async () => (await tickets(admin)).length === waiters.length, 5_000, `${name} to queue`);
    }
    // w2 dies while w1 is ahead of it and w3 watches it.
    await waiters[1]?.client.close();
    await waitForStrict(async () => (await tickets(admin)).length === 3, 5_000, "w2's ticket to go with its session");
    await lease.release();
    await Promise.all(waiters.map((w) => w.acquired));
    expect(order).toEqual(["w1", "w3", "w4"]);
    expect(await admin.children(LEASES)).toEqual([]);
    expect(await tickets(admin)).toEqual([]);
  }, 30_000);

  test("persistent nodes made by hand in lock/ under ticket names — the very name a waiter's create gets next, and one between two waiters — are stepped over: nobody waits behind them or admits them", async () => {
    const { connectString, admin } = await setup("tq-strays", 1);
    const holder = await member(connectString, "holder");
    const lease = await holder.sem.acquire(text("holder"));
    const strays = [await strayAtNextName(admin)];
    const order: string[] = [];
    // Resolves once queued, with the acquisition (wrapped: an async function would wait for it).
    const join = async (name: string): Promise<{ acquired: Promise<void> }> => {
      const m = await member(connectString, name);
      const before = (await tickets(admin)).length;
      const acquired = m.sem.acquire(text(name)).then(async (l) => {
        order.push(name);
        await l.release();
      });
      await waitForStrict(async () => (await tickets(admin)).length === before + 1, 5_000, `${name} to queue`);
      return { acquired };
    };
    const w1 = await join("w1");
    strays.push(await strayAtNextName(admin));
    const w2 = await join("w2");
    // w2's predecessor by number is the stray between them, and w1 is below it.
    const [, w1Ticket, , w2Ticket] = await tickets(admin);
    // Each create met its stray and stepped over it: the step- child took the stray's number
    // (a failed create uses none), the ticket the next.
    expect([w1Ticket, w2Ticket]).toEqual(strays.map((n) => n + 1));
    await lease.release();
    await Promise.all([w1.acquired, w2.acquired]);
    expect(order).toEqual(["w1", "w2"]);
    expect(await admin.children(LEASES)).toEqual([]);
    expect(await tickets(admin)).toEqual(strays); // never admitted, never deleted
  }, 30_000);

  test("a waiter whose first create met a stray name is placed by a fresh read, not by the one sent behind that create (which shows a queue without it)", async () => {
    const { connectString, admin } = await setup("tq-stray-read", 1);
    const holder = await member(connectString, "holder");
    const lease = await holder.sem.acquire(text("holder"));
    await strayAtNextName(admin);
    // w1's step over the stray is held until w0 has queued ahead of it.
    const atStep = signal();
    const go = signal();
    const reasons: string[] = [];
    const w1 = await member(
      connectString,
      "w1",
      (real) =>
        overriding(real, {
          create: async (path, ...rest) => {
            if (path.startsWith(`${LOCK}/step-`)) {
              atStep.fire();
              await go.promise;
            }
            return real.create(path, ...rest);
          },
        }),
      (_position, reason) => reasons.push(reason),
    );
    const w1Acquired = w1.sem.acquire(text("w1"));
    await atStep.promise;
    const w0 = await member(connectString, "w0");
    const w0Acquired = w0.sem.acquire(text("w0"));
    await waitForStrict(async () => (await tickets(admin)).length === 2, 5_000, "w0 to queue (beside the stray)");
    go.fire();
    await waitForStrict(async () => reasons.length > 0, 5_000, "w1 to say where it waits");
    // Behind w0: queued, never the head (which would report every slot busy).
    expect(reasons).not.toContain("all 1 slot(s) busy");
    const order: string[] = [];
    const done = [w0Acquired, w1Acquired].map((p, i) =>
      p.then(async (l) => {
        order.push(i === 0 ? "w0" : "w1");
        await l.release();
      }),
    );
    await lease.release();
    await Promise.all(done);
    expect(order).toEqual(["w0", "w1"]);
  }, 30_000);

  test("a persistent node made by hand in leases/ (no lease: it would hold a slot for ever), with a child, is deleted by a head blocked long enough, and the head is admitted", async () => {
    const { connectString, admin } = await setup("tq-stray-lease", 1);
    await admin.create(`${LEASES}/junk`, text("made by hand"));
    await admin.create(`${LEASES}/junk/child`, text("and a child"));
    const client = await ZkClient.connect({ connectString });
    opened.push(client);
    const strays: string[] = [];
    const sem = new Semaphore({
      queue: "ticket",
      zk: client,
      lockDir: LOCK,
      leasesDir: LEASES,
      owner: "w1",
      readAdmission: readAdmission(client),
      strayCheckMs: 300,
      onStrayLease: (path) => strays.push(path),
    });
    const lease = await Promise.race([sem.acquire(text("w1")), Bun.sleep(10_000).then(() => undefined)]);
    if (!lease) throw new Error("w1 was never admitted past the stray lease");
    expect(strays).toEqual([`${LEASES}/junk`]);
    expect((await admin.children(LEASES)).map((n) => n.startsWith("w1-"))).toEqual([true]);
    await lease.release();
  }, 30_000);

  test(`a late joiner after a gap of more than ${MAX_WALK} sequence numbers finds its place with one listing, and is admitted in order`, async () => {
    const { connectString, admin } = await setup("tq-late", 1);
    // Other sequential nodes created and deleted in lock/: each takes a number, leaving a gap.
    for (let i = 0; i < MAX_WALK + 5; i++) await admin.delete(await admin.create(`${LOCK}/x-`, Buffer.alloc(0), "persistentSequential"));
    const holder = await member(connectString, "holder");
    const lease = await holder.sem.acquire(text("holder"));
    const early = await member(connectString, "early");
    const earlyDone = early.sem.acquire(text("early"));
    await waitForStrict(async () => (await tickets(admin)).length === 1, 5_000, "early to queue");
    for (let i = 0; i < MAX_WALK + 5; i++) await admin.delete(await admin.create(`${LOCK}/x-`, Buffer.alloc(0), "persistentSequential"));
    let listings = 0;
    const late = await member(connectString, "late", (real) =>
      overriding(real, {
        children: (path, watcher) => {
          if (path === LOCK) listings++;
          return real.children(path, watcher);
        },
      }),
    );
    const order: string[] = [];
    const lateDone = late.sem.acquire(text("late")).then(async (l) => {
      order.push("late");
      await l.release();
    });
    await waitForStrict(async () => (await tickets(admin)).length === 2, 5_000, "late to queue");
    const [earlyTicket, lateTicket] = await tickets(admin);
    expect((lateTicket ?? 0) - (earlyTicket ?? 0)).toBeGreaterThan(MAX_WALK);
    await lease.release();
    await earlyDone.then(async (l) => {
      order.push("early");
      await l.release();
    });
    await lateDone;
    expect(order).toEqual(["early", "late"]);
    expect(listings).toBeGreaterThanOrEqual(1);
    expect(parseMarker((await admin.get(LOCK)).data)).toBe(lateTicket ?? -2);
  }, 30_000);

  test("the head waits on the lease count, not a listing: a release wakes it through the directory's data watch", async () => {
    const { connectString, admin } = await setup("tq-count", 2);
    const holders = [await member(connectString, "h1"), await member(connectString, "h2")];
    const leases = [await holders[0]?.sem.acquire(text("h1")), await holders[1]?.sem.acquire(text("h2"))];
    let listings = 0;
    let busy = 0;
    const counting = (real: ZkClient): ZkClient =>
      overriding(real, {
        children: (path, watcher) => {
          if (path === LEASES) listings++;
          return real.children(path, watcher);
        },
      });
    // No re-check within the test: only the release's touch of leases/ can wake the head.
    const waiter = await member(
      connectString,
      "w",
      counting,
      (_p, reason) => {
        if (reason === "all 2 slot(s) busy") busy++;
      },
      600_000,
    );
    const acquired = waiter.sem.acquire(text("w"));
    await waitForStrict(() => busy > 0, 5_000, "the head to find every slot busy");
    await leases[0]?.release();
    const lease = await acquired;
    expect(listings).toBe(0);
    expect((await admin.children(LEASES)).length).toBe(2);
    await lease.release();
    await leases[1]?.release();
    expect(await admin.children(LEASES)).toEqual([]);
  }, 30_000);

  test("a holder whose session ends without a release (no touch of leases/): the head counts again on its re-check and is admitted", async () => {
    const { connectString, admin } = await setup("tq-expired", 1);
    const holder = await member(connectString, "holder");
    await holder.sem.acquire(text("holder"));
    let busy = 0;
    const waiter = await member(
      connectString,
      "w",
      undefined,
      (_p, reason) => {
        if (reason === "all 1 slot(s) busy") busy++;
      },
      200,
    );
    const acquired = waiter.sem.acquire(text("w"));
    await waitForStrict(() => busy > 0, 5_000, "the head to find the slot busy");
    const version = (await admin.exists(LEASES))?.version;
    await holder.client.close(); // the session ends: ZooKeeper deletes the lease; leases/ is not touched
    const lease = await acquired;
    expect((await admin.exists(LEASES))?.version).toBe(version);
    // leases/ untouched and nothing else changed: only the re-check can have admitted it (without
    // one, acquire() would wait for ever and the test time out).
    await lease.release();
  }, 30_000);

  test("two processes that both believe they hold the head: the marker's compare-and-set lets one admit, the limit holds", async () => {
    const { connectString, admin } = await setup("tq-race", 1);
    // A blind spot: `b` cannot see the node just before its own (a stale view, a bug), so it takes itself for the head.
    let blindTo: string | undefined;
    let aCommit: ReturnType<typeof holdingCommits> | undefined;
    let busyAfterRace = 0;
    let raced = false;
    const a = await member(
      connectString,
      "a",
      // `a` reads, then waits at its commit until `b` has committed: both decided on the same marker version.
      (real) => {
        aCommit = holdingCommits(real);
        return aCommit.client;
      },
      (_position, reason) => {
        if (raced && reason === "all 1 slot(s) busy") busyAfterRace++;
      },
    );
    const b = await member(connectString, "b", (real) =>
      overriding(real, {
        get: (path, watcher) =>
          path === blindTo ? Promise.reject(new ZkError("noNode", "no node (test)", path)) : real.get(path, watcher),
      }),
    );
    const aLease = a.sem.acquire(text("a"));
    await aCommit?.atCommit; // a is the head and about to commit on marker version v
    const [aTicket] = await tickets(admin);
    blindTo = `${LOCK}/${ticketName(aTicket ?? 0)}`;
    const bLease = b.sem.acquire(text("b"));
    // b took itself for the head, read the same marker version and committed its lease.
    await waitForStrict(async () => (await admin.children(LEASES)).length === 1, 5_000, "b's lease");
    raced = true;
    aCommit?.open();
    // a's transaction fails on the marker's version: it reads again, sees the slot taken and waits.
    await waitForStrict(() => busyAfterRace > 0, 5_000, "a to re-read after losing the race and find the slot busy");
    expect((await admin.children(LEASES)).length).toBe(1);
    const held = await bLease;
    await held.release();
    const second = await aLease;
    expect((await admin.children(LEASES)).length).toBe(1);
    await second.release();
    expect(await admin.children(LEASES)).toEqual([]);
  }, 30_000);

  test("bulk admission: a head with free slots admits the waiters right behind it in its own transaction, in ticket order", async () => {
    const { connectString, admin } = await setup("tq-bulk", 1, true);
    const holder = await member(connectString, "holder");
    const held = await holder.sem.acquire(text("holder"));
    const admitted: string[] = [];
    let w4Busy = 0;
    const acquisitions: Promise<Lease>[] = [];
    for (const name of ["w1", "w2", "w3", "w4", "w5"]) {
      const m = await member(connectString, name, undefined, (_position, reason) => {
        if (name === "w4" && reason === "all 4 slot(s) busy") w4Busy++;
      });
      acquisitions.push((await queueUp(admin, m.sem, name, admitted, acquisitions.length + 1)).acquired);
    }
    const queued = await tickets(admin);
    const before = (await admin.exists(LOCK))?.version ?? -1;
    await admin.set(APP, text(JSON.stringify({ limit: 4, bulk: true }))); // three slots free at once
    await waitForStrict(() => admitted.length === 3 && w4Busy > 0, 5_000, "w1–w3 admitted and w4 waiting at the head");
    expect([...admitted].sort()).toEqual(["w1", "w2", "w3"]);
    // One admission transaction (one marker write), not three: w1 admitted w2 and w3 with itself.
    expect((await admin.exists(LOCK))?.version).toBe(before + 1);
    expect(parseMarker((await admin.get(LOCK)).data)).toBe(queued[2] ?? -2);
    expect((await admin.children(LEASES)).length).toBe(4);
    expect(await tickets(admin)).toEqual(queued.slice(3));
    await held.release();
    for (const acquired of acquisitions) await (await acquired).release();
    expect(admitted.slice(3)).toEqual(["w4", "w5"]);
    expect(await admin.children(LEASES)).toEqual([]);
    expect(await tickets(admin)).toEqual([]);
  }, 30_000);

  test("a follower admitted in bulk holds its slot before its lease exists: the next head counts it; if it dies, the re-check frees the slot", async () => {
    const { connectString, admin } = await setup("tq-pending", 1, true);
    const holder = await member(connectString, "holder");
    const held = await holder.sem.acquire(text("holder"));
    const busy: Record<string, number> = { w3: 0, w4: 0 };
    const admitted: string[] = [];
    let w2Commit: ReturnType<typeof holdingCommits> | undefined;
    const acquisitions: Promise<Lease | undefined>[] = [];
    const clients: Record<string, ZkClient> = {};
    for (const name of ["w1", "w2", "w3", "w4"]) {
      const m = await member(
        connectString,
        name,
        // w2 turns its ticket into a lease only when the test says so.
        name === "w2"
          ? (real) => {
              w2Commit = holdingCommits(real);
              return w2Commit.client;
            }
          : undefined,
        (_position, reason) => {
          if (reason === "all 3 slot(s) busy" && name in busy) busy[name] = (busy[name] ?? 0) + 1;
        },
        name === "w4" ? 200 : 600_000,
      );
      const { acquired } = await queueUp(admin, m.sem, name, admitted, acquisitions.length + 1);
      acquisitions.push(acquired.catch(() => undefined)); // w2's session is closed under it
      clients[name] = m.client;
    }
    await admin.set(APP, text(JSON.stringify({ limit: 3, bulk: true }))); // two free: w1 admits w2 with itself
    await w2Commit?.atCommit; // w2 is admitted (pending) and about to take its lease: held here
    // Two leases (holder, w1) and w2 pending: w3, the head now, must count three and wait —
    // counting leases alone, it would take a fourth slot once w2's lease exists.
    await waitForStrict(() => (busy.w3 ?? 0) > 0, 5_000, "w3 to find every slot busy");
    expect(admitted).toEqual(["w1"]);
    expect((await admin.children(LEASES)).length).toBe(2);
    await held.release(); // one slot free: w3 only (w2 still counted)
    await waitForStrict(() => admitted.includes("w3") && (busy.w4 ?? 0) > 0, 5_000, "w3 admitted, w4 waiting");
    expect([...admitted].sort()).toEqual(["w1", "w3"]);
    // w2 dies before its lease exists: its ticket goes with its session, leases/ is not touched;
    // w4's re-check finds the pending ticket gone and takes the slot.
    await clients.w2?.close();
    await waitForStrict(() => admitted.includes("w4"), 5_000, "w4 admitted on its re-check");
    expect((await admin.children(LEASES)).length).toBe(3);
    w2Commit?.open();
    for (const lease of await Promise.all(acquisitions)) await lease?.release();
    expect(admitted).not.toContain("w2");
    expect(await admin.children(LEASES)).toEqual([]);
    expect(await tickets(admin)).toEqual([]);
  }, 30_000);

  test("a pending ticket seen gone while the head's reads are out is counted again: the limit holds", async () => {
    const { connectString, admin } = await setup("tq-gone-race", 1, true);
    const holder = await member(connectString, "holder");
    const held = await holder.sem.acquire(text("holder"));
    let w2Commit: ReturnType<typeof holdingCommits> | undefined;
    // w3's admission read held until the test says; w3's lease count answered; w3 told q-w2 went.
    const w3Read = pausePoint();
    let leasesAnswered: Signal | undefined;
    let goneSeen: Signal | undefined;
    const busy: Record<string, number> = {};
    const admitted: string[] = [];
    const acquisitions: Promise<Lease>[] = [];
    for (const name of ["w1", "w2", "w3", "w4"]) {
      const m = await member(
        connectString,
        name,
        (real) => {
          if (name === "w2") {
            w2Commit = holdingCommits(real);
            return w2Commit.client;
          }
          if (name !== "w3") return real;
          return overriding(real, {
            exists: (path, watcher) => {
              const told =
                watcher && path.startsWith(`${LOCK}/q-`)
                  ? (event: Parameters<typeof watcher>[0]) => {
                      watcher(event);
                      if (event.type === "deleted") goneSeen?.fire();
                    }
                  : watcher;
              return real.exists(path, told).then((stat) => {
                if (path === LEASES) leasesAnswered?.fire();
                return stat;
              });
            },
          });
        },
        (_position, reason) => {
          if (reason === "all 3 slot(s) busy") busy[name] = (busy[name] ?? 0) + 1;
        },
        600_000,
        name === "w3" ? w3Read.pass : undefined,
      );
      acquisitions.push((await queueUp(admin, m.sem, name, admitted, acquisitions.length + 1)).acquired);
    }
    await admin.set(APP, text(JSON.stringify({ limit: 3, bulk: true }))); // w1 admits itself and w2
    await w2Commit?.atCommit; // w2 is pending, its lease not taken yet
    // w3, the head, counts the holder, w1 and pending w2: every slot busy; it watches q-w2.
    await waitForStrict(() => (busy.w3 ?? 0) > 0 && admitted.includes("w1"), 5_000, "w3 to find every slot busy");
    const w3Held = w3Read.arm();
    leasesAnswered = signal();
    goneSeen = signal();
    await held.release(); // w3 wakes: its reads go out, the admission read is held
    await w3Held.reached;
    await leasesAnswered.promise; // w3's lease count is in: 1 (w1)
    w2Commit?.open(); // w2 takes its lease and deletes its ticket…
    await goneSeen.promise; // …and w3 hears of it while its reads are still out
    w3Held.resume();
    // w3 must not count w2 as gone *and* trust the lease count read before w2's lease existed:
    // one slot was free (holder gone), so w3 alone is admitted and w4 waits.
    await waitForStrict(() => admitted.includes("w3") && (busy.w4 ?? 0) > 0, 5_000, "w3 admitted and w4 waiting");
    expect((await admin.children(LEASES)).length).toBe(3);
    expect(admitted).not.toContain("w4");
    for (const acquired of acquisitions) await (await acquired).release();
    expect(await admin.children(LEASES)).toEqual([]);
  }, 30_000);

  test("a follower whose app is paused before it takes its lease waits for resume", async () => {
    const { connectString, admin } = await setup("tq-follower-paused", 1, true);
    const holder = await member(connectString, "holder");
    const held = await holder.sem.acquire(text("holder"));
    const w2Read = pausePoint();
    const paused: string[] = [];
    const admitted: string[] = [];
    const acquisitions: Promise<Lease>[] = [];
    for (const name of ["w1", "w2"]) {
      const m = await member(
        connectString,
        name,
        undefined,
        (_position, reason) => {
          if (reason === "paused") paused.push(name);
        },
        undefined,
        name === "w2" ? w2Read.pass : undefined,
      );
      acquisitions.push((await queueUp(admin, m.sem, name, admitted, acquisitions.length + 1)).acquired);
    }
    const w2Held = w2Read.arm();
    await admin.set(APP, text(JSON.stringify({ limit: 3, bulk: true }))); // w1 admits itself and w2
    await w2Held.reached; // w2 is pending and about to read the admission
    await admin.set(APP, text(JSON.stringify({ blocked: "paused" })));
    w2Held.resume();
    await waitForStrict(() => paused.includes("w2"), 5_000, "w2 to wait, paused");
    expect([...admitted].sort()).toEqual(["w1"]);
    expect((await admin.children(LEASES)).length).toBe(2);
    await admin.set(APP, text(JSON.stringify({ limit: 3, bulk: true }))); // resumed
    await waitForStrict(() => admitted.includes("w2"), 5_000, "w2 admitted on resume");
    expect((await admin.children(LEASES)).length).toBe(3);
    await held.release();
    for (const acquired of acquisitions) await (await acquired).release();
  }, 30_000);

  // Was a bug: lock/ deleted by hand and made again numbers tickets from 0 again, and ticket
  // names carry no session — so another host's new ticket could bear a waiter's old name. The
  // waiter took it for its own: it waited behind the wrong ticket, or — as the head — admitted
  // itself by deleting that host's ticket in its transaction.
  test("lock/ deleted and made again, other hosts' tickets under the waiters' old names: each waiter queues again and never touches them", async () => {
    const { connectString, admin } = await setup("tq-remade", 1);
    const holder = await member(connectString, "holder");
    const lease = await holder.sem.acquire(text("holder"));
    const admitted: string[] = [];
    const gates = new Map<string, ReturnType<typeof gatedLockReads>>();
    const gated = (name: string) => (real: ZkClient) => {
      const g = gatedLockReads(real);
      gates.set(name, g);
      return g.client;
    };
    // Its re-check only on a wake-up (the release), so the two queue again in a known order.
    const head = await member(connectString, "head", gated("head"), undefined, 60_000);
    const waiter = await member(connectString, "waiter", gated("waiter"));
    const headQueued = await queueUp(admin, head.sem, "head", admitted, 1); // ticket 1: behind the holder's 0
    const waiterQueued = await queueUp(admin, waiter.sem, "waiter", admitted, 2); // ticket 2, watching 1
    expect(await tickets(admin)).toEqual([1, 2]);

    // Neither reads lock/ until it is made again: the moment it is missing is another case.
    for (const g of gates.values()) g.close();
    await admin.deleteRecursive(LOCK);
    await admin.mkdirp(LOCK);
    const others = await member(connectString, "others");
    for (let i = 0; i < 3; i++) await others.client.create(`${LOCK}/q-`, text("other"), "ephemeralSequential");
    expect(await tickets(admin)).toEqual([0, 1, 2]); // 1 and 2: the head's and the waiter's old names
    for (const g of gates.values()) g.open();

    // The waiter (woken: its ticket and its predecessor went) queues again, behind the others.
    await waitForStrict(async () => (await ticketOwners(admin)).get(3) === waiter.client.sessionId, 5_000, "the waiter to queue again");
    // The head learns at its next look (the release wakes it) and queues again too.
    await lease.release();
    await waitForStrict(async () => (await ticketOwners(admin)).get(4) === head.client.sessionId, 5_000, "the head to queue again");
    const owners = await ticketOwners(admin);
    expect([0, 1, 2].map((n) => owners.get(n))).toEqual([0, 1, 2].map(() => others.client.sessionId));
    expect(admitted).toEqual([]);
    expect(await admin.children(LEASES)).toEqual([]);

    // The others leave: the two are admitted in their new order, one at a time.
    await others.client.close();
    const first = await waiterQueued.acquired;
    expect(admitted).toEqual(["waiter"]);
    await first.release();
    await (await headQueued.acquired).release();
    expect(admitted).toEqual(["waiter", "head"]);
    expect(await tickets(admin)).toEqual([]);
  }, 30_000);
});
