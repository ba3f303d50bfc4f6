/**
 * A one-line progress bar for long transfers and loads: bytes done / total, speed and ETA, redrawn
 * at most 10 times a second with `\r` on a terminal. When the stream is not a terminal (pipes, CI
 * logs, tests) it prints nothing at all, so scripted output stays clean.
 * @module
 */

/** Where the bar is drawn: a writable stream that may be a terminal (Deno.stderr satisfies it). */
export interface ProgressStream {
  writeSync(p: Uint8Array): number;
  isTerminal(): boolean;
}

/** Options of {@link ProgressBar}. */
export interface ProgressOptions {
  /** Text before the bar (e.g. the file name). */
  label: string;
  /** Total bytes, or undefined when unknown (then no percentage or ETA). */
  total?: number;
  /** Bytes already present before this run (a resumed download): counted as done, not in the speed. */
  start?: number;
  /** Output stream; default Deno.stderr. */
  stream?: ProgressStream;
  /** Force drawing on/off; default: whether `stream` is a terminal. */
  enabled?: boolean;
  /** Clock in ms (tests); default performance.now. */
  now?: () => number;
}

const UNITS = ["B", "kB", "MB", "GB", "TB"];

/** Formats a byte count with decimal units: `1.50 GB`, `532 kB`, `12 B`. */
export function formatBytes(n: number): string {
  let u = 0;
  while (n >= 1000 && u < UNITS.length - 1) {
    n /= 1000;
    u++;
  }
  return u === 0 ? `${n} B` : `${n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)} ${UNITS[u]}`;
}

/** Formats seconds as `45s`, `3m07s` or `2h05m`. */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return "?";
  s = Math.round(s);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** A progress bar; call `update(done)` as bytes arrive and `finish()` at the end. */
export class ProgressBar {
  readonly #label: string;
  readonly #total?: number;
  readonly #start: number;
  readonly #stream: ProgressStream;
  readonly #enabled: boolean;
  readonly #now: () => number;
  readonly #t0: number;
  #lastDraw = -Infinity;
  #done: number;
  #width = 0;

  constructor(opts: ProgressOptions) {
    this.#label = opts.label;
    this.#total = opts.total;
    this.#start = opts.start ?? 0;
    this.#done = this.#start;
    this.#stream = opts.stream ?? Deno.stderr;
    this.#enabled = opts.enabled ?? this.#stream.isTerminal();
    this.#now = opts.now ?? (() => performance.now());
    this.#t0 = this.#now();
  }

  /** Whether anything is drawn. */
  get enabled(): boolean {
    return this.#enabled;
  }

  /** Records `done` bytes in total so far; redraws when 100 ms have passed since the last draw. */
  update(done: number): void {
    this.#done = done;
    if (!this.#enabled) return;
    const t = this.#now();
    if (t - this.#lastDraw < 100) return;
    this.#lastDraw = t;
    this.#draw(this.line(t));
  }

  /** Draws the final state and ends the line. */
  finish(): void {
    if (!this.#enabled) return;
    this.#draw(this.line(this.#now()) + "\n");
  }

  /** The bar's text at time `t` (ms, same clock as `now`). */
  line(t: number): string {
    const elapsed = Math.max(t - this.#t0, 1e-3) / 1000;
    const speed = (this.#done - this.#start) / elapsed;
    const parts = [this.#label];
    if (this.#total !== undefined && this.#total > 0) {
      const frac = Math.min(this.#done / this.#total, 1);
      const cells = 24;
      const full = Math.round(frac * cells);
      parts.push(`[${"#".repeat(full)}${" ".repeat(cells - full)}]`, `${(frac * 100).toFixed(0).padStart(3)}%`);
      parts.push(`${formatBytes(this.#done)} / ${formatBytes(this.#total)}`);
    } else {
      parts.push(formatBytes(this.#done));
    }
    parts.push(`${formatBytes(speed)}/s`);
    if (this.#total !== undefined && speed > 0) {
      parts.push(`ETA ${formatDuration((this.#total - this.#done) / speed)}`);
    }
    return parts.join("  ");
  }

  #draw(text: string): void {
    const body = text.endsWith("\n") ? text.slice(0, -1) : text;
    // Pad over the previous, possibly longer, line instead of relying on terminal clear codes.
    const pad = Math.max(this.#width - body.length, 0);
    this.#width = body.length;
    const bytes = new TextEncoder().encode(`\r${body}${" ".repeat(pad)}${text.endsWith("\n") ? "\n" : ""}`);
    for (let off = 0; off < bytes.length;) off += this.#stream.writeSync(bytes.subarray(off));
  }
}
