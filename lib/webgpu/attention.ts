/**
 * Attention on the GPU: the KV cache of every layer (K and V row-major `[nKv][ctx][d]`, and for
 * SparQ the feature-major copy Kt `[nKv][d][ctx]` and the running V sum `[nKv][d]`), scratch
 * buffers, and the ops of dense prefill/decode and SparQ decode (kernels in shaders/attention.ts).
 * Prefill is always dense and causal; SparQ runs on single-token steps, also when its budget covers
 * every position (then it equals dense up to rounding, which the tests use).
 * @module
 */
import { SparqError } from "../errors.ts";
import { type AttentionSpec, sparqParams } from "../attention/spec.ts";
import type { AttentionBytes } from "../attention/mode.ts";
import type { Kernels, Op, StepValues } from "./kernels.ts";
import {
  ATTN_BLOCK,
  combineWgsl,
  FLASH_BQ,
  flashPrefillBytes,
  flashPrefillWgsl,
  MAX_CHUNKS,
  partialWgsl,
} from "./shaders/attention.ts";
import {
  APPROX_PER_THREAD,
  APPROX_WG,
  approxBlocks,
  approxWgsl,
  type SelectTune,
  selectWgsl,
} from "./shaders/sparq.ts";
import { fillWgsl, vsumWgsl } from "./shaders/elementwise.ts";
import { cacheBufferBytes, type CacheElem, cacheElemBytes } from "./shaders/kv_cache.ts";
import { tuningEnv } from "../env.ts";

/**
 * Fewest positions per chunk of the partial kernel from the tuning variable `name` (SPARQ_GPU_SPARQ_CHUNK for
 * SparQ decode, SPARQ_GPU_DENSE_CHUNK for dense steps), a multiple of ATTN_BLOCK; read at each model load.
 */
function minChunkEnv(name: string): number {
  const v = Number(tuningEnv(name) ?? ATTN_BLOCK);
  return Math.max(ATTN_BLOCK, Math.ceil(v / ATTN_BLOCK) * ATTN_BLOCK);
}

/** Threads of the SparQ select workgroup (SPARQ_GPU_SELECT_WG, 256…1024; 512 was a little faster than 1024 on an H200). */
const SPARQ_SELECT_WG = (() => {
  const v = Number(tuningEnv("SPARQ_GPU_SELECT_WG") ?? 512);
  return Math.min(1024, Math.max(256, 2 ** Math.round(Math.log2(v))));
})();

/**
 * Default of {@link SparqKernelOptions.mergedMax}: on an H200 (7B shape, run 5) the merged kernel was
 * the faster at S = 512 and the slower at 8192 (one streaming workgroup per head), where the select
 * in the last approx workgroup was best.
 */
const MERGED_MAX = 2048;
/** Positions per approx thread when the last approx workgroup selects (8 was faster than 4 on an H200). */
const SIA_PER_THREAD = 8;
/**
 * Threads of the approx workgroup when its last workgroup selects (the select's threads too): 512 (with
 * 8 positions each, 4 workgroups per KV head at S = 8192) was faster than 256 on an H200 (run 8).
 */
const SIA_APPROX_WG = 512;

/** Options of the SparQ kernels (tuning and A/B comparisons; the defaults are the fastest measured). */
export interface SparqKernelOptions {
  /**
   * Merge the chunks in the last partial workgroup of each head instead of a combine dispatch (default where
   * {@link lastWorkgroupMergesValidated}; SPARQ_GPU_FUSE=0/1 forces it).
   */
  fuseCombine?: boolean;
  /** The same for dense decode steps (default: as `fuseCombine`; SPARQ_GPU_DENSE_FUSE=0/1 forces it). */
  fuseDenseCombine?: boolean;
  /** Dense attention issues a block's K and V loads together (default true; SPARQ_GPU_DENSE_PREFETCH=0: K, then V). */
  densePrefetch?: boolean;
  /**
   * Prompt batches through the query-tiled kernel (`flashPrefillWgsl`) where it fits the workgroup
   * memory; default on hardware adapters (llvmpipe takes tens of seconds to compile its zero-init
   * of ~27 KiB of workgroup memory); SPARQ_GPU_FLASH=0/1 forces it.
   */
  flash?: boolean;
  /** First select pass over linear score bins (SPARQ_GPU_SELECT=radix: radix select only). */
  bins?: boolean;
  /** Threads of the select workgroup. */
  selectWg?: number;
  /** Positions per thread of the approx kernel (SPARQ_GPU_APPROX_P). */
  approxPerThread?: number;
  /**
   * Longest context (S) at which the select workgroup of each KV head computes ŝ itself instead of
   * an approx dispatch (one dispatch fewer; G = 1 only; SPARQ_GPU_MERGED_MAX; 0: never).
   */
  mergedMax?: number;
  /**
   * The last approx workgroup of each KV head runs the select (one dispatch fewer, approx still
   * spread over many workgroups; with 256 select threads; default where {@link lastWorkgroupMergesValidated};
   * SPARQ_GPU_SELECT_IN_APPROX=0/1 forces it).
   */
  selectInApprox?: boolean;
  /**
   * Select tuning: threads of the approx workgroup (SPARQ_GPU_APPROX_WG; default 512 with the select in it,
   * else 256), one reservation per thread in the positions list (default; SPARQ_GPU_SELECT_RESERVE=0: one
   * atomic add per position), softmax statistics in one fold (default; SPARQ_GPU_MERGE_FOLD=0: two).
   */
  tune?: SelectTune;
}

