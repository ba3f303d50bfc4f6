/**
 * Attention-mode specs: parsing `--attention` strings (`dense`, `sparq:ratio=1/8`, `h2o:k=256`, …),
 * resolving a spec to concrete sizes (r, k, window) at a given context length, and the transfer
 * model of sparq.md §2.3 (elements read/written per KV head per decode step).
 *
 * Resolution of a compression ratio 1/R (S = context length at the step, current token included):
 * - SparQ: r = round(d/R), k = max(128, round(S/(2R))), window l = floor(k/4) — each of the two reads then
 *   costs about 1/(2R) of dense, as in the paper's needle/long-context sweeps (k = S/(2R), min 128).
 * - H2O and StreamingLLM: a budget of k = max(128, round(S/R)) cached positions (they read K and V rows only).
 *   H2O keeps a recent window of k/4 (as in SparQ's research code); StreamingLLM keeps 4 sinks + a window.
 * - exact top-k (oracle): k = max(128, round(S/(2R))), the same number of rows SparQ selects, so it shows the best
 *   possible selection at SparQ's budget; it needs the exact scores (all of K), which its bytes count.
 * @module
 */
import { SparqError } from "../errors.ts";

/** A size given as a count of positions or as a fraction of the context (0 < f < 1). */
export type Size = { count: number } | { fraction: number };

/** Parsed `--attention` spec. Unset sizes are derived from `ratio` (see the module comment). */
export type AttentionSpec =
  | { kind: "dense" }
  | {
    kind: "sparq";
    ratio?: number;
    r?: number;
    k?: Size;
    window?: Size;
    reallocate: boolean;
    /**
     * Always select the current token on top of k (research code; default). false (`current=off`): the
     * llama.cpp fork's simplified selection, where the current token competes and min(k, S) positions are kept.
     */
    keepCurrent: boolean;
  }
  | { kind: "h2o"; ratio?: number; k?: Size; window?: Size }
  | { kind: "streaming"; ratio?: number; sinks: number; window?: Size }
  | { kind: "topk"; ratio?: number; k?: Size };

/** Attention mode kinds. */
export type AttentionKind = AttentionSpec["kind"];

/** Compression used when a sparse mode is given without any size. */
export const DEFAULT_RATIO = 1 / 8;
/** StreamingLLM attention sinks by default (the StreamingLLM paper's 4). */
export const DEFAULT_SINKS = 4;
/**
 * Fewest positions a ratio resolves to (the paper's needle/long-context sweeps use k = S/(2R) with a minimum of
 * 128). While the context is that short a sparse mode keeps everything, i.e. runs dense. Explicit sizes (`k=…`,
 * `window=…`) are taken as given.
 */
export const MIN_RATIO_K = 128;

const KEYS: Record<AttentionKind, string[]> = {
  dense: [],
  sparq: ["ratio", "r", "k", "window", "reallocate", "current"],
  h2o: ["ratio", "k", "window"],
  streaming: ["ratio", "sinks", "window"],
  topk: ["ratio", "k"],
};

/**
 * Parses `dense`, `sparq[:ratio=1/8|r=16,k=256|k=0.125,window=…,reallocate=on|off,current=on|off]`, `h2o:ratio=…|k=…[,window=…]`,
 * `streaming:ratio=…|sinks=4,window=…`, `topk:ratio=…|k=…`. Throws SparqError naming the bad part.
 */
