/**
 * Exact top-k oracle: each decode step scores every position with the true q·k/√d, keeps the current token plus
 * the k best (GQA: by the sum over the group's heads of the exact softmax probabilities, as SparQ sums its
 * approximate ones), and attends exactly over them — no window, no reallocation. It is SparQ with r = d (then
 * τ = √d and the approximate scores are the exact ones), run by the same kernel, so at equal k it is the upper
 * bound for SparQ's selection. It reads all of K for the scores, which its bytes count (S·d per KV head, plus
 * the V rows; the selected K rows are not counted again, their scores being known): an oracle, not a saving.
 * Prefill is dense.
 * @module
 */
import type { KvCache } from "../kv_cache.ts";
import type { ModelConfig } from "../model_config.ts";
import type { AttentionMode } from "./mode.ts";
import { SparqAttention, type SparqShard } from "./sparq.ts";
import { type AttentionSpec, formatAttentionSpec, resolveParams } from "./spec.ts";

/** Options of {@link createTopkAttention}. */
export interface TopkAttentionOptions {
  spec: Extract<AttentionSpec, { kind: "topk" }>;
  config: ModelConfig;
  /** The cache, created with `KvCache.requirements(spec)` (the scores are read from its Kt copy). */
  cache: KvCache;
  shardOf: (layer: number) => SparqShard;
  dense: AttentionMode;
}

/** The exact top-k oracle mode; see the module comment. */
export function createTopkAttention(opts: TopkAttentionOptions): AttentionMode {
  const { spec, config } = opts;
  const d = config.headDim;
  return new SparqAttention({
    spec: { kind: "sparq", reallocate: false, keepCurrent: true },
    config,
    cache: opts.cache,
    shardOf: opts.shardOf,
    dense: opts.dense,
    name: formatAttentionSpec(spec),
    params: (S) => ({ r: d, k: resolveParams(spec, d, S).k, window: 0 }),
    exactScores: true,
  });
}