/**
 * Whether the last-workgroup merges (fused combine, select in the last approx workgroup) are on by default.
 * They read other workgroups' storage writes after an atomic counter, which WGSL does not formally order across
 * workgroups: measured correct on NVIDIA (vendor 0x10de, an H200) and on software adapters (llvmpipe, in CI);
 * other GPUs get the split dispatches unless SPARQ_GPU_FUSE / SPARQ_GPU_SELECT_IN_APPROX say otherwise.
 */
export function lastWorkgroupMergesValidated(info: GPUAdapterInfo): boolean {
  const vendor = String(info.vendor ?? "").toLowerCase();
  return info.isFallbackAdapter || vendor === "nvidia" || vendor === "4318" || vendor === "0x10de";
}

function envOptions(): SparqKernelOptions {
  const fuse = tuningEnv("SPARQ_GPU_FUSE"), sia = tuningEnv("SPARQ_GPU_SELECT_IN_APPROX");
  const denseFuse = tuningEnv("SPARQ_GPU_DENSE_FUSE"), densePre = tuningEnv("SPARQ_GPU_DENSE_PREFETCH");
  const perThread = tuningEnv("SPARQ_GPU_APPROX_P"), mergedMax = tuningEnv("SPARQ_GPU_MERGED_MAX");
  const aw = tuningEnv("SPARQ_GPU_APPROX_WG"), reserve = tuningEnv("SPARQ_GPU_SELECT_RESERVE");
  const fold = tuningEnv("SPARQ_GPU_MERGE_FOLD"), flash = tuningEnv("SPARQ_GPU_FLASH");
  return {
    ...(flash ? { flash: flash !== "0" } : {}),
    ...(fuse ? { fuseCombine: fuse !== "0" } : {}),
    ...(denseFuse ? { fuseDenseCombine: denseFuse !== "0" } : {}),
    ...(densePre ? { densePrefetch: densePre !== "0" } : {}),
    bins: tuningEnv("SPARQ_GPU_SELECT") !== "radix",
    ...(perThread ? { approxPerThread: Number(perThread) } : {}),
    ...(mergedMax ? { mergedMax: Number(mergedMax) } : {}),
    ...(sia ? { selectInApprox: sia !== "0" } : {}),
    tune: {
      ...(aw ? { approxWg: Number(aw) } : {}),
      ...(reserve ? { reserve: reserve === "1" } : {}),
      ...(fold ? { oneFold: fold === "1" } : {}),
    },
  };
}

/** Sizes of the attention of one model. */
export interface GpuAttentionShape {
  nLayer: number;
  nHead: number;
  nKv: number;
  d: number;
  ctx: number;
  /** Most tokens per prefill batch. */
  batch: number;
  /** KV-cache element storage (default f32). */
  elem?: CacheElem;
}

/** KV-cache buffers of one layer. */
export interface LayerCache {
  k: GPUBuffer;
  v: GPUBuffer;
  kt?: GPUBuffer;
  vsum?: GPUBuffer;
}

/** Chunking of `n` positions for the partial kernel: enough chunks to fill a large GPU, at most MAX_CHUNKS. */
export function chunking(n: number, minChunk = ATTN_BLOCK): { chunk: number; nChunk: number } {
  const chunk = Math.max(minChunk, Math.ceil(n / MAX_CHUNKS / ATTN_BLOCK) * ATTN_BLOCK);
  return { chunk, nChunk: Math.ceil(n / chunk) };
}

