// The slot semaphore recipe (src/zk/recipes/semaphore.ts) alone, against a real ZooKeeper: many
// ZkClients in this process, each its own session, competing for the leases of one "app".
//
// The admission (limit / blocked) is read by readAdmission from the app node with the wake
// watcher, so a test changes it live by writing that node, as `set-slots` and `pause` do.
// Waits are bounded polls; "nobody was admitted" is shown deterministically by waiting for the
// mutex holder to re-evaluate (its onWaiting call) and finding it still waiting.

import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import { ZkClient } from "../../src/zk/client.ts";
import { ZkError } from "../../src/zk/errors.ts";
import { basename } from "../../src/zk/paths.ts";
import { queueMembers as queueMembersOf } from "../helpers/queue-members.ts";
import { AcquireAbortedError, type Admission, type Lease, type ReadAdmission, Semaphore } from "../../src/zk/recipes/semaphore.ts";
import type { WatchEvent, Watcher } from "../../src/zk/watchers.ts";
import { waitForStrict } from "../harness/wait.ts";
import { freezeServer, useZooKeeper } from "../harness/zookeeper.ts";

const zk = useZooKeeper();

const APP = "/apps/t";
const LOCK = "/apps/t/lock";
const LEASES = "/apps/t/leases";

// ---- helpers ------------------------------------------------------------------------------

type Settled<T> = { status: "resolved"; value: T } | { status: "rejected"; error: unknown } | { status: "pending" };

/** Watches a promise without awaiting it; `state()` tells how it has settled so far. */
function track<T>(promise: Promise<T>): { promise: Promise<T>; state: () => Settled<T> } {
  let settled: Settled<T> = { status: "pending" };
  promise.then(
    (value) => {
      settled = { status: "resolved", value };
    },
    (error: unknown) => {
      settled = { status: "rejected", error };
    },
  );
  return { promise, state: () => settled };
}

/** How `promise` settles within `ms` (never rejects). */
async function settleWithin<T>(promise: Promise<T>, ms: number): Promise<Settled<T>> {
  const tracked = track(promise);
  await waitForStrict(() => tracked.state().status !== "pending", ms, "the promise to settle").catch(() => undefined);
  return tracked.state();
}

const describeOutcome = (s: Settled<unknown>): string =>
  s.status === "resolved"
    ? "acquired"
    : s.status === "pending"
      ? "still pending"
      : s.error instanceof ZkError
        ? `rejected: ZkError ${s.error.kind}: ${s.error.message}`
        : `rejected: ${String(s.error)}`;

const text = (s: string): Buffer => Buffer.from(s, "utf8");

function parseAdmission(data: Buffer): Admission {
  const value: unknown = JSON.parse(data.toString("utf8"));
  if (typeof value === "object" && value !== null) {
    if ("blocked" in value && typeof value.blocked === "string") return { blocked: value.blocked };
    if ("limit" in value && typeof value.limit === "number") return { limit: value.limit };
  }
  throw new Error(`bad admission node: ${data.toString("utf8")}`);
}

/** Wraps a client so that every watch event delivered to it is counted (for the herd test). */
function countingEvents(real: ZkClient, onEvent: (event: WatchEvent) => void): ZkClient {
  const wrappers = new WeakMap<Watcher, Watcher>();
  const wrap = (watcher: Watcher | undefined): Watcher | undefined => {
    if (!watcher) return undefined;
    let wrapped = wrappers.get(watcher);
    if (!wrapped) {
      wrapped = (event) => {
        if (event.type !== "sessionLost") onEvent(event);
        watcher(event);
      };
      wrappers.set(watcher, wrapped);
    }
    return wrapped;
  };
  const overrides: Partial<Record<PropertyKey, unknown>> = {
    get: (path: string, watcher?: Watcher) => real.get(path, wrap(watcher)),
    exists: (path: string, watcher?: Watcher) => real.exists(path, wrap(watcher)),
    children: (path: string, watcher?: Watcher) => real.children(path, wrap(watcher)),
    unwatch: (watcher: Watcher) => real.unwatch(wrappers.get(watcher) ?? watcher),
  };
  return withOverrides(real, overrides);
}

