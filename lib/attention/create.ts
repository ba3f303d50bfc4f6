/**
 * The attention-mode factory: one place that turns a parsed `--attention` spec into the mode the forward pass
 * calls, and tells the loader how much scratch memory per shard that mode needs.
 * @module
 */
import type { KvCache } from "../kv_cache.ts";
import type { ModelConfig } from "../model_config.ts";
import { type AttentionShard, DenseAttention } from "./dense.ts";
import { H2oAttention } from "./h2o.ts";
import type { AttentionMode } from "./mode.ts";
import { rowsScratchBytes, type RowsShard } from "./rows.ts";
import { SparqAttention, sparqScratchBytes } from "./sparq.ts";
import type { AttentionSpec } from "./spec.ts";
import { StreamingAttention } from "./streaming.ts";
import { createTopkAttention } from "./topk.ts";

/** What every mode needs: the model, its cache (created with `KvCache.requirements(spec)`), and the shards. */
export interface AttentionContext {
  config: ModelConfig;
  cache: KvCache;
  /** Shard of each layer (a `Shard` of lib/wasm_runtime.ts). */
  shardOf: (layer: number) => AttentionShard & RowsShard;
  /** Threads the shards run kernels on. */
  threads: number;
}

/** Creates the attention mode of `spec` over `ctx.cache`. */
export function createAttention(spec: AttentionSpec, ctx: AttentionContext): AttentionMode {
  const { config, cache, shardOf } = ctx;
  if (spec.kind === "h2o") return new H2oAttention({ spec, config, cache, shardOf });
  const dense = new DenseAttention(ctx);
  switch (spec.kind) {
    case "dense":
      return dense;
    case "sparq":
      return new SparqAttention({ spec, config, cache, shardOf, dense });
    case "streaming":
      return new StreamingAttention({ spec, config, cache, shardOf, dense });
    case "topk":
      return createTopkAttention({ spec, config, cache, shardOf, dense });
  }
}

/** Bytes of scratch per shard that the mode of `spec` allocates (for the loader's memory plan). */
export function attentionScratchBytes(spec: AttentionSpec, config: ModelConfig, nCtx: number, threads: number): number {
  const dense = DenseAttention.scratchBytes(config, nCtx, threads);
  switch (spec.kind) {
    case "dense":
      return dense;
    case "sparq":
    case "topk":
      return dense + sparqScratchBytes(config, nCtx);
    case "streaming":
      return dense + rowsScratchBytes(config, nCtx);
    case "h2o":
      return rowsScratchBytes(config, nCtx);
  }
}