/** The GPU KV cache plus attention ops for every layer. */
export class GpuAttention {
  readonly layers: LayerCache[] = [];
  /**
   * Ops that add V rows `[pos0, pos0 + nTok)` to the running V sums (SparQ; none for dense): after
   * `reset`, with pos0 = 0, they recompute the sums of a cache cut back to nTok positions.
   */
  readonly vsumOps: Op[] = [];
  /** The SparQ spec in use for decode steps (undefined: dense). */
  sparq?: Extract<AttentionSpec, { kind: "sparq" }>;
  /** The spec the cache was built for (SparQ: Kt and the V sums exist). */
  private readonly built: AttentionSpec;
  /** Bytes of K, V and index data read since the last reset of the counters. */
  bytes: AttentionBytes = { k: 0, v: 0, index: 0 };
  private prefillOps: Op[][] = [];
  private decodeOps: Op[][] = [];
  private sparqOps: Op[][] = [];
  private fillOps: Op[][] = [];
  /** SparQ: the positions selected by the last decode step, `[nKv][ctx]` (kk per KV head, unordered). */
  readonly selected?: GPUBuffer;
  /** Fewest positions per chunk of the partial kernel: SparQ decode, dense steps (tuning variables). */
  private minChunk = { sparq: minChunkEnv("SPARQ_GPU_SPARQ_CHUNK"), dense: minChunkEnv("SPARQ_GPU_DENSE_CHUNK") };

