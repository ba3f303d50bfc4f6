/**
 * Dense (exact) attention over the KV cache: the reference every approximation is compared with,
 * and the prefill path of every mode. The work is one kernel, `attn_dense_f32` (`attn_dense_f16` over an f16
 * cache; asm/attention_dense.ts):
 * per (query token, KV head) it reads each K and V row of the head once for all query heads of its
 * GQA group, walking positions in order so the cache streams at memory bandwidth.
 * @module
 */
import { SparqError } from "../errors.ts";
import type { KvCache } from "../kv_cache.ts";
import type { ModelConfig } from "../model_config.ts";
import type { AttentionBytes, AttentionMode } from "./mode.ts";

/** What dense attention needs of a runtime shard (a `Shard` of lib/wasm_runtime.ts satisfies it). */
export interface AttentionShard {
  /** Allocates `bytes` (aligned) in the shard's memory; returns the byte pointer. */
  alloc(bytes: number, align?: number): number;
  /** Runs a wasm kernel on all threads with `(…args, ith, nth)`. */
  run(kernel: string, args: number[]): void;
}

/** Options of {@link DenseAttention}. */
export interface DenseAttentionOptions {
  config: ModelConfig;
  cache: KvCache;
  /** Shard holding layer `l` (its cache and the q/out buffers passed in). */
  shardOf: (layer: number) => AttentionShard;
  /** Number of threads the shards run kernels on (each needs its own score scratch). */
  threads: number;
}

/** Exact causal softmax attention; see the module comment. */
export class DenseAttention implements AttentionMode {
  readonly name = "dense";
  readonly #cfg: ModelConfig;
  readonly #cache: KvCache;
  readonly #shardOf: (layer: number) => AttentionShard;
  /** Score scratch per shard (`threads × G × nCtx` f32), allocated once per distinct shard. */
  readonly #scores = new Map<AttentionShard, number>();
  readonly #scale: number;
  #bytes: AttentionBytes = { k: 0, v: 0, index: 0 };

  constructor(opts: DenseAttentionOptions) {
    const { config: c, cache } = opts;
    if (c.headDim !== c.headDimV || c.headDim % 4 !== 0) {
      throw new SparqError(
        `${c.name}: dense attention needs key and value head sizes equal and a multiple of 4 (got ${c.headDim}, ${c.headDimV})`,
      );
    }
    this.#cfg = c;
    this.#cache = cache;
    this.#shardOf = opts.shardOf;
    // llama.cpp scales q·k by 1/sqrt(head_dim) for every supported arch (gemma scales Q by the same
    // factor before the product, which is the same number).
    this.#scale = 1 / Math.sqrt(c.headDim);
    for (let l = 0; l < c.nLayer; l++) {
      const s = opts.shardOf(l);
      if (!this.#scores.has(s)) this.#scores.set(s, s.alloc(DenseAttention.scratchBytes(c, cache.nCtx, opts.threads)));
    }
  }

  /**
   * Bytes of scratch each shard needs for `threads` threads (for the loader's memory estimate): per thread, the
   * scores of G heads over nCtx positions, a conversion buffer of VBLOCK = 32 rows of d (the f16 kernel's) and
   * the weighted sum's 32 accumulators of d for each of the G heads.
   */
  static scratchBytes(config: ModelConfig, nCtx: number, threads: number): number {
    const G = config.nHead / config.nHeadKv;
    return threads * (G * nCtx + 32 * config.headDim + G * 32 * config.headDim) * 4 + 64;
  }

  prefill(layer: number, pos0: number, nTok: number, q: number, out: number): void {
    this.#run(layer, pos0, nTok, q, out);
  }

  decode(layer: number, pos: number, q: number, out: number): void {
    this.#run(layer, pos, 1, q, out);
  }

  get bytes(): AttentionBytes {
    return { ...this.#bytes };
  }

  resetCounters(): void {
    this.#bytes = { k: 0, v: 0, index: 0 };
  }

  reset(): void {}

  #run(layer: number, pos0: number, nTok: number, q: number, out: number): void {
    const c = this.#cfg;
    const cache = this.#cache;
    const shard = this.#shardOf(layer);
    shard.run(cache.cacheType === "f16" ? "attn_dense_f16" : "attn_dense_f32", [
      q,
      cache.k(layer),
      cache.v(layer),
      out,
      this.#scores.get(shard)!,
      nTok,
      pos0,
      c.nHead,
      c.nHeadKv,
      c.headDim,
      cache.nCtx,
      this.#scale,
    ]);
    // Token t reads positions 0..pos0+t of every KV head, K and V once each.
    const rows = nTok * (pos0 + 1) + (nTok * (nTok - 1)) / 2;
    const bytes = rows * c.nHeadKv * c.headDim * cache.elemBytes;
    this.#bytes.k += bytes;
    this.#bytes.v += bytes;
  }
}
