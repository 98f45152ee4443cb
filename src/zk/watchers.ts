import type * as zookeeper from "node-zookeeper-client";

export type WatchEventType = "created" | "deleted" | "dataChanged" | "childrenChanged" | "sessionLost";

/** A one-shot notification; `sessionLost` means the watch is gone and the caller must re-read. */
export interface WatchEvent {
  type: WatchEventType;
  path: string;
}

export type Watcher = (event: WatchEvent) => void;

const EVENT_TYPES: Record<number, WatchEventType> = {
  1: "created",
  2: "deleted",
  3: "dataChanged",
  4: "childrenChanged",
};

type Kind = "data" | "child";

/**
 * Our own table of one-shot watchers. The library keeps an EventEmitter per path and warns past
 * ten listeners, and forgets nothing when a session dies; so we hand it a single stable
 * dispatcher per (kind, path) and fan out ourselves. On session loss or close every waiting
 * watcher gets `sessionLost`, so nobody waits forever on a watch that no longer exists.
 */
export class WatcherRegistry {
  private readonly sets = new Map<string, Set<Watcher>>();
  private readonly dispatchers = new Map<string, (event: zookeeper.Event) => void>();

  add(kind: Kind, path: string, watcher: Watcher, relative: (p: string) => string): (e: zookeeper.Event) => void {
    const key = `${kind}:${path}`;
    let set = this.sets.get(key);
    if (!set) {
      set = new Set();
      this.sets.set(key, set);
    }
    set.add(watcher);
    let dispatcher = this.dispatchers.get(key);
    if (!dispatcher) {
      dispatcher = (event: zookeeper.Event): void => {
        const waiting = this.sets.get(key);
        this.sets.delete(key);
        const type = EVENT_TYPES[event.getType()];
        if (!waiting || !type) return;
        const payload: WatchEvent = { type, path: relative(event.getPath()) };
        deliverAll(waiting, payload);
      };
      this.dispatchers.set(key, dispatcher);
    }
    return dispatcher;
  }

  removeFrom(kind: Kind, path: string, watcher: Watcher): void {
    this.sets.get(`${kind}:${path}`)?.delete(watcher);
  }

  remove(watcher: Watcher): void {
    for (const [key, set] of this.sets) {
      set.delete(watcher);
      if (set.size === 0) this.sets.delete(key); // a later event for it finds no set: delivered to nobody
    }
  }

  /** Watchers waiting for an event, over every path: what a long-running agent holds on to. */
  get size(): number {
    let n = 0;
    for (const set of this.sets.values()) n += set.size;
    return n;
  }

  fireSessionLost(): void {
    const all = [...this.sets.entries()];
    this.sets.clear();
    this.dispatchers.clear();
    for (const [key, set] of all) {
      const path = key.slice(key.indexOf(":") + 1);
      deliverAll(set, { type: "sessionLost", path });
    }
  }
}

/**
 * Calls every listener even if one throws: listeners run inside the library's socket handler
 * or inside our session-loss handling, where an exception would stop the others from hearing
 * (and could stop the client from opening its next session). A throw is a bug in the listener:
 * it is raised again afterwards, on its own, so it is not silently lost.
 */
export function deliverAll<T>(listeners: Iterable<(value: T) => void>, value: T): void {
  let first: { error: unknown } | undefined;
  for (const listener of [...listeners]) {
    try {
      listener(value);
    } catch (error) {
      first ??= { error };
    }
  }
  if (first) {
    const { error } = first;
    queueMicrotask(() => {
      throw error;
    });
  }
}
