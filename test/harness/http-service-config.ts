// <dir>/service.json: what the test host's server process reads at each start (the test writes
// it; ./http-service.ts). Read at start, so a test may change it between restarts.

export interface ServiceConfig {
  /** The host's fixed port on 127.0.0.1. */
  port: number;
  /** From process start to listening (the restart-to-ready delay). */
  readyDelayMs: number;
  /** Versions starting with this are bad releases: healthy at first, then they exit. */
  crashPrefix: string;
  /** How long after listening a bad release exits. */
  crashAfterMs: number;
}

export function parseServiceConfig(text: string): ServiceConfig {
  const raw: unknown = JSON.parse(text);
  if (typeof raw !== "object" || raw === null) throw new Error("service.json: not an object");
  const field = (name: keyof ServiceConfig): unknown => (raw as Record<string, unknown>)[name];
  const number = (name: keyof ServiceConfig): number => {
    const value = field(name);
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) throw new Error(`service.json: ${name} must be a number ≥ 0`);
    return value;
  };
  const crashPrefix = field("crashPrefix");
  if (typeof crashPrefix !== "string" || crashPrefix === "") throw new Error("service.json: crashPrefix must be a non-empty string");
  return { port: number("port"), readyDelayMs: number("readyDelayMs"), crashPrefix, crashAfterMs: number("crashAfterMs") };
}
