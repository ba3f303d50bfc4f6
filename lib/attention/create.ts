/**
 * The attention-mode factory: one place that turns a parsed `--attention` spec into the mode the forward pass
 * calls, and tells the loader how much scratch memory per shard that mode needs.
 * @module
 */
import { SparqError } from "../errors.ts";
import type { KvCache } from "../kv_cache.ts";
import type { ModelConfig } from "../model_config.ts";
import { type AttentionShard, DenseAttention } from "./dense.ts";
import type { AttentionMode } from "./mode.ts";
import { SparqAttention, sparqScratchBytes } from "./sparq.ts";
import type { AttentionSpec } from "./spec.ts";

/** What every mode needs: the model, its cache (created with `KvCache.requirements(spec)`), and the shards. */
export interface AttentionContext {
  config: ModelConfig;
  cache: KvCache;
  shardOf: (layer: number) => AttentionShard;
  /** Threads the shards run kernels on. */
  threads: number;
}

/** Creates the attention mode of `spec` over `ctx.cache`. */
export function createAttention(spec: AttentionSpec, ctx: AttentionContext): AttentionMode {
  const dense = new DenseAttention(ctx);
  switch (spec.kind) {
    case "dense":
      return dense;
    case "sparq":
      return new SparqAttention({ spec, config: ctx.config, cache: ctx.cache, shardOf: ctx.shardOf, dense });
    default:
      throw new SparqError(`--attention ${spec.kind}: not implemented yet (available: dense, sparq)`);
  }
}

/** Bytes of scratch per shard that the mode of `spec` allocates (for the loader's memory plan). */
export function attentionScratchBytes(spec: AttentionSpec, config: ModelConfig, nCtx: number, threads: number): number {
  const dense = DenseAttention.scratchBytes(config, nCtx, threads);
  return spec.kind === "sparq" ? dense + sparqScratchBytes(config, nCtx) : dense;
}
