/**
 * A small dependency-free SVG line-plot writer (for `profile --svg` and `compare`): several series
 * of (x, y) points, axes with "nice" ticks, optional log-scale x (and y), dashed reference lines and
 * a legend. The output is a standalone SVG 1.1 document; no browser or library is needed.
 * @module
 */

/** One line of the plot. */
export interface PlotSeries {
  /** Legend text. */
  name: string;
  /** Points, drawn in the given order; non-finite values are skipped. */
  points: [number, number][];
  /** CSS colour; default from a palette. */
  color?: string;
  /** Draw dashed (reference curves such as a bandwidth limit). */
  dashed?: boolean;
  /** Draw a marker at each point (default true). */
  markers?: boolean;
}

/** A plot: series plus axis labels and scales. */
export interface PlotSpec {
  title?: string;
  xLabel: string;
  yLabel: string;
  series: PlotSeries[];
  /** Logarithmic x axis (values must be > 0). */
  logX?: boolean;
  /** Logarithmic y axis (values must be > 0). */
  logY?: boolean;
  /** Start the (linear) y axis at zero (default true). */
  yFromZero?: boolean;
  width?: number;
  height?: number;
}

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

/** Escapes text for XML content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** Linear ticks at 1/2/5 × 10^k steps, from the last tick ≤ `lo` to the first tick ≥ `hi`. */
export function niceTicks(lo: number, hi: number, target = 6): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  const ticks: number[] = [];
  for (let k = first; k <= last; k++) ticks.push(Number((k * step).toPrecision(12)));
  return ticks;
}

/** Log ticks: powers of 10 when the range spans two decades or more, else powers of 2. */
export function logTicks(lo: number, hi: number): number[] {
  const base = Math.log10(hi / lo) >= 2 ? 10 : 2;
  const ticks: number[] = [];
  const first = Math.ceil(Math.log(lo) / Math.log(base) - 1e-9);
  const last = Math.floor(Math.log(hi) / Math.log(base) + 1e-9);
  for (let e = first; e <= last; e++) ticks.push(base ** e);
  return ticks.length > 0 ? ticks : [lo, hi];
}

/** Short tick label: 16384 → "16384", 200000 → "200k", 3000000 → "3M", 0.25 → "0.25". */
export function tickLabel(v: number): string {
  if (Math.abs(v) >= 1e6 && v % 1e6 === 0) return `${v / 1e6}M`;
  if (Math.abs(v) >= 1e5 && v % 1e3 === 0) return `${v / 1e3}k`;
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
}

interface Axis {
  lo: number;
  hi: number;
  log: boolean;
  ticks: number[];
}

function axis(values: number[], log: boolean, fromZero: boolean): Axis {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (log) {
    if (lo === hi) [lo, hi] = [lo / 2, hi * 2];
    const ticks = logTicks(lo, hi);
    return { lo: Math.min(lo, ticks[0]), hi: Math.max(hi, ticks[ticks.length - 1]), log, ticks };
  }
  if (fromZero) lo = Math.min(lo, 0);
  if (lo === hi) [lo, hi] = [lo - 1, hi + 1];
  const ticks = niceTicks(lo, hi);
  return { lo: ticks[0], hi: ticks[ticks.length - 1], log, ticks };
}

function scale(a: Axis, v: number, p0: number, p1: number): number {
  const f = a.log ? (Math.log(v) - Math.log(a.lo)) / (Math.log(a.hi) - Math.log(a.lo)) : (v - a.lo) / (a.hi - a.lo);
  return p0 + f * (p1 - p0);
}

const fmt = (n: number) => n.toFixed(1);

/** Renders `spec` as an SVG document string. */
export function svgLinePlot(spec: PlotSpec): string {
  const W = spec.width ?? 760;
  const H = spec.height ?? 460;
  const ok = (v: number, log?: boolean) => Number.isFinite(v) && (!log || v > 0);
  const series = spec.series.map((s) => ({
    ...s,
    points: s.points.filter(([x, y]) => ok(x, spec.logX) && ok(y, spec.logY)),
  }));
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  if (xs.length === 0) {
    xs.push(spec.logX ? 1 : 0, spec.logX ? 10 : 1);
    ys.push(spec.logY ? 1 : 0, spec.logY ? 10 : 1);
  }
  const ax = axis(xs, spec.logX ?? false, false);
  const ay = axis(ys, spec.logY ?? false, spec.yFromZero ?? true);
  const legendW = 20 + 7 * Math.max(8, ...series.map((s) => s.name.length));
  const L = 70, T = spec.title ? 40 : 20, R = W - legendW - 20, B = H - 55;
  const X = (v: number) => scale(ax, v, L, R);
  const Y = (v: number) => scale(ay, v, B, T);

  const out: string[] = [];
  out.push(
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ` +
      `font-family="sans-serif" font-size="12">`,
    `<rect x="0" y="0" width="${W}" height="${H}" fill="white"/>`,
  );
  if (spec.title) {
    out.push(
      `<text x="${fmt((L + R) / 2)}" y="22" text-anchor="middle" font-size="14">${escapeXml(spec.title)}</text>`,
    );
  }
  out.push(`<g class="grid" stroke="#ddd" stroke-width="1">`);
  for (const t of ax.ticks) out.push(`<line x1="${fmt(X(t))}" y1="${T}" x2="${fmt(X(t))}" y2="${B}"/>`);
  for (const t of ay.ticks) out.push(`<line x1="${L}" y1="${fmt(Y(t))}" x2="${R}" y2="${fmt(Y(t))}"/>`);
  out.push(`</g>`);
  out.push(`<rect x="${L}" y="${T}" width="${R - L}" height="${B - T}" fill="none" stroke="black"/>`);
  out.push(`<g class="ticks">`);
  for (const t of ax.ticks) {
    out.push(`<text x="${fmt(X(t))}" y="${B + 16}" text-anchor="middle">${escapeXml(tickLabel(t))}</text>`);
  }
  for (const t of ay.ticks) {
    out.push(`<text x="${L - 6}" y="${fmt(Y(t) + 4)}" text-anchor="end">${escapeXml(tickLabel(t))}</text>`);
  }
  out.push(`</g>`);
  out.push(
    `<text x="${fmt((L + R) / 2)}" y="${H - 15}" text-anchor="middle">${escapeXml(spec.xLabel)}</text>`,
    `<text x="18" y="${fmt((T + B) / 2)}" text-anchor="middle" transform="rotate(-90 18 ${fmt((T + B) / 2)})">` +
      `${escapeXml(spec.yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length];
    const dash = s.dashed ? ` stroke-dasharray="6 4"` : "";
    out.push(`<g class="series" data-name="${escapeXml(s.name)}">`);
    if (s.points.length > 0) {
      const pts = s.points.map(([x, y]) => `${fmt(X(x))},${fmt(Y(y))}`).join(" ");
      out.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${dash} points="${pts}"/>`);
    }
    if (s.markers ?? !s.dashed) {
      for (const [x, y] of s.points) out.push(`<circle cx="${fmt(X(x))}" cy="${fmt(Y(y))}" r="3" fill="${color}"/>`);
    }
    out.push(`</g>`);
    const ly = T + 10 + i * 18;
    out.push(
      `<line x1="${R + 15}" y1="${ly}" x2="${R + 35}" y2="${ly}" stroke="${color}" stroke-width="2"${dash}/>`,
      `<text x="${R + 40}" y="${ly + 4}">${escapeXml(s.name)}</text>`,
    );
  });
  out.push(`</svg>`, "");
  return out.join("\n");
}
