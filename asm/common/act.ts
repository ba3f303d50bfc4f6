// deno-fmt-ignore-file -- AssemblyScript (decorators, `<T>x` casts): deno fmt would drop `@inline`.
/**
 * Layouts of quantized activations (one per token, `tokenStride` bytes apart), written by `asm/quantize.ts` and
 * read by the integer dot products of `asm/matmul.ts`. Mirrored in `lib/kernels.ts` (`actBytes`).
 *
 * Q8 (32-wide blocks, for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 weights — ggml's Q8_0 and Q8_1):
 *   qs i8[cols] | d f32[nb] (f16-rounded, as ggml stores it) | s f32[nb] (f16(d·Σqs), Q8_1's `s`) | sum i32[nb] (Σqs)
 * Q8K (256-wide blocks, for K-quant weights — ggml's Q8_K):
 *   qs i8[cols] | d f32[cols/256] | bsums i32[cols/16] (Σqs of each 16)
 */

/** Bytes per token of Q8 activations (a multiple of 16). */
// @ts-ignore: decorator
@inline export function q8Stride(cols: i32): usize {
  return <usize>(cols + 12 * (cols >> 5) + 15) & ~(<usize>15);
}

/** Bytes per token of Q8K activations (a multiple of 16). */
// @ts-ignore: decorator
@inline export function q8kStride(cols: i32): usize {
  return <usize>(cols + 4 * (cols >> 8) + 4 * (cols >> 4) + 15) & ~(<usize>15);
}