  /** `q` `[batch][nHead][d]` is read, `out` (same shape) written. */
  constructor(
    readonly k: Kernels,
    readonly shape: GpuAttentionShape,
    spec: AttentionSpec,
    readonly q: GPUBuffer,
    readonly out: GPUBuffer,
    options: SparqKernelOptions = {},
  ) {
    if (spec.kind !== "dense" && spec.kind !== "sparq") {
      throw new SparqError(`--attention ${spec.kind}: the webgpu backend implements dense and sparq only`);
    }
    if (spec.kind === "sparq") this.sparq = spec;
    this.built = spec;
    const { nLayer, nHead, nKv, d, ctx, batch, elem } = shape;
    if (d % 4 !== 0 || d > 256) throw new SparqError(`webgpu: head dimension ${d} unsupported (multiple of 4, ≤ 256)`);
    const maxBind = k.gpu.limits.maxStorageBufferBindingSize;
    const cacheBytes = cacheBufferBytes(elem, nKv * ctx * d);
    if (cacheBytes > maxBind) {
      throw new SparqError(
        `--ctx ${ctx}: a layer's K cache needs ${cacheBytes} bytes, more than this GPU binds (${maxBind})`,
      );
    }
    const a = { nHead, nKv, d, ctx, elem };
    const env = envOptions();
    const opt = { ...env, ...options, tune: { ...env.tune, ...options.tune } };
    const merges = lastWorkgroupMergesValidated(k.gpu.info);
    const fuse = opt.fuseCombine ?? merges;
    const denseFuse = opt.fuseDenseCombine ?? fuse;
    const sia = opt.selectInApprox ?? merges;
    const ap = Math.max(1, Math.round(opt.approxPerThread ?? (sia ? SIA_PER_THREAD : APPROX_PER_THREAD)));
    const tune: SelectTune = { reserve: true, oneFold: true, ...opt.tune };
    const aw = tune.approxWg = 2 ** Math.round(
      Math.log2(Math.min(1024, Math.max(256, tune.approxWg ?? (sia ? SIA_APPROX_WG : APPROX_WG)))),
    );
    const part = k.buffer(batch * nHead * MAX_CHUNKS * (d + 2) * 4, undefined, "attn partial");
    const flashBytes = flashPrefillBytes(d);
    const flash = (opt.flash ?? !k.gpu.info.isFallbackAdapter) && flashBytes !== undefined &&
      flashBytes <= k.gpu.limits.maxComputeWorkgroupStorageSize;
    const flashOp = (c: LayerCache) =>
      k.op("attn.flash", flashPrefillWgsl(a), { 0: q, 1: c.k, 2: c.v, 4: out }, 3, (s) => [
        Math.ceil(s.nTok / FLASH_BQ),
        nHead,
        1,
      ]);
    const sp = this.sparq
      ? {
        slog: k.buffer(nHead * ctx * 4, undefined, "sparq logits"),
        bstat: k.buffer(nHead * approxBlocks(ctx, ap, aw) * 8, undefined, "sparq block stats"),
        idx: k.buffer(nKv * ctx * 4, undefined, "sparq positions"),
        // α per head (f32), then the done-counters (u32, kept at 0 between steps) of the fused partial
        // kernel per head and of the approx kernel per KV head.
        aux: k.buffer((2 * nHead + nKv) * 4, undefined, "sparq alpha + counters"),
      }
      : undefined;
    this.selected = sp?.idx;
    // The fused dense decode's done-counters (after nHead unused α words, as the SparQ aux buffer).
    const denseAux = denseFuse ? k.buffer(2 * nHead * 4, undefined, "attn counters") : undefined;
    // One workgroup per KV head selects (ctx/selectWg positions per thread, in registers).
    const lim = k.gpu.limits;
    const selectWg = Math.min(
      opt.selectWg ?? SPARQ_SELECT_WG,
      lim.maxComputeInvocationsPerWorkgroup,
      lim.maxComputeWorkgroupSizeX,
    );
    const mergedMax = nHead === nKv && d <= selectWg ? (opt.mergedMax ?? MERGED_MAX) : 0;
    const merged = (s: Required<StepValues>) => s.pos0 + 1 <= mergedMax;
    const chunked = (s: Required<StepValues>): [number, number, number] => [s.nChunk, nHead, s.nTok];
    for (let l = 0; l < nLayer; l++) {
      const c: LayerCache = {
        k: k.buffer(cacheBytes, undefined, `K${l}`),
        v: k.buffer(cacheBytes, undefined, `V${l}`),
      };
      if (sp) {
        c.kt = k.buffer(cacheBytes, undefined, `Kt${l}`);
        c.vsum = k.buffer(nKv * d * 4, undefined, `vsum${l}`);
      }
      this.layers.push(c);
      const dense = [
        k.op(
          "attn.partial",
          partialWgsl(a, false, undefined, opt.densePrefetch ?? true),
          { 0: q, 1: c.k, 2: c.v, 4: part },
          3,
          chunked,
        ),
        k.op("attn.combine", combineWgsl(a, false), { 0: part, 1: out }, 2, (s) => [nHead, s.nTok, 1]),
      ];
      this.prefillOps.push(flash ? [flashOp(c)] : dense);
      // Dense decode: the last partial workgroup of each head merges the chunks (one dispatch less).
      const denseDecode = denseFuse
        ? [k.op(
          "attn.partial+combine",
          partialWgsl(a, false, { reallocate: false }, opt.densePrefetch ?? true),
          { 0: q, 1: c.k, 2: c.v, 4: part, 6: out, 7: denseAux! },
          3,
          chunked,
        )]
        : dense;
      const fill = [
        k.op("fill", fillWgsl(nKv, d, ctx, !!sp, elem), { 0: c.k, 1: c.v, ...(c.kt ? { 3: c.kt } : {}) }, 2, (s) => {
          const n = Math.ceil((nKv * s.fillLen * d) / 256);
          return [Math.min(n, 65535), Math.ceil(n / 65535), 1];
        }),
      ];
      if (sp) {
        const vs = k.op(
          "attn.vsum",
          vsumWgsl(nKv, d, ctx, elem),
          { 0: c.v, 1: c.vsum! },
          2,
          () => [Math.ceil(nKv * d / 64), 1, 1],
        );
        fill.push(vs);
        this.vsumOps.push(vs);
        const re = this.sparq!.reallocate;
        const ops = [
          k.op(
            sia ? "sparq.approx+last-select" : "sparq.approx",
            approxWgsl(a, ap, sia ? { reallocate: re, bins: opt.bins ?? true } : undefined, tune),
            { 0: q, 1: c.kt!, 3: sp.slog, 4: sp.bstat, ...(sia ? { 5: sp.idx, 6: sp.aux } : {}) },
            2,
            (s) => merged(s) ? [0, 0, 0] : [approxBlocks(s.pos0 + 1, ap, aw), nKv, 1],
          ),
        ];
        if (!sia) {
          ops.push(k.op(
            "sparq.select",
            selectWgsl(a, selectWg, re, opt.bins ?? true, ap, false, false, tune),
            { 0: sp.slog, 1: sp.bstat, 3: sp.idx, ...(re ? { 4: sp.aux } : {}) },
            2,
            (s) => merged(s) ? [0, 0, 0] : [nKv, 1, 1],
          ));
        }
        if (mergedMax > 0) {
          ops.unshift(k.op(
            "sparq.approx+select",
            selectWgsl(a, selectWg, re, opt.bins ?? true, ap, true, false, tune),
            { 0: q, 1: c.kt!, 3: sp.idx, ...(re ? { 4: sp.aux } : {}) },
            2,
            (s) => merged(s) ? [nKv, 1, 1] : [0, 0, 0],
          ));
        }
        if (fuse) {
          ops.push(k.op(
            "sparq.partial+combine",
            partialWgsl(a, true, { reallocate: re }),
            { 0: q, 1: c.k, 2: c.v, 4: part, 5: sp.idx, 6: out, 7: sp.aux, ...(re ? { 8: c.vsum! } : {}) },
            3,
            chunked,
          ));
        } else {
          ops.push(
            k.op("sparq.partial", partialWgsl(a, true), { 0: q, 1: c.k, 2: c.v, 4: part, 5: sp.idx }, 3, chunked),
            k.op(
              "sparq.combine",
              combineWgsl(a, re),
              re ? { 0: part, 1: out, 3: sp.aux, 6: c.vsum! } : { 0: part, 1: out },
              2,
              (s) => [nHead, s.nTok, 1],
            ),
          );
        }
        this.sparqOps.push(ops);
      }
      this.decodeOps.push(denseDecode);
      this.fillOps.push(fill);
    }
  }

