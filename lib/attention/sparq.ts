/**
 * SparQ Attention as an attention mode (sparq.md §2): prefill is dense (delegated to the dense mode), and each
 * decode step runs the `sparq_decode` kernel (asm/sparq.ts) over every KV group of the layer — top-r components
 * of |q| (shared by a GQA group), approximate scores from r rows of the feature-major K copy, top-k positions plus
 * the local window, exact attention on those rows, and the α·y + (1−α)·v̄ reallocation. While the context is so
 * short that every position would be kept, decode is dense too.
 * @module
 */
import { SparqError } from "../errors.ts";
import type { KvCache } from "../kv_cache.ts";
import type { ModelConfig } from "../model_config.ts";
import type { AttentionBytes, AttentionMode } from "./mode.ts";
import { type AttentionSpec, formatAttentionSpec, sparqParams } from "./spec.ts";

/** What the SparQ mode needs of a runtime shard (a `Shard` of lib/wasm_runtime.ts satisfies it). */
export interface SparqShard {
  /** Allocates `bytes` (aligned) in the shard's memory; returns the byte pointer. */
  alloc(bytes: number, align?: number): number;
  /** Runs a wasm kernel on all threads with `(…args, ith, nth)`. */
  run(kernel: string, args: number[]): void;
}

/** A parsed `sparq` spec. */
export type SparqSpec = Extract<AttentionSpec, { kind: "sparq" }>;

/** Options of {@link SparqAttention}. */
export interface SparqAttentionOptions {
  spec: SparqSpec;
  config: ModelConfig;
  /** The cache, created with `transposedK` (and `vSum` when reallocating). */
  cache: KvCache;
  shardOf: (layer: number) => SparqShard;
  /** Dense attention on the same cache: prefill, and decode while the context is short. */
  dense: AttentionMode;
  /** Sizes at context length S (default: `sparqParams(spec, headDim, S)`); the top-k oracle passes r = d. */
  params?: (S: number) => { r: number; k: number; window: number };
  /** Mode name (default: the spec's canonical string). */
  name?: string;
  /**
   * The approximate scores are exact (r = d, the top-k oracle): the selected K rows are not counted as transfer,
   * since an implementation would reuse the scores it already has (the kernel re-reads them only for simplicity).
   */
  exactScores?: boolean;
}

/** Bytes of kernel scratch one KV group needs; mirrors `sparq_scratch_bytes` in asm/sparq.ts. */
export function sparqGroupScratchBytes(nCtx: number, G: number, d: number): number {
  const pad4 = (n: number) => (n + 3) & ~3;
  const words = 2 * G * pad4(nCtx) + 3 * pad4(nCtx) + 2048 + 4 * pad4(d) + 2 * pad4(G);
  return Math.ceil((words * 4) / 64) * 64;
}

/** Bytes of scratch per shard the SparQ kernel needs (one region per KV group, shared by all layers). */
export function sparqScratchBytes(config: Pick<ModelConfig, "nHead" | "nHeadKv" | "headDim">, nCtx: number): number {
  const G = config.nHead / config.nHeadKv;
  return config.nHeadKv * sparqGroupScratchBytes(nCtx, G, config.headDim) + 64;
}

/** SparQ decode over the KV cache; see the module comment. */
export class SparqAttention implements AttentionMode {
  readonly name: string;
  readonly #spec: SparqSpec;
  readonly #cfg: ModelConfig;
  readonly #cache: KvCache;
  readonly #shardOf: (layer: number) => SparqShard;
  readonly #dense: AttentionMode;
  readonly #params: (S: number) => { r: number; k: number; window: number };
  readonly #exactScores: boolean;
  readonly #scratch = new Map<SparqShard, number>();
  readonly #stride: number;
  #bytes: AttentionBytes = { k: 0, v: 0, index: 0 };

  constructor(opts: SparqAttentionOptions) {
    const { spec, config: c, cache } = opts;
    if (!cache.transposedK || (spec.reallocate && !cache.vSum)) {
      throw new Error("SparqAttention needs a KvCache created with KvCache.requirements(spec)");
    }
    if (c.nHead % c.nHeadKv !== 0) {
      throw new SparqError(`${c.name}: ${c.nHead} query heads do not split into ${c.nHeadKv} KV groups`);
    }
    this.name = opts.name ?? formatAttentionSpec(spec);
    this.#params = opts.params ?? ((S) => sparqParams(spec, c.headDim, S));
    this.#exactScores = opts.exactScores ?? false;
    this.#spec = spec;
    this.#cfg = c;
    this.#cache = cache;
    this.#shardOf = opts.shardOf;
    this.#dense = opts.dense;
    this.#stride = sparqGroupScratchBytes(cache.nCtx, c.nHead / c.nHeadKv, c.headDim);
    for (let l = 0; l < c.nLayer; l++) {
      const s = opts.shardOf(l);
      if (!this.#scratch.has(s)) this.#scratch.set(s, s.alloc(c.nHeadKv * this.#stride, 64));
    }
  }

  prefill(layer: number, pos0: number, nTok: number, q: number, out: number): void {
    this.#dense.prefill(layer, pos0, nTok, q, out);
  }

  decode(layer: number, pos: number, q: number, out: number): void {
    const S = pos + 1;
    const c = this.#cfg;
    const d = c.headDim, dv = c.headDimV;
    const { r, k, window } = this.#params(S);
    const keep = this.#spec.keepCurrent ? 1 : 0;
    // Every position would be kept: dense attention is the same result.
    if (S <= k + keep) {
      this.#dense.decode(layer, pos, q, out);
      return;
    }
    const cache = this.#cache;
    const shard = this.#shardOf(layer);
    const realloc = this.#spec.reallocate;
    shard.run("sparq_decode" + cache.kernelSuffix, [
      q,
      out,
      cache.k(layer),
      cache.v(layer),
      cache.kt(layer),
      realloc ? cache.vsum(layer) : 0,
      cache.nCtx,
      S,
      c.nHead,
      c.nHeadKv,
      d,
      dv,
      r,
      k,
      window,
      realloc ? 1 : 0,
      keep,
      this.#scratch.get(shard)!,
      this.#stride,
    ]);
    // Per KV head: r rows of Kt over S positions, the selected rows of K and V (cache elements), and v̄ (f32)
    // when reallocating.
    const rows = Math.min(k + keep, S);
    const eb = cache.elemBytes;
    this.#bytes.k += c.nHeadKv * (r * S + (this.#exactScores ? 0 : rows * d)) * eb;
    this.#bytes.v += c.nHeadKv * (rows * dv * eb + (realloc ? dv * 4 : 0));
  }

  get bytes(): AttentionBytes {
    const d = this.#dense.bytes;
    return { k: this.#bytes.k + d.k, v: this.#bytes.v + d.v, index: this.#bytes.index + d.index };
  }

  resetCounters(): void {
    this.#bytes = { k: 0, v: 0, index: 0 };
    this.#dense.resetCounters();
  }

  reset(): void {
    this.#dense.reset();
  }
}
