// `bun scripts/bench/scale-plot.ts < scale.json > docs/scaling.svg` — the scaling plot of
// docs/PERFORMANCE.md from one `bun run bench --scale --json` run: bytes received per host per
// rollout, and publish → first deploy (any host: solid; the crowded workers' agents: dashed;
// the floor's bare sessions, first admission: grey, dotted), against fleet size (log scale),
// old and new queue.

import type { ScaleResult } from "./scale.ts";
import type { FloorResult } from "./scale-floor.ts";

const input = JSON.parse(await new Response(Bun.stdin.stream()).text()) as {
  scale: ScaleResult[];
  floor?: FloorResult[];
  machine: { date: string };
};
const rows = input.scale;
const floor = (input.floor ?? []).map((f) => ({ hosts: f.hosts, value: f.firstAdmissionMs.p50 }));
const FLOOR_COLOR = "#8a93a3";

const W = 820;
const H = 400;
const PANEL = { w: 300, h: 220, top: 60 };
const LEFTS = [80, 480];
const COLORS = { old: "#d33a3a", new: "#1f9d55" } as const;

const sizes = [...new Set(rows.map((r) => r.hosts))].sort((a, b) => a - b);
const xMin = Math.log10(Math.min(...sizes));
const xMax = Math.log10(Math.max(...sizes));
const x = (left: number, hosts: number): number => left + ((Math.log10(hosts) - xMin) / Math.max(1e-9, xMax - xMin)) * PANEL.w;

function niceMax(value: number): number {
  const p = 10 ** Math.floor(Math.log10(Math.max(value, 1e-9)));
  return [1, 2, 5, 10].map((m) => m * p).find((v) => v >= value) ?? value;
}

const esc = (s: string): string => s.replaceAll("&", "&amp;").replaceAll("<", "&lt;");

/** `dashed`: a second series per queue, drawn dashed on the same axes; `dotted`: one more
 *  series of its own (the floor), grey. */
function panel(
  left: number,
  title: string,
  unit: string,
  value: (r: ScaleResult) => number,
  logY: boolean,
  dashed?: (r: ScaleResult) => number,
  dotted: { hosts: number; value: number }[] = [],
): string {
  const values = [...rows.map(value), ...(dashed ? rows.map(dashed) : []), ...dotted.map((d) => d.value)].filter((v) => v > 0);
  const yMaxRaw = Math.max(...values);
  const yMinLog = Math.floor(Math.log10(Math.min(...values)));
  const yMaxLog = Math.ceil(Math.log10(yMaxRaw));
  const yMax = niceMax(yMaxRaw);
  const y = (v: number): number =>
    logY
      ? PANEL.top + PANEL.h - ((Math.log10(Math.max(v, 1e-9)) - yMinLog) / Math.max(1, yMaxLog - yMinLog)) * PANEL.h
      : PANEL.top + PANEL.h - (v / yMax) * PANEL.h;
  const out: string[] = [];
  out.push(`<text x="${left + PANEL.w / 2}" y="${PANEL.top - 28}" text-anchor="middle" font-weight="700">${esc(title)}</text>`);
  out.push(`<rect x="${left}" y="${PANEL.top}" width="${PANEL.w}" height="${PANEL.h}" fill="none" stroke="#c9ced8"/>`);
  const ticks = logY ? Array.from({ length: yMaxLog - yMinLog + 1 }, (_, i) => 10 ** (yMinLog + i)) : [0, yMax / 2, yMax];
  for (const t of ticks) {
    out.push(`<line x1="${left}" x2="${left + PANEL.w}" y1="${y(t)}" y2="${y(t)}" stroke="#eef0f4"/>`);
    out.push(`<text x="${left - 6}" y="${y(t) + 4}" text-anchor="end" font-size="11">${t >= 1000 ? `${t / 1000}k` : t}</text>`);
  }
  for (const hosts of sizes) {
    out.push(
      `<text x="${x(left, hosts)}" y="${PANEL.top + PANEL.h + 16}" text-anchor="middle" font-size="11">${hosts.toLocaleString("en")}</text>`,
    );
  }
  out.push(`<text x="${left + PANEL.w / 2}" y="${PANEL.top + PANEL.h + 34}" text-anchor="middle" font-size="11">agents (log scale)</text>`);
  out.push(
    `<text x="${left - 48}" y="${PANEL.top + PANEL.h / 2}" text-anchor="middle" font-size="11" transform="rotate(-90 ${left - 48} ${PANEL.top + PANEL.h / 2})">${esc(unit)}</text>`,
  );
  const series: [(r: ScaleResult) => number, string][] = [[value, ""]];
  if (dashed) series.push([dashed, ' stroke-dasharray="6 4"']);
  for (const [of, dash] of series) {
    for (const queue of ["old", "new"] as const) {
      const points = rows
        .filter((r) => r.queue === queue)
        .sort((a, b) => a.hosts - b.hosts)
        .map((r) => [x(left, r.hosts), y(of(r))] as const);
      out.push(
        `<polyline fill="none" stroke="${COLORS[queue]}" stroke-width="2.5"${dash} points="${points.map((p) => p.join(",")).join(" ")}"/>`,
      );
      for (const [px, py] of points) out.push(`<circle cx="${px}" cy="${py}" r="4" fill="${COLORS[queue]}"/>`);
    }
  }
  if (dotted.length > 0) {
    const points = [...dotted].sort((a, b) => a.hosts - b.hosts).map((d) => [x(left, d.hosts), y(d.value)] as const);
    out.push(
      `<polyline fill="none" stroke="${FLOOR_COLOR}" stroke-width="2" stroke-dasharray="2 3" points="${points.map((p) => p.join(",")).join(" ")}"/>`,
    );
    for (const [px, py] of points) out.push(`<circle cx="${px}" cy="${py}" r="3" fill="${FLOOR_COLOR}"/>`);
  }
  return out.join("\n");
}

const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="13" fill="#1d2430">
<rect width="${W}" height="${H}" fill="#fff"/>
${panel(LEFTS[0] ?? 80, "Bytes received per host per rollout", "bytes (log scale)", (r) => r.bytesPerHost, true)}
${panel(
  LEFTS[1] ?? 480,
  "Publish → first deploy (p50)",
  "ms (log scale)",
  (r) => r.publishToFirstDeployMs.p50,
  true,
  (r) => r.crowdedFirstDeployMs.p50,
  floor,
)}
<g font-size="12">
<rect x="${W / 2 - 190}" y="${H - 22}" width="12" height="12" fill="${COLORS.old}"/><text x="${W / 2 - 172}" y="${H - 12}">old: each waiter lists the queue</text>
<rect x="${W / 2 + 50}" y="${H - 22}" width="12" height="12" fill="${COLORS.new}"/><text x="${W / 2 + 68}" y="${H - 12}">new: ticket queue</text>
</g>
<text x="${W - 8}" y="${H - 44}" text-anchor="end" font-size="11" fill="#677285">dashed: first deploy among the agents that share the crowded workers</text>
${floor.length > 0 ? `<text x="${W - 8}" y="${H - 58}" text-anchor="end" font-size="11" fill="${FLOOR_COLOR}">grey, dotted: the floor — bare sessions, no agent: read, ticket, first admission</text>` : ""}
<text x="${W - 8}" y="14" text-anchor="end" font-size="10" fill="#677285">bun run bench --scale, ${esc(input.machine.date.slice(0, 10))}</text>
</svg>
`;
process.stdout.write(svg);
