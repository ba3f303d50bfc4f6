/**
 * Shared plumbing of the baselines that attend to an explicit set of rows per KV group (StreamingLLM, H2O): the
 * per-shard buffers of the `attn_rows_decode` kernel (asm/sparq.ts) and one call of it.
 * @module
 */
import type { KvCache } from "../kv_cache.ts";
import type { ModelConfig } from "../model_config.ts";

/** What the row-set modes need of a runtime shard (a `Shard` of lib/wasm_runtime.ts satisfies it). */
export interface RowsShard {
  alloc(bytes: number, align?: number): number;
  run(kernel: string, args: number[]): void;
  f32(ptr: number, n: number): Float32Array;
  i32(ptr: number, n: number): Int32Array;
}

interface RowsBuffers {
  sel: number;
  cnt: number;
  wts: number;
  aux: number;
}

const pad4 = (n: number) => (n + 3) & ~3;

/** Bytes per shard of {@link RowsKernel}'s buffers. */
export function rowsScratchBytes(config: Pick<ModelConfig, "nHead" | "nHeadKv">, nCtx: number): number {
  const { nHead, nHeadKv: nKv } = config;
  const G = nHead / nKv;
  return (nKv * pad4(nCtx) + pad4(nKv) + nHead * pad4(nCtx) + nKv * (pad4(G) + 4)) * 4 + 4 * 64;
}

/** The `attn_rows_decode` kernel with its buffers, one set per distinct shard. */
export class RowsKernel {
  /** Elements between two groups' position lists (nCtx rounded up to 4). */
  readonly stride: number;
  readonly #cfg: ModelConfig;
  readonly #cache: KvCache;
  readonly #shardOf: (layer: number) => RowsShard;
  readonly #buf = new Map<RowsShard, RowsBuffers>();

  constructor(config: ModelConfig, cache: KvCache, shardOf: (layer: number) => RowsShard) {
    this.#cfg = config;
    this.#cache = cache;
    this.#shardOf = shardOf;
    this.stride = pad4(cache.nCtx);
    const nKv = config.nHeadKv, G = config.nHead / nKv;
    for (let l = 0; l < config.nLayer; l++) {
      const s = shardOf(l);
      if (this.#buf.has(s)) continue;
      this.#buf.set(s, {
        sel: s.alloc(nKv * this.stride * 4),
        cnt: s.alloc(pad4(nKv) * 4),
        wts: s.alloc(config.nHead * this.stride * 4),
        aux: s.alloc(nKv * (pad4(G) + 4) * 4),
      });
    }
  }

  /** Position list of KV group `g` in `layer`'s shard (write up to `stride` ascending positions). */
  positions(layer: number, g: number): Int32Array {
    const s = this.#shardOf(layer);
    return s.i32(this.#buf.get(s)!.sel + g * this.stride * 4, this.stride);
  }

  /**
   * Runs exact attention of query `q` over `counts[g]` positions of each group's list; returns the softmax weights
   * `[nKv][G][stride]` (a view, valid until the next call).
   */
  run(layer: number, q: number, out: number, counts: ArrayLike<number>): Float32Array {
    const c = this.#cfg, cache = this.#cache;
    const s = this.#shardOf(layer);
    const b = this.#buf.get(s)!;
    s.i32(b.cnt, c.nHeadKv).set(counts);
    s.run("attn_rows_decode" + cache.kernelSuffix, [
      q,
      out,
      cache.k(layer),
      cache.v(layer),
      b.sel,
      b.cnt,
      this.stride,
      cache.nCtx,
      c.nHead,
      c.nHeadKv,
      c.headDim,
      c.headDimV,
      b.wts,
      b.aux,
    ]);
    return s.f32(b.wts, c.nHead * this.stride);
  }
}
