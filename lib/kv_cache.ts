/**
 * The KV cache: per layer, in that layer's shard, K row-major `[nKv][nCtx][headDim]`, V row-major
 * `[nKv][nCtx][headDimV]`, optionally a feature-major copy of K `Kt[nKv][headDim][nCtx]` (SparQ's
 * step 1 reads r whole rows of it) and the running sum of V per KV head (v̄ = vsum / length).
 *
 * Memory: dense needs K + V = `2·d` elements per position per KV head per layer; with the transposed
 * copy it is `3·d` (K twice + V), i.e. 1.5× dense. Transfers per decode step do not grow: each step
 * reads from one copy only (sparq.md §2.2).
 *
 * Elements of K, V and Kt are f32 or f16 (`--cache-type`; f16 halves the cache and the bytes each step reads).
 * An f16 cache stores each value rounded to nearest even (as llama.cpp's F16 cache; `Float16Array` does the
 * rounding), and the attention kernels widen the halves back to f32 as they load them (`*_f16` kernels). The running
 * V sum stays f32 (with an f64 shadow) and sums the f16-rounded values, i.e. exactly what V holds.
 * @module
 */
import { SparqError } from "./errors.ts";
import type { ModelConfig } from "./model_config.ts";
import type { AttentionSpec } from "./attention/spec.ts";

/**
 * The part of a runtime `Shard` the cache needs (a `Shard` from lib/wasm_runtime.ts satisfies it):
 * a bump allocator and f32 views of its memory.
 */
export interface CacheShard {
  /** Allocates `bytes` (aligned to `align`) and returns the byte pointer. */
  alloc(bytes: number, align?: number): number;
  /** Float32Array view of `n` elements at byte pointer `ptr`. */
  f32(ptr: number, n: number): Float32Array;
}

/** The element types of the cache (`--cache-type`). */
export const CACHE_TYPES = ["f32", "f16"] as const;
/** Element type of the cache. */
export type CacheType = typeof CACHE_TYPES[number];

/** Bytes per element of a cache of type `t`. */
export function cacheTypeBytes(t: CacheType): number {
  return t === "f16" ? 2 : 4;
}

/** Parses a `--cache-type` value (default f32). */
export function parseCacheType(v: string | undefined, flag = "--cache-type"): CacheType {
  const t = v ?? "f32";
  if (!(CACHE_TYPES as readonly string[]).includes(t)) {
    throw new SparqError(`${flag} ${t}: unknown KV cache type (types: ${CACHE_TYPES.join(", ")})`);
  }
  return t as CacheType;
}

/** Options of {@link KvCache}. */
export interface KvCacheOptions {
  /** Model hyperparameters (only the layer count and KV head shapes are used). */
  config: Pick<ModelConfig, "nLayer" | "nHeadKv" | "headDim" | "headDimV">;
  /** Maximum number of positions. */
  nCtx: number;
  /** Shard that holds the layer's weights; its cache lives there too. */
  shardOf: (layer: number) => CacheShard;
  /** Keep the feature-major copy of K (SparQ step 1). */
  transposedK: boolean;
  /** Keep the running sum of V per KV head (SparQ reallocation). */
  vSum: boolean;
  /** Element type of K, V and Kt (`--cache-type`, default f32). */
  cacheType?: CacheType;
}

interface LayerPtrs {
  k: number;
  v: number;
  kt: number;
  vsum: number;
}

/** Per-layer K/V storage for one sequence; see the module comment for the layouts. */
export class KvCache {
  /** Maximum number of positions. */
  readonly nCtx: number;
  /** Number of KV heads. */
  readonly nKv: number;
  /** Per-head dimension of K. */
  readonly headDim: number;
  /** Per-head dimension of V. */
  readonly headDimV: number;
  /** Number of layers. */
  readonly nLayer: number;
  /** Whether `kt(layer)` is kept. */
  readonly transposedK: boolean;
  /** Whether `vsum(layer)` is kept. */
  readonly vSum: boolean;
  /** Element type of K, V and Kt. */
  readonly cacheType: CacheType;
  /** Bytes per element of K, V and Kt (4 for f32, 2 for f16). */
  readonly elemBytes: number;
  /** Bytes of cache per position, all layers (K, V, and Kt when kept). */
  readonly bytesPerPosition: number;
  /** Bytes allocated for the whole cache, all layers. */
  readonly totalBytes: number;

