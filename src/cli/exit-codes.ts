import { InvalidDataError, UsageError } from "../config/errors.ts";
import { OperationError } from "../apps/errors.ts";
import { ZkError, isConnectivity, isNoAuth } from "../zk/errors.ts";

/** The documented exit codes; nothing else is ever returned. */
export const ExitCode = {
  ok: 0,
  /** The operation failed: rollout failed, halted or timed out, app missing, concurrent change. */
  failed: 1,
  /** Usage or invalid input; nothing was written. */
  usage: 2,
  /** ZooKeeper unreachable or refused us (not authorised). */
  unavailable: 3,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export const EXIT_CODES_HELP = [
  "  0  ok",
  "  1  operation failed (rollout failed, halted or timed out, app or chroot missing, concurrent change, invalid data in ZooKeeper)",
  "  2  usage or invalid input (the bad value is named; nothing was written)",
  "  3  ZooKeeper unreachable or not authorised",
].join("\n");

/** Maps any error to its exit code and a one-line message (never a stack trace). */
export function describeFailure(error: unknown): { code: ExitCode; message: string } {
  if (error instanceof UsageError) return { code: ExitCode.usage, message: error.message };
  if (isNoAuth(error)) {
    const where = error.path === undefined ? "" : ` to access ${error.path}`;
    return { code: ExitCode.unavailable, message: `not authorised${where}: check --auth (ZooKeeper ACLs refused this identity)` };
  }
  if (isConnectivity(error)) return { code: ExitCode.unavailable, message: error.message };
  if (error instanceof InvalidDataError || error instanceof OperationError) {
    return { code: ExitCode.failed, message: error.message };
  }
  if (error instanceof ZkError) return { code: ExitCode.failed, message: error.message };
  const text = error instanceof Error ? error.message : String(error);
  return { code: ExitCode.failed, message: `internal error: ${text.split("\n")[0]}` };
}
