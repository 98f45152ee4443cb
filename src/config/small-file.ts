import { type Stats, constants } from "node:fs";
import { type FileHandle, open, stat } from "node:fs/promises";
import { UsageError } from "./errors.ts";
import { quote } from "../text/printable.ts";

/** Config and credential files are a few lines; anything bigger is a wrong path. */
export const MAX_SMALL_FILE_BYTES = 1_048_576;

/**
 * Reads a small text file named by the user (--config, --auth-file, authFile, --agent-auth-file).
 * Anything else is a UsageError naming it as `${label} "path"` and saying what it is instead: a
 * directory, a device (/dev/zero would be read for ever), a FIFO (an open would block for ever),
 * more than 1 MiB, not UTF-8. With `optional`, a path that does not exist gives undefined.
 */
export async function readSmallFile(path: string, label: string, options: { optional?: boolean } = {}): Promise<string | undefined> {
  const named = `${label} ${quote(path)}`;
  // Look before opening: opening a device can itself do something (a tape rewinds).
  let before: Stats;
  try {
    before = await stat(path);
  } catch (error) {
    if (errorCode(error) === "ENOENT" && options.optional) return undefined;
    throw new UsageError(`${named} ${describeError(error)}`);
  }
  assertRegular(before, named);
  // O_NONBLOCK: if the path was swapped for a FIFO since, the open returns at once (and the
  // type check below refuses it) instead of waiting for a writer.
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (error) {
    throw new UsageError(`${named} ${describeError(error)}`);
  }
  try {
    assertRegular(await handle.stat(), named);
    // One byte more than allowed tells a file that grew past the limit after the stat.
    const buffer = Buffer.alloc(MAX_SMALL_FILE_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length === buffer.length) throw new UsageError(`${named} is larger than 1 MiB`);
    }
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(buffer.subarray(0, length));
    } catch {
      throw new UsageError(`${named} is not UTF-8 text`);
    }
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`${named} ${describeError(error)}`);
  } finally {
    await handle.close();
  }
}

function assertRegular(info: Stats, named: string): void {
  if (!info.isFile()) throw new UsageError(`${named} is ${kindOf(info)}, not a regular file`);
  if (info.size > MAX_SMALL_FILE_BYTES) throw new UsageError(`${named} is larger than 1 MiB (${info.size} bytes)`);
}

function kindOf(info: Stats): string {
  if (info.isDirectory()) return "a directory";
  if (info.isCharacterDevice()) return "a character device";
  if (info.isBlockDevice()) return "a block device";
  if (info.isFIFO()) return "a FIFO (named pipe)";
  if (info.isSocket()) return "a socket";
  return "something else";
}

function errorCode(error: unknown): string | undefined {
  return typeof error === "object" && error !== null && "code" in error && typeof error.code === "string" ? error.code : undefined;
}

/** The reason in words, after the quoted path: "does not exist", "cannot be read: …". */
function describeError(error: unknown): string {
  switch (errorCode(error)) {
    case "ENOENT":
      return "does not exist";
    case "ENOTDIR":
      return "does not exist (a part of the path is not a directory)";
    case "EACCES":
    case "EPERM":
      return "cannot be read: permission denied";
    case "ELOOP":
      return "cannot be read: too many levels of symbolic links";
    case "ENAMETOOLONG":
      return "cannot be read: the name is too long";
    case "ERR_INVALID_ARG_VALUE":
    case "ERR_INVALID_ARG_TYPE":
      return "is not a valid path (it contains a NUL byte)";
    default:
      return `cannot be read (${errorCode(error) ?? "unknown error"})`;
  }
}