  readonly #shardOf: (layer: number) => CacheShard;
  readonly #ptrs: LayerPtrs[] = [];
  /** f64 shadow of each layer's vsum: a long f32 running sum would drift; the shard copy is rounded from it. */
  readonly #vsum64: Float64Array[] = [];
  #length = 0;

  constructor(opts: KvCacheOptions) {
    const { config, nCtx } = opts;
    this.cacheType = parseCacheType(opts.cacheType);
    const eb = this.elemBytes = cacheTypeBytes(this.cacheType);
    if (!Number.isInteger(nCtx) || nCtx < 1) throw new SparqError(`--ctx ${nCtx}: must be a positive integer`);
    this.nCtx = nCtx;
    this.nKv = config.nHeadKv;
    this.headDim = config.headDim;
    this.headDimV = config.headDimV;
    this.nLayer = config.nLayer;
    this.transposedK = opts.transposedK;
    this.vSum = opts.vSum;
    this.#shardOf = opts.shardOf;
    const kElems = this.nKv * nCtx * this.headDim;
    const vElems = this.nKv * nCtx * this.headDimV;
    const perLayerPos = this.nKv * (this.headDim * (this.transposedK ? 2 : 1) + this.headDimV) * eb;
    this.bytesPerPosition = perLayerPos * this.nLayer;
    let total = 0;
    for (let l = 0; l < this.nLayer; l++) {
      const shard = this.#shardOf(l);
      const k = shard.alloc(kElems * eb);
      const v = shard.alloc(vElems * eb);
      const kt = this.transposedK ? shard.alloc(kElems * eb) : 0;
      const vsum = this.vSum ? shard.alloc(this.nKv * this.headDimV * 4) : 0;
      if (vsum) shard.f32(vsum, this.nKv * this.headDimV).fill(0);
      this.#ptrs.push({ k, v, kt, vsum });
      this.#vsum64.push(new Float64Array(this.vSum ? this.nKv * this.headDimV : 0));
      total += (kElems * (this.transposedK ? 2 : 1) + vElems) * eb + (this.vSum ? this.nKv * this.headDimV * 4 : 0);
    }
    this.totalBytes = total;
  }

  /**
   * What an attention mode needs stored besides K and V: SparQ reads Kt (step 1) and v̄ (reallocation); the
   * top-k oracle runs SparQ's kernel with r = d, so it reads Kt too.
   */
  static requirements(spec: AttentionSpec | AttentionSpec[]): { transposedK: boolean; vSum: boolean } {
    const specs = Array.isArray(spec) ? spec : [spec];
    return {
      transposedK: specs.some((s) => s.kind === "sparq" || s.kind === "topk"),
      vSum: specs.some((s) => s.kind === "sparq" && s.reallocate),
    };
  }

  /**
   * Bytes one layer's cache takes for `nCtx` positions under `spec` (or all of several specs) with elements of
   * `cacheType`, for the loader's shard plan.
   */
  static bytesPerLayer(
    config: Pick<ModelConfig, "nHeadKv" | "headDim" | "headDimV">,
    nCtx: number,
    spec: AttentionSpec | AttentionSpec[],
    cacheType: CacheType = "f32",
  ): number {
    const { transposedK, vSum } = KvCache.requirements(spec);
    const kv = config.nHeadKv;
    // Each allocation may be padded by up to 64 bytes of alignment; vsum is f32 whatever the cache type.
    return nCtx * kv * (config.headDim * (transposedK ? 2 : 1) + config.headDimV) * cacheTypeBytes(cacheType) +
      (vSum ? kv * config.headDimV * 4 : 0) + 4 * 64;
  }

  /** Suffix of the attention kernels for this cache's element type (`attn_dense_f32`, `sparq_decode_f16`, …). */
  get kernelSuffix(): "" | "_f16" {
    return this.cacheType === "f16" ? "_f16" : "";
  }

  /** Byte pointer of layer `layer`'s row-major K `[nKv][nCtx][headDim]` (elements of `cacheType`). */
  k(layer: number): number {
    return this.#ptrs[layer].k;
  }
  /** Byte pointer of layer `layer`'s row-major V `[nKv][nCtx][headDimV]` (elements of `cacheType`). */
  v(layer: number): number {
    return this.#ptrs[layer].v;
  }
  /** Byte pointer of layer `layer`'s feature-major K `[nKv][headDim][nCtx]` (elements of `cacheType`), 0 when not kept. */
  kt(layer: number): number {
    return this.#ptrs[layer].kt;
  }
  /** Byte pointer of layer `layer`'s running Σ V `[nKv][headDimV]` (f32), 0 when not kept. */
  vsum(layer: number): number {
    return this.#ptrs[layer].vsum;
  }