export function parseAttentionSpec(s: string): AttentionSpec {
  const colon = s.indexOf(":");
  const kind = (colon < 0 ? s : s.slice(0, colon)).trim();
  if (!(kind in KEYS)) {
    throw new SparqError(`--attention ${s}: unknown mode "${kind}" (known: ${Object.keys(KEYS).join(", ")})`);
  }
  const k = kind as AttentionKind;
  const opts = new Map<string, string>();
  if (colon >= 0) {
    for (const part of s.slice(colon + 1).split(",")) {
      const eq = part.indexOf("=");
      const key = part.slice(0, eq).trim();
      if (eq < 0 || !KEYS[k].includes(key)) {
        throw new SparqError(
          `--attention ${s}: "${part}" is not an option of ${k} (options: ${KEYS[k].join(", ") || "none"})`,
        );
      }
      if (opts.has(key)) throw new SparqError(`--attention ${s}: "${key}" given twice`);
      opts.set(key, part.slice(eq + 1).trim());
    }
  }
  const onOff = (key: string) => {
    const v = opts.get(key) ?? "on";
    if (v !== "on" && v !== "off") throw bad(key, "must be on or off");
    return v === "on";
  };
  const bad = (key: string, why: string) => new SparqError(`--attention ${s}: ${key}=${opts.get(key)}: ${why}`);
  const ratio = () => {
    const v = opts.get("ratio");
    if (v === undefined) return undefined;
    const m = /^1\/(\d+(?:\.\d+)?)$/.exec(v);
    const x = m ? 1 / Number(m[1]) : Number(v);
    if (!(x > 0 && x <= 1) || v === "") throw bad("ratio", "must be a compression like 1/8 or 0.125");
    return x;
  };
  const int = (key: string, min: number) => {
    const v = opts.get(key);
    if (v === undefined) return undefined;
    const x = Number(v);
    if (v === "" || !Number.isInteger(x) || x < min) throw bad(key, `must be an integer ≥ ${min}`);
    return x;
  };
  const size = (key: string, min: number): Size | undefined => {
    const v = opts.get(key);
    if (v === undefined) return undefined;
    const x = Number(v);
    if (v !== "" && x > 0 && x < 1) return { fraction: x };
    if (v === "" || !Number.isInteger(x) || x < min) {
      throw bad(key, `must be a count ≥ ${min} or a fraction of the context in (0, 1)`);
    }
    return { count: x };
  };
  switch (k) {
    case "dense":
      return { kind: "dense" };
    case "sparq": {
      const spec = { kind: k, ratio: ratio(), r: int("r", 1), k: size("k", 1), window: size("window", 0) };
      return { ...spec, reallocate: onOff("reallocate"), keepCurrent: onOff("current") };
    }
    case "h2o":
      return { kind: k, ratio: ratio(), k: size("k", 1), window: size("window", 0) };
    case "streaming":
      return { kind: k, ratio: ratio(), sinks: int("sinks", 0) ?? DEFAULT_SINKS, window: size("window", 0) };
    case "topk":
      return { kind: k, ratio: ratio(), k: size("k", 1) };
  }
}

/** Canonical spec string (what `AttentionMode.name` reports); parses back to the same spec. */
export function formatAttentionSpec(spec: AttentionSpec): string {
  const parts: string[] = [];
  const fmtSize = (key: string, v?: Size) => {
    if (v) parts.push(`${key}=${"count" in v ? v.count : v.fraction}`);
  };
  if ("ratio" in spec && spec.ratio !== undefined) {
    const inv = 1 / spec.ratio;
    parts.push(`ratio=${Number.isInteger(Math.round(inv * 1e9) / 1e9) ? `1/${Math.round(inv)}` : spec.ratio}`);
  }
  switch (spec.kind) {
    case "sparq":
      if (spec.r !== undefined) parts.push(`r=${spec.r}`);
      fmtSize("k", spec.k);
      fmtSize("window", spec.window);
      if (!spec.reallocate) parts.push("reallocate=off");
      if (!spec.keepCurrent) parts.push("current=off");
      break;
    case "h2o":
      fmtSize("k", spec.k);
      fmtSize("window", spec.window);
      break;
    case "streaming":
      parts.push(`sinks=${spec.sinks}`);
      fmtSize("window", spec.window);
      break;
    case "topk":
      fmtSize("k", spec.k);
      break;
  }
  return parts.length ? `${spec.kind}:${parts.join(",")}` : spec.kind;
}

/** Flags of the CLI that describe a SparQ spec (`--sparq-ratio`, `--sparq-r`, …), as strings. */
export interface SparqFlags {
  ratio?: string;
  r?: string;
  k?: string;
  window?: string;
  reallocate?: string;
}

/**
 * Builds the spec of `--attention NAME` plus the `--sparq-*` flags (which only apply to sparq).
 * Errors name the flag.
 */
export function attentionSpecFromFlags(attention: string, flags: SparqFlags): AttentionSpec {
  const given = Object.entries(flags).filter(([, v]) => v !== undefined);
  if (given.length === 0) return parseAttentionSpec(attention);
  const spec = parseAttentionSpec(attention);
  if (spec.kind !== "sparq") {
    throw new SparqError(`--sparq-${given[0][0]} applies only to --attention sparq (got ${attention})`);
  }
  let merged: AttentionSpec = spec;
  for (const [key, v] of given) {
    try {
      const one = parseAttentionSpec(`sparq:${key}=${v}`) as Extract<AttentionSpec, { kind: "sparq" }>;
      merged = { ...merged, [key]: one[key as "r"] };
    } catch (e) {
      if (e instanceof SparqError) throw new SparqError(`--sparq-${key} ${v}: ${e.message.replace(/^.*: /, "")}`);
      throw e;
    }
  }
  return merged;
}

