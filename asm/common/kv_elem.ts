// deno-fmt-ignore-file -- AssemblyScript (decorators, `<T>x` casts): deno fmt would drop `@inline`.
/**
 * Loads of KV-cache elements for the attention kernels, generic over the element type `T`: f32, or u16 for an f16
 * cache (f16 bits, widened to f32 exactly on load). `sizeof<T>()` is a compile-time constant, so each instance
 * compiles to plain f32 loads or to the conversion, with no branch.
 */
import { f16ToF32, f16sx4ToF32 } from "./simd";

/** Four cache elements at byte pointer `p` as f32x4. */
// @ts-ignore: decorator
@inline export function ld4<T>(p: usize): v128 {
  if (sizeof<T>() == 2) return f16sx4ToF32(v128.load16x4_s(p));
  return v128.load(p);
}

/** One cache element at byte pointer `p` as f32. */
// @ts-ignore: decorator
@inline export function ld1<T>(p: usize): f32 {
  if (sizeof<T>() == 2) return f16ToF32(<u32> load<u16>(p));
  return load<f32>(p);
}

/** dst[i] = f32 of the f16 src[i] for `n` values (n a multiple of 4), eight per step from one i16x8 load. */
export function cvtF16(dst: usize, src: usize, n: i32): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const h = v128.load(src + (<usize> i << 1));
    v128.store(dst + (<usize> i << 2), f16sx4ToF32(i32x4.extend_low_i16x8_s(h)));
    v128.store(dst + (<usize> i << 2), f16sx4ToF32(i32x4.extend_high_i16x8_s(h)), 16);
  }
  for (; i < n; i += 4) v128.store(dst + (<usize> i << 2), ld4<u16>(src + (<usize> i << 1)));
}
