/**
 * Typed ZooKeeper errors. Every failure that leaves src/zk is a ZkError, so callers branch on
 * predicates instead of on the client library's numeric codes.
 *
 * `connectionLoss` means the outcome of the operation is unknown (it may or may not have been
 * applied); `sessionExpired` means every ephemeral node of the session is gone.
 */
export type ZkErrorKind =
  | "noNode"
  | "nodeExists"
  | "badVersion"
  | "notEmpty"
  | "noAuth"
  | "authFailed"
  | "connectionLoss"
  | "sessionExpired"
  | "unreachable"
  | "closed"
  | "invalidAcl"
  | "other";

export class ZkError extends Error {
  override readonly name = "ZkError";
  constructor(
    readonly kind: ZkErrorKind,
    message: string,
    readonly path?: string,
    readonly code?: number,
  ) {
    super(message);
  }
}

const isKind =
  (kind: ZkErrorKind) =>
  (error: unknown): error is ZkError =>
    error instanceof ZkError && error.kind === kind;

export const isNoNode = isKind("noNode");
export const isNodeExists = isKind("nodeExists");
export const isBadVersion = isKind("badVersion");
export const isNotEmpty = isKind("notEmpty");
export const isConnectionLoss = isKind("connectionLoss");
export const isUnreachable = isKind("unreachable");
export const isClosed = isKind("closed");

/** Refused by an ACL, or the credentials themselves were rejected. */
export function isNoAuth(error: unknown): error is ZkError {
  return error instanceof ZkError && (error.kind === "noAuth" || error.kind === "authFailed");
}

/** The cluster could not be reached or the session is gone: retrying later may succeed. */
export function isConnectivity(error: unknown): error is ZkError {
  return (
    error instanceof ZkError &&
    (error.kind === "connectionLoss" || error.kind === "sessionExpired" || error.kind === "unreachable" || error.kind === "closed")
  );
}

// Codes from node-zookeeper-client's Exception (mirroring ZooKeeper's KeeperException.Code).
const KIND_BY_CODE: Record<number, ZkErrorKind> = {
  [-4]: "connectionLoss",
  [-7]: "connectionLoss", // operation timeout
  [-101]: "noNode",
  [-102]: "noAuth",
  [-103]: "badVersion",
  [-110]: "nodeExists",
  [-111]: "notEmpty",
  [-112]: "sessionExpired",
  [-114]: "invalidAcl",
  [-115]: "authFailed",
};

interface LibraryException {
  code: number;
  name: string;
}

function isLibraryException(value: unknown): value is LibraryException {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { code?: unknown }).code === "number" &&
    typeof (value as { name?: unknown }).name === "string"
  );
}

/** Converts whatever the client library handed back into a ZkError naming the path. */
export function toZkError(error: unknown, path?: string): ZkError {
  if (error instanceof ZkError) return error;
  if (isLibraryException(error)) {
    const kind = KIND_BY_CODE[error.code] ?? "other";
    const where = path === undefined ? "" : ` (${path})`;
    return new ZkError(kind, `${describeKind(kind, error.name)}${where}`, path, error.code);
  }
  const message = error instanceof Error ? error.message : String(error);
  return new ZkError("other", path === undefined ? message : `${message} (${path})`, path);
}

function describeKind(kind: ZkErrorKind, libraryName: string): string {
  switch (kind) {
    case "noNode":
      return "no such node";
    case "nodeExists":
      return "node already exists";
    case "badVersion":
      return "node was changed concurrently (version mismatch)";
    case "notEmpty":
      return "node has children";
    case "noAuth":
      return "not authorised";
    case "authFailed":
      return "authentication failed";
    case "connectionLoss":
      return "connection to ZooKeeper lost";
    case "sessionExpired":
      return "ZooKeeper session expired";
    case "invalidAcl":
      return "invalid ACL";
    default:
      return `ZooKeeper error ${libraryName}`;
  }
}
