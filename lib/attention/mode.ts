/**
 * The attention-mode interface: dense attention, SparQ and the baselines (H2O, StreamingLLM,
 * exact top-k) all implement it, so the forward pass has one call site and `profile`/`compare`
 * can count the bytes each mode reads.
 * @module
 */

/** Bytes an attention mode read from the KV cache (and its own index structures). */
export interface AttentionBytes {
  /** Bytes of K read (row-major and feature-major copies together). */
  k: number;
  /** Bytes of V read (including the running mean). */
  v: number;
  /** Bytes of any other per-position data (scores of H2O, indices). */
  index: number;
}

/**
 * One attention implementation bound to a model's KV cache. Pointers are byte offsets into the
 * memory of the shard that holds `layer`. K/V of the positions being processed have already been
 * appended to the cache when these are called.
 */
export interface AttentionMode {
  /** Spec string of this mode, e.g. `dense` or `sparq:r=16,k=512,window=128`. */
  readonly name: string;
  /**
   * Causal attention for `nTok` queries at positions `pos0 .. pos0+nTok-1` (prompt processing;
   * always dense). `q`: `[nTok][nHead][headDim]` f32 after RoPE; `out`: same shape.
   */
  prefill(layer: number, pos0: number, nTok: number, q: number, out: number): void;
  /** One decode step for the token at `pos`: `q` `[nHead][headDim]` → `out` `[nHead][headDim]`. */
  decode(layer: number, pos: number, q: number, out: number): void;
  /** Running totals since creation or the last `resetCounters()`. */
  readonly bytes: AttentionBytes;
  resetCounters(): void;
  /** Called when the cache is cleared (new sequence). */
  reset(): void;
}
