// A 3-node ZooKeeper ensemble and TCP proxies for fault tests. Typical use:
//
//   const ens = useEnsemble();                           // one ensemble for this test file
//   const proxy = useProxy(() => ens.member(2));         // one proxy in front of member 2
//   test("...", async () => {
//     const client = await ZkClient.connect({ connectString: ens.withChroot("x") });
//     await ens.ensemble.killLeader();
//     proxy.proxy.stall();
//   });
//
// Tests in one file share the ensemble (give each its own chroot). Proxies are reset (unblocked,
// resumed) after every test. Mirrors test/helpers/zookeeper.ts.

import { afterAll, afterEach, beforeAll } from "bun:test";
import { startEnsemble, type Ensemble, type EnsembleMember, type EnsembleOptions } from "../harness/ensemble.ts";
import { startProxies, startProxy, type Proxy, type ProxySet, type Upstream } from "../harness/tcp-proxy.ts";
import { uniqueChroot } from "../harness/zookeeper.ts";

export { startEnsemble, type Ensemble, type EnsembleMember, type EnsembleOptions } from "../harness/ensemble.ts";
export { startProxies, startProxy, type Proxy, type ProxySet, type ProxyStats, type Upstream } from "../harness/tcp-proxy.ts";

export interface EnsembleFixture {
  /** The ensemble itself; read it inside tests or hooks, not at module load. */
  readonly ensemble: Ensemble;
  /** "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3". */
  readonly connectString: string;
  member(id: number): EnsembleMember;
  /** connectString plus a fresh chroot: "...,127.0.0.1:p3/t-<prefix>-<random>". */
  withChroot(prefix: string): string;
}

/** Start an ensemble in beforeAll (its start time is logged) and stop it in afterAll. */
export function useEnsemble(opts: EnsembleOptions = {}): EnsembleFixture {
  let ensemble: Ensemble | undefined;
  beforeAll(async () => {
    ensemble = await startEnsemble(opts);
    console.log(`[ensemble] ${ensemble.members.length} members serving with one leader in ${ensemble.startMs} ms`);
  }, 100_000); // three start attempts of up to 30 s each
  afterAll(async () => {
    await ensemble?.stopAll();
    ensemble = undefined;
  }, 20_000);
  const current = (): Ensemble => {
    if (!ensemble) throw new Error("useEnsemble(): the ensemble exists only inside tests and hooks (after beforeAll)");
    return ensemble;
  };
  return {
    get ensemble() {
      return current();
    },
    get connectString() {
      return current().connectString;
    },
    member(id: number) {
      return current().member(id);
    },
    withChroot(prefix: string) {
      return current().connectString + uniqueChroot(prefix);
    },
  };
}

export interface ProxyFixture {
  readonly proxy: Proxy;
  /** "127.0.0.1:PROXYPORT". */
  readonly address: string;
  /** address plus a fresh chroot. */
  withChroot(prefix: string): string;
}

/** A proxy started in beforeAll (after the hooks registered before it, so `upstream` may name
 *  something they start), reset after each test, closed in afterAll. */
export function useProxy(upstream: Upstream | string | number | (() => Upstream | string | number | EnsembleMember)): ProxyFixture {
  let proxy: Proxy | undefined;
  beforeAll(async () => {
    const target = typeof upstream === "function" ? upstream() : upstream;
    proxy = await startProxy(isMember(target) ? target.clientPort : target);
  });
  afterEach(() => proxy?.reset());
  afterAll(async () => {
    await proxy?.close();
    proxy = undefined;
  });
  const current = (): Proxy => {
    if (!proxy) throw new Error("useProxy(): the proxy exists only inside tests and hooks (after beforeAll)");
    return proxy;
  };
  return {
    get proxy() {
      return current();
    },
    get address() {
      return current().address;
    },
    withChroot(prefix: string) {
      return current().address + uniqueChroot(prefix);
    },
  };
}

export interface ProxiesFixture {
  readonly proxies: ProxySet;
  /** Every member through its proxy: "127.0.0.1:q1,127.0.0.1:q2,127.0.0.1:q3". */
  readonly connectString: string;
  withChroot(prefix: string): string;
}

/** One proxy per member of the fixture's ensemble (startProxies), reset after each test. */
export function useProxies(ens: EnsembleFixture): ProxiesFixture {
  let set: ProxySet | undefined;
  beforeAll(async () => {
    set = await startProxies(ens.ensemble);
  });
  afterEach(() => set?.reset());
  afterAll(async () => {
    await set?.close();
    set = undefined;
  });
  const current = (): ProxySet => {
    if (!set) throw new Error("useProxies(): the proxies exist only inside tests and hooks (after beforeAll)");
    return set;
  };
  return {
    get proxies() {
      return current();
    },
    get connectString() {
      return current().connectString;
    },
    withChroot(prefix: string) {
      return current().connectString + uniqueChroot(prefix);
    },
  };
}

function isMember(x: Upstream | string | number | EnsembleMember): x is EnsembleMember {
  return typeof x === "object" && "clientPort" in x;
}
