/** Bad input from a person or a file (argv, env, config): the CLI exits 2, nothing is written. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** A znode whose payload fails validation: reported with its path, never trusted. */
export class InvalidDataError extends Error {
  override readonly name = "InvalidDataError";
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`invalid data at ${path}: ${reason}`);
  }
}