  /** Number of positions stored. Lowering it drops the later positions (and their share of vsum). */
  get length(): number {
    return this.#length;
  }
  set length(n: number) {
    if (!Number.isInteger(n) || n < 0 || n > this.nCtx) {
      throw new SparqError(`context of ${n} positions does not fit the KV cache (--ctx ${this.nCtx})`);
    }
    if (n < this.#length && this.vSum) {
      for (let l = 0; l < this.nLayer; l++) this.#addV(l, n, this.#length - n, -1);
    }
    this.#length = n;
  }

  /**
   * Stores K and V of `nTok` new positions starting at `pos0` for `layer`. `kSrc`: `[nTok][nKv·headDim]`,
   * `vSrc`: `[nTok][nKv·headDimV]` f32 (K after RoPE), byte pointers in the layer's shard. Positions
   * below `length` are overwritten (their old V leaves vsum first).
   */
  append(layer: number, pos0: number, nTok: number, kSrc: number, vSrc: number): void {
    if (pos0 > this.#length || pos0 + nTok > this.nCtx) {
      throw new SparqError(
        `positions ${pos0}..${pos0 + nTok - 1} do not fit the KV cache (${this.#length} stored, --ctx ${this.nCtx})`,
      );
    }
    const { nKv, headDim: d, headDimV: dv, nCtx } = this;
    const shard = this.#shardOf(layer);
    const p = this.#ptrs[layer];
    if (this.vSum && pos0 < this.#length) {
      this.#addV(layer, pos0, Math.min(nTok, this.#length - pos0), -1);
    }
    const ks = shard.f32(kSrc, nTok * nKv * d);
    const vs = shard.f32(vSrc, nTok * nKv * dv);
    // An f16 view rounds each stored value to nearest even.
    const K = this.#view(shard, p.k, nKv * nCtx * d);
    const V = this.#view(shard, p.v, nKv * nCtx * dv);
    for (let t = 0; t < nTok; t++) {
      for (let h = 0; h < nKv; h++) {
        K.set(ks.subarray((t * nKv + h) * d, (t * nKv + h + 1) * d), (h * nCtx + pos0 + t) * d);
        V.set(vs.subarray((t * nKv + h) * dv, (t * nKv + h + 1) * dv), (h * nCtx + pos0 + t) * dv);
      }
    }
    if (this.transposedK) {
      // Scatter into Kt one feature row at a time: the writes of a row are contiguous.
      const Kt = this.#view(shard, p.kt, nKv * d * nCtx);
      const stride = nKv * d;
      for (let h = 0; h < nKv; h++) {
        for (let i = 0; i < d; i++) {
          const dst = (h * d + i) * nCtx + pos0;
          let src = h * d + i;
          for (let t = 0; t < nTok; t++, src += stride) Kt[dst + t] = ks[src];
        }
      }
    }
    if (this.vSum) this.#addV(layer, pos0, nTok, 1);
  }

  /** Forgets every position (new sequence). */
  clear(): void {
    this.#length = 0;
    if (!this.vSum) return;
    for (let l = 0; l < this.nLayer; l++) {
      this.#vsum64[l].fill(0);
      this.#shardOf(l).f32(this.#ptrs[l].vsum, this.nKv * this.headDimV).fill(0);
    }
  }

  /** View of `n` cache elements at `ptr` (K, V or Kt): f32, or f16 read and written as numbers. */
  #view(shard: CacheShard, ptr: number, n: number): Float32Array | Float16Array {
    if (this.cacheType === "f32") return shard.f32(ptr, n);
    return new Float16Array(shard.f32(ptr, 0).buffer, ptr, n);
  }

  /** vsum[layer] += sign · Σ V rows `pos0 .. pos0+n-1` (f64 shadow), then refreshes the f32 copy. */
  #addV(layer: number, pos0: number, n: number, sign: number): void {
    const { nKv, headDimV: dv, nCtx } = this;
    const shard = this.#shardOf(layer);
    const p = this.#ptrs[layer];
    const V = this.#view(shard, p.v, nKv * nCtx * dv);
    const acc = this.#vsum64[layer];
    for (let h = 0; h < nKv; h++) {
      for (let t = pos0; t < pos0 + n; t++) {
        const row = (h * nCtx + t) * dv;
        for (let j = 0; j < dv; j++) acc[h * dv + j] += sign * V[row + j];
      }
    }
    shard.f32(p.vsum, nKv * dv).set(acc);
  }
}
