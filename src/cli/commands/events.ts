import { DEFAULT_DELIVERY, type DeliveryTarget, OrderedDelivery, type Outcome, webhookTarget } from "../../apps/event-delivery.ts";
import { streamEvents } from "../../apps/event-stream.ts";
import { sleep } from "../../agent/sleep.ts";
import type { FleetEvent } from "../../apps/fleet-events.ts";
import { UsageError } from "../../config/errors.ts";
import { parseAppName, parseCommand } from "../../config/parse-input.ts";
import { quote } from "../../text/printable.ts";
import type { CommandSpec } from "../command.ts";
import { ExitCode } from "../exit-codes.ts";
import { withZk } from "../session.ts";
import { stopSignal } from "../stop-signal.ts";

/** A webhook's POST may take this long before it counts as failed (and is retried). */
const WEBHOOK_TIMEOUT_MS = 10_000;
/** An --exec command may run this long; then it is killed and the event reported as refused. */
const EXEC_TIMEOUT_MS = 30_000;
/** On SIGINT/SIGTERM, queued deliveries get this long to finish. */
const CLOSE_GRACE_MS = 5_000;

export const events: CommandSpec = {
  usage: "events [app]",
  description:
    "Print rollout events as they happen (published, host queued/deploying/healthy/current/failed, halted, converged …), one line each",
  options: [
    { flag: "--since <seq>", description: "First replay the current state of everything changed after SEQ (an event's seq), then follow" },
    { flag: "--exec <cmd>", description: "Run CMD (sh -c) for each event, in order, with the event as JSON on stdin" },
    {
      flag: "--webhook <url>",
      description: `POST each event as JSON to URL, in order; retried with backoff while the receiver is down (${DEFAULT_DELIVERY.maxQueued} events held)`,
    },
  ],
  examples: [
    "conveyor events",
    "conveyor events myapp --json",
    "conveyor events --webhook https://hooks.slack.com/services/T000/B000/XXXX",
    "conveyor events myapp --since 4294967321 --exec ./notify.sh",
  ],
  async run([appArg], ctx) {
    const app = appArg === undefined ? undefined : parseAppName(appArg);
    const sinceText = ctx.options.string("since");
    if (sinceText !== undefined && !/^\d{1,16}$/.test(sinceText)) {
      throw new UsageError(`invalid --since ${quote(sinceText)}: must be an event's seq (a whole number)`);
    }
    const warn = (message: string): void => ctx.io.err(`events: ${message}`);
    const deliveries = [
      ...ctx.options.strings("webhook").map((url) => webhookTarget(parseWebhookUrl(url), WEBHOOK_TIMEOUT_MS)),
      ...ctx.options.strings("exec").map((command) => execTarget(parseCommand(command, "--exec"))),
    ].map((target) => new OrderedDelivery<FleetEvent>(target, { ...DEFAULT_DELIVERY, warn, sleep }));
    const json = ctx.options.flag("json");
    const stop = stopSignal(ctx, ExitCode.failed);
    try {
      await withZk(ctx, (zk) =>
        streamEvents(zk, {
          ...(app === undefined ? {} : { app }),
          ...(sinceText === undefined ? {} : { since: Number(sinceText) }),
          signal: stop.signal,
          onReady: (seq) => ctx.io.err(`events: following ${app ?? "every app"} from seq ${seq}`),
          onEvent: (event) => {
            ctx.io.out(json ? JSON.stringify(event) : `${event.at} ${event.seq} ${event.text}`);
            for (const delivery of deliveries) delivery.push(event);
          },
        }),
      );
    } finally {
      stop.dispose();
    }
    // Stopped (SIGTERM/SIGINT): what is queued gets CLOSE_GRACE_MS to reach its receivers.
    let lost = 0;
    for (const delivery of deliveries) {
      const undelivered = await delivery.close(CLOSE_GRACE_MS);
      lost += undelivered + delivery.dropped;
      if (undelivered > 0) warn(`stopped with ${undelivered} event(s) not delivered`);
    }
    return lost === 0 ? ExitCode.ok : ExitCode.failed;
  },
};

function parseWebhookUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`invalid --webhook ${quote(text)}: must be an http:// or https:// URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`invalid --webhook ${quote(text)}: must be an http:// or https:// URL`);
  }
  return url.href;
}

/** `sh -c CMD` with the event on stdin; exit 0 accepted, anything else reported and skipped. */
function execTarget(command: string): DeliveryTarget {
  return {
    name: `exec ${quote(command)}`,
    async send(body): Promise<Outcome> {
      const child = Bun.spawn(["/bin/sh", "-c", command], { stdin: "pipe", stdout: "ignore", stderr: "inherit" });
      child.stdin.write(`${body}\n`);
      await child.stdin.end();
      const timer = setTimeout(() => child.kill("SIGKILL"), EXEC_TIMEOUT_MS);
      const code = await child.exited;
      clearTimeout(timer);
      if (code === 0) return { ok: true };
      return { ok: false, retry: false, reason: child.signalCode ? `killed (${child.signalCode})` : `exit ${code}` };
    },
  };
}
