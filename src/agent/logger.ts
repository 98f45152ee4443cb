/** Structured fields that go with a log line (app, version, host, slot, …). */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

/** The agent logs one line per event; the CLI decides the format (text or JSON). */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
