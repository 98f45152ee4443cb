/** The operation could not be done as asked (exit 1): missing app, lost race, failed rollout. */
export class OperationError extends Error {
  override readonly name: string = "OperationError";
}

export class AppNotFoundError extends OperationError {
  override readonly name = "AppNotFoundError";
  constructor(readonly app: string) {
    super(`app "${app}" does not exist`);
  }
}
