import type * as zookeeper from "node-zookeeper-client";
import type { CreateMode } from "./client.ts";

export type TransactionResult = { op: "create"; path: string } | { op: "set" | "delete" | "check"; path: string };

interface TransactionHost {
  absolute(path: string): string;
  relative(path: string): string;
  aclFor(path: string): zookeeper.ACL[];
  createMode(mode: CreateMode): number;
  run(build: (txn: zookeeper.Transaction) => void, paths: string[]): Promise<unknown>;
}

type Op = (txn: zookeeper.Transaction) => void;

interface LibraryOpResult {
  type: number;
  path?: string;
}

/**
 * A ZooKeeper multi-op: all ops apply or none does. On failure commit() rejects with the
 * ZkError of the first failing op (e.g. badVersion from a compare-and-set `set`).
 * On connection loss the outcome is unknown, as for any write.
 */
export class Transaction {
  private readonly ops: Op[] = [];
  private readonly kinds: TransactionResult[] = [];

  constructor(private readonly host: TransactionHost) {}

  create(path: string, data: Buffer = Buffer.alloc(0), mode: CreateMode = "persistent"): this {
    const abs = this.host.absolute(path);
    const acls = this.host.aclFor(path);
    const m = this.host.createMode(mode);
    this.ops.push((t) => t.create(abs, data, acls, m));
    this.kinds.push({ op: "create", path });
    return this;
  }

  set(path: string, data: Buffer, version = -1): this {
    const abs = this.host.absolute(path);
    this.ops.push((t) => {
      t.setData(abs, data, version);
    });
    this.kinds.push({ op: "set", path });
    return this;
  }

  delete(path: string, version = -1): this {
    const abs = this.host.absolute(path);
    this.ops.push((t) => {
      t.remove(abs, version);
    });
    this.kinds.push({ op: "delete", path });
    return this;
  }

  check(path: string, version: number): this {
    const abs = this.host.absolute(path);
    this.ops.push((t) => {
      t.check(abs, version);
    });
    this.kinds.push({ op: "check", path });
    return this;
  }

  get size(): number {
    return this.ops.length;
  }

  /** Resolves with one result per op; a create's result carries the created (sequential) path. */
  async commit(): Promise<TransactionResult[]> {
    const raw = (await this.host.run(
      (txn) => {
        for (const op of this.ops) op(txn);
      },
      this.kinds.map((k) => k.path),
    )) as LibraryOpResult[] | undefined;
    return this.kinds.map((kind, i) => {
      const created = raw?.[i]?.path;
      return kind.op === "create" && typeof created === "string" ? { op: "create", path: this.host.relative(created) } : kind;
    });
  }
}
