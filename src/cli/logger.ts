import { type LogObject, createConsola } from "consola/core";
import type { LogLevel } from "../config/settings.ts";
import type { LogFields, Logger } from "../agent/logger.ts";

export type LogFormat = "text" | "json";

const CONSOLA_LEVEL: Record<LogLevel, number> = { error: 0, warn: 1, info: 3, debug: 4 };

/**
 * One line per event, journald-friendly: text `2026-11-24T20:40:00.123Z INFO deploy started
 * app=myapp version=1.1`, or one JSON object per line with `--log-format json`.
 */
export function createLogger(level: LogLevel, format: LogFormat, write: (line: string) => void): Logger {
  const consola = createConsola({
    level: CONSOLA_LEVEL[level],
    reporters: [{ log: (entry: LogObject) => write(formatEntry(entry, format)) }],
  });
  const emit =
    (method: "debug" | "info" | "warn" | "error") =>
    (message: string, fields?: LogFields): void =>
      consola[method](message, fields ?? {});
  return { debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error") };
}

function formatEntry(entry: LogObject, format: LogFormat): string {
  const [message, fields] = entry.args as [string, LogFields];
  const level = entry.type === "log" ? "info" : entry.type;
  const clean = Object.fromEntries(Object.entries(fields ?? {}).filter(([, v]) => v !== undefined));
  if (format === "json") {
    return `${JSON.stringify({ time: entry.date.toISOString(), level, msg: message, ...clean })}\n`;
  }
  const pairs = Object.entries(clean).map(([k, v]) => `${k}=${formatValue(v)}`);
  return `${entry.date.toISOString()} ${level.toUpperCase()} ${message}${pairs.length ? ` ${pairs.join(" ")}` : ""}\n`;
}

function formatValue(value: unknown): string {
  const text = String(value);
  return /^[^\s"=]*$/.test(text) && text !== "" ? text : JSON.stringify(text);
}
