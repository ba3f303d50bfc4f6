/**
 * StreamingLLM / LM-Infinite baseline: each decode step attends to the first `sinks` positions ("attention
 * sinks") and the `window` newest ones (the current token included), nothing else; prefill is dense. Fixed cost,
 * no look at the content. Our cache keeps every position, so this is the attention pattern of StreamingLLM, not
 * its memory saving; bytes count what the pattern reads (K and V of sinks + window per KV head).
 * @module
 */
import type { KvCache } from "../kv_cache.ts";
import type { ModelConfig } from "../model_config.ts";
import type { AttentionBytes, AttentionMode } from "./mode.ts";
import { RowsKernel, type RowsShard } from "./rows.ts";
import { type AttentionSpec, formatAttentionSpec, resolveParams, usesDense } from "./spec.ts";

/** Options of {@link StreamingAttention}. */
export interface StreamingAttentionOptions {
  spec: Extract<AttentionSpec, { kind: "streaming" }>;
  config: ModelConfig;
  cache: KvCache;
  shardOf: (layer: number) => RowsShard;
  /** Dense attention on the same cache: prefill, and decode while the context fits sinks + window. */
  dense: AttentionMode;
}

/** Attention sinks + sliding window; see the module comment. */
export class StreamingAttention implements AttentionMode {
  readonly name: string;
  readonly #o: StreamingAttentionOptions;
  readonly #rows: RowsKernel;
  #bytes: AttentionBytes = { k: 0, v: 0, index: 0 };

  constructor(opts: StreamingAttentionOptions) {
    this.#o = opts;
    this.name = formatAttentionSpec(opts.spec);
    this.#rows = new RowsKernel(opts.config, opts.cache, opts.shardOf);
  }

  prefill(layer: number, pos0: number, nTok: number, q: number, out: number): void {
    this.#o.dense.prefill(layer, pos0, nTok, q, out);
  }

  decode(layer: number, pos: number, q: number, out: number): void {
    const { spec, config: c } = this.#o;
    const S = pos + 1;
    if (usesDense(spec, c.headDim, S)) return this.#o.dense.decode(layer, pos, q, out);
    const { sinks, window } = resolveParams(spec, c.headDim, S);
    const counts: number[] = [];
    for (let g = 0; g < c.nHeadKv; g++) {
      const p = this.#rows.positions(layer, g);
      let n = 0;
      for (let t = 0; t < sinks; t++) p[n++] = t;
      for (let t = S - window; t < S; t++) p[n++] = t;
      counts.push(n);
    }
    this.#rows.run(layer, q, out, counts);
    const n = counts[0];
    const eb = this.#o.cache.elemBytes;
    this.#bytes.k += c.nHeadKv * n * c.headDim * eb;
    this.#bytes.v += c.nHeadKv * n * c.headDimV * eb;
  }

  get bytes(): AttentionBytes {
    const d = this.#o.dense.bytes;
    return { k: this.#bytes.k + d.k, v: this.#bytes.v + d.v, index: this.#bytes.index + d.index };
  }

  resetCounters(): void {
    this.#bytes = { k: 0, v: 0, index: 0 };
    this.#o.dense.resetCounters();
  }

  reset(): void {
    this.#o.dense.reset();
  }
}
