/**
 * H2O (heavy-hitter oracle) baseline: a cache budget of k positions per KV group — the `window` newest plus the
 * "heavy hitters" with the largest attention weight accumulated over all queries so far (summed over the query
 * heads of a GQA group). Evicted positions never come back. Each decode step: evict down to k (lowest accumulated
 * weight outside the window, ties to the oldest), add the current token, attend exactly over the kept set, add
 * the step's weights to the accumulators.
 *
 * Prefill is full causal attention (as dense), but run query by query through the row-set kernel so that the
 * accumulators see every prompt query's weights — H2O needs the full scores, which costs the same reads as dense
 * prefill (counted as such). Decode bytes per KV head: K and V rows of the kept set, plus the accumulated scores of
 * the kept set read and written (index, 2·4 bytes per kept position); the bookkeeping itself runs in TypeScript.
 * @module
 */
import type { KvCache } from "../kv_cache.ts";
import type { ModelConfig } from "../model_config.ts";
import type { AttentionBytes, AttentionMode } from "./mode.ts";
import { RowsKernel, type RowsShard } from "./rows.ts";
import { type AttentionSpec, formatAttentionSpec, resolveParams } from "./spec.ts";

/** Options of {@link H2oAttention}. */
export interface H2oAttentionOptions {
  spec: Extract<AttentionSpec, { kind: "h2o" }>;
  config: ModelConfig;
  cache: KvCache;
  shardOf: (layer: number) => RowsShard;
}

interface GroupState {
  /** Kept positions, ascending. */
  kept: Int32Array;
  n: number;
  /** Accumulated attention weight per position. */
  acc: Float64Array;
}

/** Heavy hitters + recent window under a cache budget; see the module comment. */
export class H2oAttention implements AttentionMode {
  readonly name: string;
  readonly #o: H2oAttentionOptions;
  readonly #rows: RowsKernel;
  /** State per layer (allocated on first use) per KV group. */
  readonly #state: (GroupState[] | undefined)[] = [];
  #bytes: AttentionBytes = { k: 0, v: 0, index: 0 };

  constructor(opts: H2oAttentionOptions) {
    this.#o = opts;
    this.name = formatAttentionSpec(opts.spec);
    this.#rows = new RowsKernel(opts.config, opts.cache, opts.shardOf);
  }

  prefill(layer: number, pos0: number, nTok: number, q: number, out: number): void {
    const c = this.#o.config;
    const qBytes = c.nHead * c.headDim * 4, oBytes = c.nHead * c.headDimV * 4;
    for (let t = 0; t < nTok; t++) this.#step(layer, pos0 + t, q + t * qBytes, out + t * oBytes, Infinity);
  }

  decode(layer: number, pos: number, q: number, out: number): void {
    const { spec, config: c } = this.#o;
    const p = resolveParams(spec, c.headDim, pos + 1);
    this.#step(layer, pos, q, out, p.k, p.window);
  }

  /** Evicts down to `budget` (protecting the `window` newest), adds `pos`, attends, accumulates. */
  #step(layer: number, pos: number, q: number, out: number, budget: number, window = 0): void {
    const c = this.#o.config;
    const nKv = c.nHeadKv, G = c.nHead / nKv;
    const groups = this.#groups(layer);
    const counts: number[] = [];
    for (let g = 0; g < nKv; g++) {
      const s = groups[g];
      // A rewound sequence (pos at or below positions already seen) forgets those positions first.
      while (s.n > 0 && s.kept[s.n - 1] >= pos) s.n--;
      while (s.n > budget) evict(s, pos - window);
      s.acc[pos] = 0;
      s.kept[s.n++] = pos;
      this.#rows.positions(layer, g).set(s.kept.subarray(0, s.n));
      counts.push(s.n);
    }
    const w = this.#rows.run(layer, q, out, counts);
    let rows = 0;
    for (let g = 0; g < nKv; g++) {
      const s = groups[g];
      for (let h = 0; h < G; h++) {
        const base = (g * G + h) * this.#rows.stride;
        for (let j = 0; j < s.n; j++) s.acc[s.kept[j]] += w[base + j];
      }
      rows += s.n;
    }
    const eb = this.#o.cache.elemBytes;
    this.#bytes.k += rows * c.headDim * eb;
    this.#bytes.v += rows * c.headDimV * eb;
    if (budget !== Infinity) this.#bytes.index += rows * 2 * 4;
  }

  #groups(layer: number): GroupState[] {
    let st = this.#state[layer];
    if (!st) {
      const nCtx = this.#o.cache.nCtx;
      st = Array.from({ length: this.#o.config.nHeadKv }, () => ({
        kept: new Int32Array(nCtx),
        n: 0,
        acc: new Float64Array(nCtx),
      }));
      this.#state[layer] = st;
    }
    return st;
  }

  get bytes(): AttentionBytes {
    return { ...this.#bytes };
  }

  resetCounters(): void {
    this.#bytes = { k: 0, v: 0, index: 0 };
  }

  reset(): void {
    this.#state.length = 0;
  }
}

/** Removes the kept position below `protectFrom` with the smallest accumulated weight (ties: the oldest). */
function evict(s: GroupState, protectFrom: number): void {
  let best = -1;
  for (let j = 0; j < s.n && s.kept[j] < protectFrom; j++) {
    if (best < 0 || s.acc[s.kept[j]] < s.acc[s.kept[best]]) best = j;
  }
  // Everything is inside the window (budget smaller than the window): drop the oldest.
  if (best < 0) best = 0;
  s.kept.copyWithin(best, best + 1, s.n);
  s.n--;
}