/** A Proxy of the client with some members replaced; everything else is the client itself. */
function withOverrides(real: ZkClient, overrides: Partial<Record<PropertyKey, unknown>>): ZkClient {
  return new Proxy(real, {
    get(target, property) {
      if (property in overrides) return overrides[property];
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

const opened: ZkClient[] = [];

afterEach(async () => {
  zk.server.kill("SIGCONT");
  await Promise.all(opened.splice(0).map((c) => c.close()));
}, 20_000);

/** The queue the members of the describe block running now use (both run, one after the other). */
let QUEUE: "listing" | "ticket" = "listing";

/** Who waits in the queue (either queue's naming). */
const queueMembers = (env: Env): ReturnType<typeof queueMembersOf> => queueMembersOf(env.admin, LOCK);

interface Env {
  connectString: string;
  admin: ZkClient;
  setAdmission(admission: Admission): Promise<void>;
}

/** A fresh chroot with /apps/t (holding the admission), /apps/t/lock and /apps/t/leases. */
async function setup(prefix: string, admission: Admission): Promise<Env> {
  const connectString = zk.withChroot(prefix);
  const admin = await ZkClient.connect({ connectString });
  opened.push(admin);
  await admin.mkdirp(LOCK);
  await admin.mkdirp(LEASES);
  const setAdmission = async (a: Admission): Promise<void> => {
    await admin.set(APP, text(JSON.stringify(a)));
  };
  await setAdmission(admission);
  return { connectString, admin, setAdmission };
}

interface Member {
  owner: string;
  client: ZkClient;
  sem: Semaphore;
  /** Every onWaiting call, in order. */
  waits: { position: number; reason: string }[];
  admissionReads: number;
  watchEvents: number;
}

interface MemberOptions {
  sessionTimeoutMs?: number;
  operationTimeoutMs?: number;
  onWaiting?: (position: number, reason: string) => void;
  /** Replace members of the client the semaphore sees (e.g. transaction()). */
  overrides?: (real: ZkClient) => Partial<Record<PropertyKey, unknown>>;
}

async function member(env: Env, owner: string, options: MemberOptions = {}): Promise<Member> {
  const client = await ZkClient.connect({
    connectString: env.connectString,
    sessionTimeoutMs: options.sessionTimeoutMs ?? 10_000,
    operationTimeoutMs: options.operationTimeoutMs,
  });
  opened.push(client);
  const m: Omit<Member, "sem"> = { owner, client, waits: [], admissionReads: 0, watchEvents: 0 };
  let seen = countingEvents(client, () => {
    m.watchEvents++;
  });
  if (options.overrides) seen = withOverrides(seen, options.overrides(client));
  const readAdmission: ReadAdmission = async (wake) => {
    m.admissionReads++;
    const { data } = await seen.get(APP, wake);
    // The ticket queue runs as the agent runs it: a head admits the waiters behind it too, up
    // to the free slots (bulk admission; the single-admission path is ticket-queue.test.ts's).
    const admission = parseAdmission(data);
    return QUEUE === "ticket" && "limit" in admission ? { ...admission, bulk: true } : admission;
  };
  const sem = new Semaphore({
    queue: QUEUE,
    zk: seen,
    lockDir: LOCK,
    leasesDir: LEASES,
    owner,
    readAdmission,
    onWaiting: (position, reason) => {
      m.waits.push({ position, reason });
      options.onWaiting?.(position, reason);
    },
  });
  return Object.assign(m, { sem });
}

async function members(env: Env, count: number, options?: MemberOptions): Promise<Member[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => member(env, `h${i}`, options)));
}

/** Resolves once `m` has (re-)evaluated as mutex holder since `mark` and is waiting for `reason`. */
async function holderWaits(m: Member, mark: number, reason: string, what: string): Promise<void> {
  await waitForStrict(
    () => m.waits.slice(mark).some((w) => w.position === 1 && w.reason === reason),
    5_000,
    `${m.owner} ${what} (waits: ${JSON.stringify(m.waits.slice(mark))})`,
  );
}

/** Queue `ms` one after another, each only once the previous one's queue node exists. */
async function queueInOrder(env: Env, ms: Member[], already = 0): Promise<ReturnType<typeof track<Lease>>[]> {
  const acquires: ReturnType<typeof track<Lease>>[] = [];
  for (const [i, m] of ms.entries()) {
    acquires.push(track(m.sem.acquire(text(m.owner))));
    await waitForStrict(async () => (await env.admin.children(LOCK)).length === already + i + 1, 5_000, `${m.owner} to queue`);
  }
  return acquires;
}

// ---- tests --------------------------------------------------------------------------------

for (const queue of ["listing", "ticket"] as const)
  describe(`Semaphore (${queue} queue)`, () => {
    beforeAll(() => {
      QUEUE = queue;
    });

    test("N clients, limit S: never more than S holders, S is reached, all complete", async () => {
      const N = 8;
      const S = 3;
      const env = await setup("limit", { limit: S });
      const all = await members(env, N);
      let current = 0;
      let maxSeen = 0;
      let maxLeaseNodes = 0;
      let done = 0;
      await Promise.all(
        all.map(async (m) => {
          const lease = await m.sem.acquire(text(m.owner));
          current++;
          maxSeen = Math.max(maxSeen, current);
          maxLeaseNodes = Math.max(maxLeaseNodes, (await m.client.children(LEASES)).length);
          expect(lease.path.startsWith(`${LEASES}/${m.owner}-${m.client.sessionId}-`)).toBe(true);
          // Hold until S holders were seen together (so reaching S does not depend on timing),
          // then "work" for ~50 ms.
          await waitForStrict(() => maxSeen >= S, 10_000, "S concurrent holders");
          await Bun.sleep(50);
          current--;
          await lease.release();
          done++;
        }),
      );
      expect(done).toBe(N);
      expect(maxSeen).toBe(S);
      expect(maxLeaseNodes).toBeLessThanOrEqual(S);
      expect(await env.admin.children(LEASES)).toEqual([]);
      expect(await env.admin.children(LOCK)).toEqual([]);
    }, 30_000);

    test("FIFO: with limit 1, clients are admitted in the order they queued; node names carry owner and session", async () => {
      const env = await setup("fifo", { limit: 1 });
      const [blocker, ...queued] = await members(env, 7);
      if (!blocker) throw new Error("no blocker");
      const blocking = await blocker.sem.acquire(text("blocker"));
      const acquires = await queueInOrder(env, queued);

      const names = await queueMembers(env);
      expect(names.map((n) => n.host).sort()).toEqual(queued.map((m) => m.owner).sort());
      for (const m of queued) expect(names.some((n) => n.host === m.owner && n.sessionId === m.client.sessionId)).toBe(true);

      const order: string[] = [];
      const finished = acquires.map(async (a, i) => {
        const lease = await a.promise;
        order.push(queued[i]?.owner ?? "?");
        await lease.release();
      });
      await blocking.release();
      await Promise.all(finished);
      expect(order).toEqual(queued.map((m) => m.owner));
    }, 30_000);

    test("raising the limit admits waiters at once; lowering it admits nobody until enough leases are gone", async () => {
      const env = await setup("live-limit", { limit: 1 });
      const [a, b, c, d] = await members(env, 4);
      if (!a || !b || !c || !d) throw new Error("members");
      const leaseA = await a.sem.acquire(text("a"));
      const [acqB, acqC] = await queueInOrder(env, [b, c]);
      await holderWaits(b, 0, "all 1 slot(s) busy", "to wait for a slot");
      expect(acqB?.state().status).toBe("pending");

      await env.setAdmission({ limit: 3 });
      const leaseB = await acqB?.promise;
      const leaseC = await acqC?.promise;
      expect((await env.admin.children(LEASES)).length).toBe(3);

      // Lower to 1 with three holders: D waits until all three are gone.
      await env.setAdmission({ limit: 1 });
      const [acqD] = await queueInOrder(env, [d]);
      await holderWaits(d, 0, "all 1 slot(s) busy", "to wait for a slot");
      for (const lease of [leaseA, leaseB]) {
        const mark = d.waits.length;
        await lease?.release();
        await holderWaits(d, mark, "all 1 slot(s) busy", "to re-check after a release");
        expect(acqD?.state().status).toBe("pending");
      }
      await leaseC?.release();
      const leaseD = await acqD?.promise;
      expect(await env.admin.children(LEASES)).toEqual([basename(leaseD?.path ?? "")]);
    }, 30_000);

    test("a blocked admission admits nobody until it changes", async () => {
      const env = await setup("blocked", { blocked: "paused" });
      const [a, b] = await members(env, 2);
      if (!a || !b) throw new Error("members");
      const [acqA, acqB] = await queueInOrder(env, [a, b]);
      await holderWaits(a, 0, "paused", "to wait while paused");
      await waitForStrict(() => b.waits.length > 0, 5_000, "b to wait in the queue");
      expect(b.waits.map((w) => w.position)).toEqual([2]);

      const mark = a.waits.length;
      await env.setAdmission({ blocked: "halted" });
      await holderWaits(a, mark, "halted", "to re-read the admission");
      expect(acqA?.state().status).toBe("pending");
      expect(await env.admin.children(LEASES)).toEqual([]);

      await env.setAdmission({ limit: 2 });
      const leases = await Promise.all([acqA?.promise, acqB?.promise]);
      expect(leases.every((l) => l !== undefined)).toBe(true);
      expect((await env.admin.children(LEASES)).length).toBe(2);
    }, 20_000);

    test("abort while queued (or while holding the mutex) removes the queue node and rejects AcquireAbortedError", async () => {
      const env = await setup("abort", { limit: 1 });
      const [holder, first, second] = await members(env, 3);
      if (!holder || !first || !second) throw new Error("members");
      const lease = await holder.sem.acquire(text("holder"));
      const firstAbort = new AbortController();
      const secondAbort = new AbortController();
      const acqFirst = track(first.sem.acquire(text("first"), { signal: firstAbort.signal }));
      await waitForStrict(async () => (await env.admin.children(LOCK)).length === 1, 5_000, "first to queue");
      const acqSecond = track(second.sem.acquire(text("second"), { signal: secondAbort.signal }));
      await waitForStrict(() => second.waits.length > 0, 5_000, "second to wait behind first");
      await holderWaits(first, 0, "all 1 slot(s) busy", "to hold the mutex");
      const nodeOf = async (m: Member): Promise<string | undefined> =>
        (await queueMembers(env)).find((n) => n.sessionId === m.client.sessionId)?.name;
      expect(await nodeOf(second)).toBeDefined();

      secondAbort.abort(); // waiting on its predecessor
      const secondOutcome = await settleWithin(acqSecond.promise, 5_000);
      expect(secondOutcome.status === "rejected" && secondOutcome.error).toBeInstanceOf(AcquireAbortedError);
      expect(await nodeOf(second)).toBeUndefined();
      expect(await nodeOf(first)).toBeDefined();

      firstAbort.abort(); // holding the mutex, waiting for a slot
      const firstOutcome = await settleWithin(acqFirst.promise, 5_000);
      expect(firstOutcome.status === "rejected" && firstOutcome.error).toBeInstanceOf(AcquireAbortedError);
      expect(await env.admin.children(LOCK)).toEqual([]);

      await lease.release();
      expect(await env.admin.children(LEASES)).toEqual([]);
      // The semaphore still works for the aborted ones.
      await (await first.sem.acquire(text("again"))).release();
    }, 20_000);

    // Regression (issue 11): untilConnected left its connection-state listener registered when the
    // abort won (and its abort listener when the state change won): one more listener per wait
    // for a reconnect. A view of the client that reports itself disconnected and fails one
    // listing with a connection loss makes the semaphore wait there; then the caller aborts.
    test("an acquire aborted while waiting for a reconnect leaves no state or abort listener behind", async () => {
      const env = await setup("until-connected", { limit: 1 });
      let connected = true;
      let failListing = false;
      let registered = 0;
      let removed = 0;
      const m = await member(env, "h1", {
        overrides: (real) => ({
          get isConnected() {
            return connected;
          },
          // The first read of the queue (a listing, or the ticket queue's marker) loses the connection.
          children: async (path: string, watcher?: Watcher) => {
            if (failListing && path === LOCK) {
              failListing = false;
              connected = false;
              throw new ZkError("connectionLoss", "connection lost (test)", path);
            }
            return real.children(path, watcher);
          },
          get: async (path: string, watcher?: Watcher) => {
            if (failListing && path === LOCK) {
              failListing = false;
              connected = false;
              throw new ZkError("connectionLoss", "connection lost (test)", path);
            }
            return real.get(path, watcher);
          },
          onState: (listener: (state: string) => void) => {
            registered++;
            const off = real.onState(listener);
            return () => {
              removed++;
              off();
            };
          },
        }),
      });
      const abort = new AbortController();
      let abortListeners = 0;
      const add = abort.signal.addEventListener.bind(abort.signal);
      const remove = abort.signal.removeEventListener.bind(abort.signal);
      abort.signal.addEventListener = (...args: Parameters<typeof add>): void => {
        abortListeners++;
        add(...args);
      };
      abort.signal.removeEventListener = (...args: Parameters<typeof remove>): void => {
        abortListeners--;
        remove(...args);
      };
      failListing = true;
      const acquire = track(m.sem.acquire(text("h1"), { signal: abort.signal }));
      await waitForStrict(() => registered > 0, 5_000, "the semaphore to wait for a reconnect");
      abort.abort();
      const outcome = await settleWithin(acquire.promise, 5_000);
      expect(outcome.status === "rejected" && outcome.error).toBeInstanceOf(AcquireAbortedError);
      expect({ registered, removed }).toEqual({ registered: 1, removed: 1 });
      expect(abortListeners).toBe(0);
    });

    // Regression (was a bug: src/zk/recipes/semaphore.ts waitFor() ~line 206 and admit() ~line 155): the abort
    // listener is added only after the awaited read that precedes the wait. An abort that lands
    // while that read is in flight has already fired its one "abort" event, so the listener never
    // runs and acquire() keeps waiting (for the predecessor to go, or for the admission / leases to
    // change) although the caller cancelled it; the queue node stays too. Calling abort() from
    // onWaiting — which runs just before that read is sent — makes the race deterministic.
    test("an abort that lands while the predecessor check is in flight still cancels a queued acquire", async () => {
      const env = await setup("abort-race-queued", { limit: 1 });
      const abort = new AbortController();
      const [holder, first] = await members(env, 2);
      const second = await member(env, "h-second", {
        onWaiting: (position) => {
          if (position > 1) abort.abort();
        },
      });
      if (!holder || !first) throw new Error("members");
      const lease = await holder.sem.acquire(text("holder"));
      const [acqFirst] = await queueInOrder(env, [first]);
      await holderWaits(first, 0, "all 1 slot(s) busy", "to hold the mutex");
      const acqSecond = track(second.sem.acquire(text("second"), { signal: abort.signal }));
      await waitForStrict(() => abort.signal.aborted, 5_000, "the abort");

      const outcome = await settleWithin(acqSecond.promise, 3_000);
      expect(describeOutcome(outcome)).toBe("rejected: AcquireAbortedError: acquire cancelled");
      expect((await queueMembers(env)).map((n) => n.host)).toEqual([first.owner]);
      await lease.release();
      await (await acqFirst?.promise)?.release();
    }, 20_000);

    test("an abort that lands while the mutex holder reads the admission still cancels", async () => {
      const env = await setup("abort-race-holder", { blocked: "paused" });
      const abort = new AbortController();
      const m = await member(env, "h-holder", {
        onWaiting: (position) => {
          if (position === 1) abort.abort();
        },
      });
      const acquire = track(m.sem.acquire(text("x"), { signal: abort.signal }));
      await waitForStrict(() => abort.signal.aborted, 5_000, "the abort");

      const outcome = await settleWithin(acquire.promise, 3_000);
      expect(describeOutcome(outcome)).toBe("rejected: AcquireAbortedError: acquire cancelled");
      expect(await env.admin.children(LOCK)).toEqual([]);
    }, 20_000);

    test("a holder whose session is closed frees its slot for the next waiter", async () => {
      const env = await setup("holder-dies", { limit: 1 });
      const [holder, waiter] = await members(env, 2);
      if (!holder || !waiter) throw new Error("members");
      const lease = await holder.sem.acquire(text("holder"));
      const [acqWaiter] = await queueInOrder(env, [waiter]);
      await holderWaits(waiter, 0, "all 1 slot(s) busy", "to wait for the slot");

      await holder.client.close();
      const next = await acqWaiter?.promise;
      const leases = await env.admin.children(LEASES);
      expect(leases).not.toContain(basename(lease.path));
      expect(leases).toEqual([basename(next?.path ?? "")]);
      await lease.release(); // after the session is gone: nothing to delete, no error
    }, 20_000);

    test("release() twice is harmless; restoreLease creates a counted lease outside the queue", async () => {
      const env = await setup("restore", { limit: 1 });
      const [a, b] = await members(env, 2);
      if (!a || !b) throw new Error("members");
      const lease = await a.sem.acquire(text("a"));
      await lease.release();
      await lease.release();
      expect(await env.admin.children(LEASES)).toEqual([]);

      const restored = await a.sem.restoreLease(text("still running"));
      expect(restored.path).toMatch(new RegExp(`^${LEASES}/h0-${a.client.sessionId}-\\d{10}$`));
      expect(await env.admin.children(LOCK)).toEqual([]);
      const { data, stat } = await env.admin.get(restored.path);
      expect(data.toString()).toBe("still running");
      expect(stat.ephemeralOwner).toBe(a.client.sessionId);

      // It counts against the limit: b waits until it is released.
      const [acqB] = await queueInOrder(env, [b]);
      await holderWaits(b, 0, "all 1 slot(s) busy", "to wait behind the restored lease");
      await restored.release();
      await restored.release();
      const leaseB = await acqB?.promise;
      expect(await env.admin.children(LEASES)).toEqual([basename(leaseB?.path ?? "")]);
    }, 20_000);

    test("no herd: with 10 waiters and limit 1, each release wakes at most the next two clients", async () => {
      const env = await setup("herd", { limit: 1 });
      const [holder, ...waiters] = await members(env, 11);
      if (!holder) throw new Error("members");
      let current: Lease = await holder.sem.acquire(text("holder"));
      const acquires = await queueInOrder(env, waiters);
      await holderWaits(waiters[0] as Member, 0, "all 1 slot(s) busy", "to hold the mutex");
      const everyone = [holder, ...waiters];

      for (const [k, next] of waiters.entries()) {
        const after = waiters[k + 1];
        for (const m of everyone) {
          m.watchEvents = 0;
          m.admissionReads = 0;
        }
        const mark = after?.waits.length ?? 0;
        await current.release();
        current = (await acquires[k]?.promise) ?? current;
        if (after) await holderWaits(after, mark, "all 1 slot(s) busy", "to take over the mutex");
        // A request on each connection is answered only after every notification the server sent
        // that connection before it: after this, all events caused by the release have arrived.
        await Promise.all(everyone.map((m) => m.client.exists("/")));

        const woken = everyone.filter((m) => m.watchEvents > 0).map((m) => m.owner);
        const readers = everyone.filter((m) => m.admissionReads > 0).map((m) => m.owner);
        const allowed = [next.owner, ...(after ? [after.owner] : [])];
        expect({
          release: k,
          woken: woken.filter((o) => !allowed.includes(o)),
          readers: readers.filter((o) => !allowed.includes(o)),
        }).toEqual({
          release: k,
          woken: [],
          readers: [],
        });
        expect(woken.length).toBeLessThanOrEqual(2);
      }
      await current.release();
      expect(await env.admin.children(LEASES)).toEqual([]);
    }, 40_000);

    // Regression (was a bug: src/zk/recipes/semaphore.ts admit(), the lease transaction ~line 136): on connection
    // loss the transaction's outcome is unknown, but retrying() simply runs it again. If the first
    // commit was applied (lease created, queue node deleted), the retry fails with noNode (our
    // queue node is gone), acquire() rejects — and the lease it did create stays behind, owned by
    // a live session, so the slot is held by nobody until that session ends (with limit 1 the app
    // is blocked). Reproduced by freezing the server while the first commit is in flight until the
    // client has given up on it (operation timeout): the server then applies it, and whatever the
    // client sends next (a blind retry, or the check of its leases) comes after.
    test("a lease transaction whose outcome is unknown (timeout) is not retried blindly: no leaked lease", async () => {
      const env = await setup("txn-unknown", { limit: 1 });
      const server = zk.server;
      let frozen = false;
      let gaveUp = false;
      const m = await member(env, "h-frozen", {
        sessionTimeoutMs: 20_000,
        operationTimeoutMs: 500,
        overrides: (real) => ({
          transaction: () => {
            const txn = real.transaction();
            const commit = txn.commit.bind(txn);
            txn.commit = async () => {
              if (frozen) return commit();
              frozen = true;
              await freezeServer(server); // this commit stays unanswered until the client gives up on it
              try {
                return await commit();
              } catch (error) {
                gaveUp = true;
                throw error;
              } finally {
                server.kill("SIGCONT"); // before the caller sees the timeout and acts on it
              }
            };
            return txn;
          },
        }),
      });
      let outcome: Settled<Lease>;
      try {
        outcome = await settleWithin(m.sem.acquire(text("x")), 15_000);
      } finally {
        server.kill("SIGCONT");
      }
      expect(gaveUp).toBe(true); // the commit's outcome really was unknown to the client
      expect(frozen).toBe(true);
      const leases = await env.admin.children(LEASES);
      const held = outcome.status === "resolved" ? [basename(outcome.value.path)] : [];
      expect({ outcome: describeOutcome(outcome), leases }).toEqual({ outcome: "acquired", leases: held });
      expect(await env.admin.children(LOCK)).toEqual([]);
    }, 30_000);
  });
