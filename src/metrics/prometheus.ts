// Prometheus' text exposition format (version 0.0.4), written out directly: counters, gauges
// and histograms with labels — all Conveyor needs, with no dependency in the binary. Checked
// by `promtool check metrics` in test/integration/metrics.test.ts.

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

type Labels = Readonly<Record<string, string>>;

/** `name{a="x",b="y"}`: label values escaped as the format requires (\\, \", \n). */
function series(name: string, labels: Labels): string {
  const pairs = Object.entries(labels).map(
    ([k, v]) => `${k}="${v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")}"`,
  );
  return pairs.length === 0 ? name : `${name}{${pairs.join(",")}}`;
}

function number(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(value);
}

const key = (labels: Labels): string => JSON.stringify(Object.entries(labels).sort());

abstract class Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "gauge" | "histogram",
  ) {}
  abstract lines(): string[];
  header(): string[] {
    return [`# HELP ${this.name} ${this.help.replaceAll("\\", "\\\\").replaceAll("\n", "\\n")}`, `# TYPE ${this.name} ${this.type}`];
  }
}

export class Counter extends Metric {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(name: string, help: string) {
    super(name, help, "counter");
  }
  inc(labels: Labels = {}, by = 1): void {
    const k = key(labels);
    const entry = this.values.get(k) ?? { labels, value: 0 };
    entry.value += by;
    this.values.set(k, entry);
  }
  /** Makes the series exist at 0 (a counter that never moved is still scraped). */
  touch(labels: Labels = {}): void {
    this.inc(labels, 0);
  }
  lines(): string[] {
    return [...this.values.values()].map(({ labels, value }) => `${series(this.name, labels)} ${number(value)}`);
  }
}

export class Gauge extends Metric {
  private values = new Map<string, { labels: Labels; value: number }>();
  constructor(name: string, help: string) {
    super(name, help, "gauge");
  }
  set(labels: Labels, value: number): void {
    this.values.set(key(labels), { labels, value });
  }
  delete(labels: Labels): void {
    this.values.delete(key(labels));
  }
  /** Drops every series (before a collector sets the ones that exist now). */
  clear(): void {
    this.values = new Map();
  }
  lines(): string[] {
    return [...this.values.values()].map(({ labels, value }) => `${series(this.name, labels)} ${number(value)}`);
  }
}

export class Histogram extends Metric {
  private readonly values = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(
    name: string,
    help: string,
    private readonly buckets: readonly number[],
  ) {
    super(name, help, "histogram");
  }
  observe(labels: Labels, value: number): void {
    const k = key(labels);
    const entry = this.values.get(k) ?? { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
    this.buckets.forEach((le, i) => {
      if (value <= le) entry.counts[i] = (entry.counts[i] ?? 0) + 1;
    });
    entry.sum += value;
    entry.count += 1;
    this.values.set(k, entry);
  }
  lines(): string[] {
    const out: string[] = [];
    for (const { labels, counts, sum, count } of this.values.values()) {
      this.buckets.forEach((le, i) => {
        out.push(`${series(`${this.name}_bucket`, { ...labels, le: number(le) })} ${counts[i] ?? 0}`);
      });
      out.push(`${series(`${this.name}_bucket`, { ...labels, le: "+Inf" })} ${count}`);
      out.push(`${series(`${this.name}_sum`, labels)} ${number(sum)}`);
      out.push(`${series(`${this.name}_count`, labels)} ${count}`);
    }
    return out;
  }
}

/** Deploy-length buckets, in seconds: from a quick restart to a long migration. */
export const DURATION_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800] as const;

/** The metrics of one process, rendered on each scrape; collectors refresh gauges first. */
export class Registry {
  private readonly metrics: Metric[] = [];
  private readonly collectors: (() => void)[] = [];

  counter(name: string, help: string): Counter {
    return this.add(new Counter(name, help));
  }
  gauge(name: string, help: string): Gauge {
    return this.add(new Gauge(name, help));
  }
  histogram(name: string, help: string, buckets: readonly number[] = DURATION_BUCKETS): Histogram {
    return this.add(new Histogram(name, help, buckets));
  }
  onCollect(collect: () => void): void {
    this.collectors.push(collect);
  }

  render(): string {
    for (const collect of this.collectors) collect();
    return `${this.metrics.flatMap((m) => [...m.header(), ...m.lines()]).join("\n")}\n`;
  }

  private add<M extends Metric>(metric: M): M {
    if (this.metrics.some((m) => m.name === metric.name)) throw new Error(`metric ${metric.name} registered twice`);
    this.metrics.push(metric);
    return metric;
  }
}
