// A Logger for in-process agents that keeps every event, so a test can wait for the moment an
// agent has decided something (e.g. the queue head found the app paused) instead of sleeping
// and hoping the agent got there. Typical use:
//
//   const events = new AgentEvents();
//   const fleet = new InProcessFleet({ connectString, logger: events });
//   const mark = events.all.length;
//   …
//   await events.waitFor((e) => e.fields.reason === "paused", 10_000, "the head to see the pause", mark);

import type { LogFields, Logger } from "../../src/agent/logger.ts";
import { untilNotified } from "../harness/until-notified.ts";

export interface AgentEvent {
  /** Position in `all`. */
  index: number;
  level: "debug" | "info" | "warn" | "error";
  message: string;
  fields: LogFields;
}

export class AgentEvents implements Logger {
  readonly all: AgentEvent[] = [];
  private readonly listeners = new Set<() => void>();

  debug = (message: string, fields: LogFields = {}): void => this.add("debug", message, fields);
  info = (message: string, fields: LogFields = {}): void => this.add("info", message, fields);
  warn = (message: string, fields: LogFields = {}): void => this.add("warn", message, fields);
  error = (message: string, fields: LogFields = {}): void => this.add("error", message, fields);

  /** The first event at index `from` or later that matches; rejects after `timeoutMs`. */
  waitFor(match: (event: AgentEvent) => boolean, timeoutMs: number, what: string, from = 0): Promise<AgentEvent> {
    return untilNotified(
      this.listeners,
      () => this.all.slice(from).find(match),
      timeoutMs,
      () => {
        const recent = this.all.slice(Math.max(from, this.all.length - 20)).map((e) => `${e.message} ${JSON.stringify(e.fields)}`);
        return `no agent event for ${what} within ${timeoutMs} ms; the last ones:\n${recent.join("\n")}`;
      },
    );
  }

  private add(level: AgentEvent["level"], message: string, fields: LogFields): void {
    this.all.push({ index: this.all.length, level, message, fields });
    for (const listener of [...this.listeners]) listener();
  }
}