/** Concrete sizes of a sparse mode at one decode step. */
export interface ResolvedParams {
  /** SparQ: number of q components used for the approximate scores (≤ d). */
  r: number;
  /** Number of positions selected besides the current token (SparQ, topk), or the cache budget (h2o, streaming). */
  k: number;
  /** Newest positions always kept (besides the current token for SparQ). */
  window: number;
  /** StreamingLLM: initial positions always kept. */
  sinks: number;
}

function resolveSize(v: Size | undefined, S: number, dflt: number): number {
  if (!v) return dflt;
  return "count" in v ? v.count : Math.max(1, Math.round(v.fraction * S));
}

/**
 * Sizes of `spec` at context length `S` (current token included) for head dimension `headDim`;
 * see the module comment for how a ratio resolves. `r` is clamped to [1, d], `window` to ≤ k.
 */
export function resolveParams(spec: AttentionSpec, headDim: number, S: number): ResolvedParams {
  if (spec.kind === "dense") return { r: headDim, k: S, window: S, sinks: 0 };
  const R = 1 / (spec.ratio ?? DEFAULT_RATIO);
  const clampW = (w: number, k: number) => Math.min(Math.max(0, w), k);
  switch (spec.kind) {
    case "sparq": {
      const r = Math.min(headDim, Math.max(1, spec.r ?? Math.round(headDim / R)));
      const k = Math.max(1, resolveSize(spec.k, S, Math.max(MIN_RATIO_K, Math.round(S / (2 * R)))));
      return { r, k, window: clampW(resolveSize(spec.window, S, Math.floor(k / 4)), k), sinks: 0 };
    }
    case "h2o": {
      const k = Math.max(1, resolveSize(spec.k, S, Math.max(MIN_RATIO_K, Math.round(S / R))));
      return { r: headDim, k, window: clampW(resolveSize(spec.window, S, Math.floor(k / 4)), k), sinks: 0 };
    }
    case "streaming": {
      const window = spec.window
        ? resolveSize(spec.window, S, 0)
        : Math.max(MIN_RATIO_K, Math.round(S / R)) - spec.sinks;
      return { r: headDim, k: spec.sinks + window, window, sinks: spec.sinks };
    }
    case "topk": {
      const k = Math.max(1, resolveSize(spec.k, S, Math.max(MIN_RATIO_K, Math.round(S / (2 * R)))));
      return { r: headDim, k, window: 0, sinks: 0 };
    }
  }
}

/** SparQ's r, k and window at context length `S` (the brief's name for {@link resolveParams} on sparq). */
export function sparqParams(
  spec: Extract<AttentionSpec, { kind: "sparq" }>,
  headDim: number,
  S: number,
): { r: number; k: number; window: number } {
  const { r, k, window } = resolveParams(spec, headDim, S);
  return { r, k, window };
}

/** Whether a sparse mode falls back to dense at context length S (it would keep every position anyway). */
export function usesDense(spec: AttentionSpec, headDim: number, S: number): boolean {
  if (spec.kind === "dense") return true;
  const p = resolveParams(spec, headDim, S);
  // SparQ (by default) and topk keep k positions plus the current token; h2o/streaming keep a budget of k.
  const extra = spec.kind === "topk" || (spec.kind === "sparq" && spec.keepCurrent) ? 1 : 0;
  return S <= p.k + extra;
}

/**
 * Predicted elements moved per KV head per decode step (sparq.md §2.3), d = headDim (= headDimV):
 * - dense: 2·S·d (read K, V) + 2·d (write the new k, v);
 * - sparq: S·r (r rows of Kt) + 2·k·d (k rows of K and V) + 2·d (write k, v) + 2·d (read/write v̄, only
 *   with reallocation) — the current token's row is the one just written, so it is not counted;
 * - h2o: 2·k·d + 2·d + 2·k (read/write the accumulated scores of the kept positions);
 * - streaming: 2·k·d + 2·d;
 * - topk (oracle): S·d (all of K for the exact scores) + k·d (V rows) + 2·d — its measured bytes count the same
 *   (the kernel re-reads the selected K rows, but an implementation would reuse their scores).
 * Modes that fall back to dense ({@link usesDense}) cost dense.
 */
export function predictedTransfer(spec: AttentionSpec, headDim: number, S: number): number {
  const d = headDim;
  const dense = 2 * S * d + 2 * d;
  if (usesDense(spec, headDim, S)) return dense;
  const { r, k } = resolveParams(spec, headDim, S);
  switch (spec.kind) {
    case "sparq":
      return S * r + 2 * k * d + (spec.reallocate ? 4 : 2) * d;
    case "h2o":
      return 2 * k * d + 2 * d + 2 * k;
    case "streaming":
      return 2 * k * d + 2 * d;
    case "topk":
      return S * d + k * d + 2 * d;
    default:
      return dense;
  }
}