  /**
   * Step-uniform fields for a batch of `nTok` tokens at `pos0` (decode when nTok = 1), and adds
   * this step's K/V/index reads to {@link bytes}.
   */
  stepFields(pos0: number, nTok: number): StepValues {
    const S = pos0 + nTok;
    const { nLayer, nKv, nHead, d } = this.shape;
    const eb = cacheElemBytes(this.shape.elem);
    if (nTok === 1 && this.sparq) {
      const p = sparqParams(this.sparq, d, S);
      const kk = Math.min(p.k + 1, S);
      const r = Math.min(p.r, d);
      this.bytes.k += nLayer * nKv * (S * r + kk * d) * eb;
      // The V sums are f32.
      this.bytes.v += nLayer * nKv * (kk * d * eb + (this.sparq.reallocate ? 2 * d * 4 : 0));
      // ŝ written and read back, the positions list written and read per head, ŝ at it for α.
      this.bytes.index += nLayer * (2 * nHead * S + nKv * kk + nHead * kk * (this.sparq.reallocate ? 2 : 1)) * 4;
      return { ...chunking(kk, this.minChunk.sparq), kk, r, localK: Math.min(p.window, kk - 1) };
    }
    // Dense: the K and V rows of every KV head up to the last position (once per batch).
    this.bytes.k += nLayer * nKv * S * d * eb;
    this.bytes.v += nLayer * nKv * S * d * eb;
    return chunking(S, this.minChunk.dense);
  }

  /** Ops of layer `layer` for a step of `nTok` tokens (after the K/V append of that step). */
  ops(layer: number, nTok: number): Op[] {
    if (nTok > 1) return this.prefillOps[layer];
    return this.sparq ? this.sparqOps[layer] : this.decodeOps[layer];
  }

  /**
   * Switches decode steps to `spec`: dense always works; SparQ only when the cache was built for
   * SparQ with the same reallocation setting (its kernels and Kt exist).
   */
  setSpec(spec: AttentionSpec): void {
    if (spec.kind === "dense") {
      this.sparq = undefined;
      return;
    }
    if (spec.kind !== "sparq" || this.built.kind !== "sparq" || spec.reallocate !== this.built.reallocate) {
      throw new SparqError(
        `--attention: cannot switch to ${spec.kind} on a model loaded for ${this.built.kind} (reload it)`,
      );
    }
    this.sparq = spec;
  }

  /** Ops filling positions `[0, fillLen)` of every layer with random K/V (and the V sum); see `fillWgsl`. */
  randomFillOps(): Op[] {
    return this.fillOps.flat();
  }

  /** Clears the running V sums (new sequence). K/V rows are overwritten as positions are reused. */
  reset(encoder: GPUCommandEncoder): void {
    for (const c of this.layers) if (c.vsum) encoder.clearBuffer(c.vsum);
  }
}
