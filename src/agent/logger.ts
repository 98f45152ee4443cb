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

/** A logger that adds `fields` to every line (e.g. the app and host of a worker). */
export function withFields(base: Logger, fields: LogFields): Logger {
  return {
    debug: (m, f) => base.debug(m, { ...fields, ...f }),
    info: (m, f) => base.info(m, { ...fields, ...f }),
    warn: (m, f) => base.warn(m, { ...fields, ...f }),
    error: (m, f) => base.error(m, { ...fields, ...f }),
  };
}
