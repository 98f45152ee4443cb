/** What one attempt to hand an event to a receiver came to. */
export type Outcome = { ok: true } | { ok: false; retry: boolean; reason: string };

export interface DeliveryTarget {
  /** For messages: "webhook https://…", "exec './notify.sh'". */
  name: string;
  send(body: string): Promise<Outcome>;
}

export interface DeliveryOptions {
  /** Events held while the receiver is down; beyond it the oldest is dropped (and reported). */
  maxQueued: number;
  /** Backoff between attempts at one event: initial, doubling, capped. */
  retryInitialMs: number;
  retryMaxMs: number;
  /** One line per problem (a failed attempt, a drop); the caller decides where it goes. */
  warn: (message: string) => void;
  /** The backoff's pause; resolves early when the delivery is closed (src/agent/sleep.ts). */
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
}

export const DEFAULT_DELIVERY = { maxQueued: 10_000, retryInitialMs: 500, retryMaxMs: 30_000 } as const;

/**
 * Hands events to one receiver strictly in order, one at a time, each until it is accepted:
 * a receiver that is down (or answers 5xx, 408, 429) gets the same event again after a backoff
 * (500 ms doubling to 30 s), and the events behind it wait in a queue. Never blocks the caller:
 * push() only queues. Bound: up to `maxQueued` events wait; one more drops the oldest waiting
 * one, with a warning naming its seq — so nothing is lost while the receiver is back before
 * that many events have piled up. An event the receiver refuses for good (another 4xx, a
 * command's non-zero exit) is reported and skipped: sending it again would never succeed and
 * would stop every later one.
 */
export class OrderedDelivery<E extends { seq: number }> {
  private readonly queue: E[] = [];
  private running: Promise<void> | undefined;
  private readonly stop = new AbortController();
  private droppedCount = 0;
  private deliveredCount = 0;

  constructor(
    private readonly target: DeliveryTarget,
    private readonly options: DeliveryOptions,
  ) {}

  push(event: E): void {
    this.queue.push(event);
    if (this.queue.length > this.options.maxQueued) {
      const dropped = this.queue.splice(1, 1)[0]; // the one in flight stays at the head
      this.droppedCount += 1;
      if (dropped)
        this.options.warn(`${this.target.name}: dropped event seq ${dropped.seq}: ${this.options.maxQueued} events already waiting`);
    }
    this.kick();
  }

  /** Starts the pump unless it runs; an event pushed while it was finishing starts it again.
   *  The pump starts a microtask later, so `running` is set before any of its code runs (a
   *  receiver that pushes from inside send() must not start a second pump). */
  private kick(): void {
    if (this.running || this.stop.signal.aborted) return;
    this.running = Promise.resolve()
      .then(() => this.pump())
      .finally(() => {
        this.running = undefined;
        if (this.queue.length > 0) this.kick();
      });
  }

  get pending(): number {
    return this.queue.length;
  }

  get dropped(): number {
    return this.droppedCount;
  }

  get delivered(): number {
    return this.deliveredCount;
  }

  /** Waits until the queue is empty or `timeoutMs` passed, then stops retrying; what is still
   *  queued is returned (undelivered). */
  async close(timeoutMs: number): Promise<number> {
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref?.());
    await Promise.race([this.idle(), deadline]);
    this.stop.abort();
    return this.queue.length;
  }

  private async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async pump(): Promise<void> {
    let backoff = this.options.retryInitialMs;
    const { sleep } = this.options;
    while (this.queue.length > 0 && !this.stop.signal.aborted) {
      const event = this.queue[0] as E;
      const outcome = await this.target
        .send(JSON.stringify(event))
        .catch((error: unknown): Outcome => ({ ok: false, retry: true, reason: error instanceof Error ? error.message : String(error) }));
      if (outcome.ok || !outcome.retry) {
        if (!outcome.ok) this.options.warn(`${this.target.name}: event seq ${event.seq} refused, skipped: ${outcome.reason}`);
        else this.deliveredCount += 1;
        this.queue.shift();
        backoff = this.options.retryInitialMs;
        continue;
      }
      this.options.warn(`${this.target.name}: event seq ${event.seq} not delivered (${outcome.reason}); retrying in ${backoff} ms`);
      await sleep(backoff, this.stop.signal);
      backoff = Math.min(backoff * 2, this.options.retryMaxMs);
    }
  }
}

/** A webhook: POST the event as JSON; 2xx accepted; 408, 429, 5xx and network errors retried. */
export function webhookTarget(url: string, timeoutMs: number, fetchImpl: typeof fetch = fetch): DeliveryTarget {
  return {
    name: `webhook ${url}`,
    async send(body) {
      const response = await fetchImpl(url, {
        method: "POST",
        headers: { "content-type": "application/json", "user-agent": "conveyor-events" },
        body,
        signal: AbortSignal.timeout(timeoutMs),
        redirect: "manual",
      });
      await response.body?.cancel().catch(() => undefined);
      if (response.ok) return { ok: true };
      const retry = response.status === 408 || response.status === 429 || response.status >= 500;
      return { ok: false, retry, reason: `HTTP ${response.status}` };
    },
  };
}
