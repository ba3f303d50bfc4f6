// deno-fmt-ignore-file -- AssemblyScript (decorators, `<T>x` casts): deno fmt would drop `@inline`.
/**
 * SIMD and number-format helpers shared by the kernels: horizontal sums in a fixed lane order, f16/bf16
 * conversions (ggml's rounding), and the 8-bit integer dot step that uses relaxed SIMD when the build has it.
 */

/** Sum of the four f32 lanes as (l0 + l2) + (l1 + l3). */
// @ts-ignore: decorator
@inline export function hsumF32(v: v128): f32 {
  const s = f32x4.add(v, i32x4.shuffle(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}

/**
 * Sum of the eight lanes of an AVX accumulator held as `lo` (lanes 0–3) and `hi` (4–7), in the order of ggml's
 * `hsum_float_8` and llamafile tinyBLAS's `hsum`: t = hi + lo, then (t0 + t2) + (t1 + t3).
 */
// @ts-ignore: decorator
@inline export function hsum8(lo: v128, hi: v128): f32 {
  const t = f32x4.add(hi, lo);
  return (f32x4.extract_lane(t, 0) + f32x4.extract_lane(t, 2)) + (f32x4.extract_lane(t, 1) + f32x4.extract_lane(t, 3));
}

/** a·b + c: one fused multiply-add in the relaxed-SIMD build (ggml's `_mm256_fmadd_ps`), mul + add otherwise. */
// @ts-ignore: decorator
@inline export function fmadd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** a·b + c for scalars: one fused multiply-add in the relaxed-SIMD build (as GCC contracts it), mul + add otherwise. */
// @ts-ignore: decorator
@inline export function fma32(a: f32, b: f32, c: f32): f32 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.extract_lane(f32x4.relaxed_madd(f32x4.splat(a), f32x4.splat(b), f32x4.splat(c)), 0);
  return a * b + c;
}

/** Sum of the four i32 lanes. */
// @ts-ignore: decorator
@inline export function hsumI32(v: v128): i32 {
  const s = i32x4.add(v, i32x4.shuffle(v, v, 2, 3, 0, 1));
  return i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1);
}

/** 2^112: rebias of an f16 exponent moved into f32 position (exact for normal and subnormal halves). */
const F16_REBIAS: f32 = 5.192296858534828e33;

/** f16 bits → f32. Exact for finite values (weights and scales never hold inf/NaN). */
// @ts-ignore: decorator
@inline export function f16ToF32(h: u32): f32 {
  return reinterpret<f32>(((h & 0x7fff) << 13) | ((h & 0x8000) << 16)) * F16_REBIAS;
}

/**
 * Four f16 values, sign-extended into the i32 lanes, → f32x4 (exact for finite halves; weights, scales and an f16
 * cache hold no NaN, and ±inf only where an f32 value was beyond the f16 range). Shifting the sign-extended lane
 * left by 13 puts the magnitude in f32 position with the sign still in bit 31; the mask clears bits 28–30; 2^112
 * moves the exponent to the f32 bias (exact for normal and subnormal halves).
 */
// @ts-ignore: decorator
@inline export function f16sx4ToF32(h: v128): v128 {
  return f32x4.mul(v128.and(i32x4.shl(h, 13), v128.load(F16_C)), v128.load(F16_C, 16));
}

/**
 * {@link f16sx4ToF32}'s mask and 2^112 (0x77800000), splatted, in memory: V8 rebuilds a `v128.const` at every use
 * inside a loop (several instructions), while a load is one.
 */
const F16_C = memory.data<u32>([
  0x8fffe000, 0x8fffe000, 0x8fffe000, 0x8fffe000, 0x77800000, 0x77800000, 0x77800000, 0x77800000,
]);

/** f32 → f16 bits, round to nearest even (as F16C's `vcvtps2ph` and ggml), inf/NaN kept. */
export function f32ToF16(f: f32): u32 {
  const x = reinterpret<u32>(f);
  const sign = (x >> 16) & 0x8000;
  const a = x & 0x7fffffff;
  if (a >= 0x7f800000) return sign | 0x7c00 | (a > 0x7f800000 ? 0x200 : 0);
  if (a >= 0x477ff000) return sign | 0x7c00; // rounds to >= 65520: overflow to inf
  if (a < 0x38800000) {
    // Subnormal half (or zero): add 0.5 so the f32 adder rounds the mantissa to nearest even for us.
    const r = reinterpret<f32>(a) + <f32>0.5;
    return sign | (reinterpret<u32>(r) - 0x3f000000);
  }
  const mant = a + 0xc8000fff + ((a >> 13) & 1); // rebias exponent (−112 << 23) and round to nearest even
  return sign | (mant >> 13);
}

/** f32 rounded to the nearest f16 value (round to nearest even). */
// @ts-ignore: decorator
@inline export function roundF16(f: f32): f32 {
  return f16ToF32(f32ToF16(f));
}

/** f32 rounded to the nearest bf16 value (round to nearest even; ggml's `GGML_FP32_TO_BF16`). */
// @ts-ignore: decorator
@inline export function roundBf16(f: f32): f32 {
  const u = reinterpret<u32>(f);
  if ((u & 0x7fffffff) > 0x7f800000) return reinterpret<f32>((u | 0x400000) & 0xffff0000);
  return reinterpret<f32>(((u + (0x7fff + ((u >> 16) & 1))) >> 16) << 16);
}

/** `acc + Σ a·b` over groups of four lanes, `a` and `b` signed 8-bit (no overflow: |a|,|b| ≤ 127). */
// @ts-ignore: decorator
@inline export function dotI8(acc: v128, a: v128, b: v128): v128 {
  const lo = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(a), i16x8.extend_low_i8x16_s(b));
  const hi = i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(a), i16x8.extend_high_i8x16_s(b));
  return i32x4.add(acc, i32x4.add(lo, hi));
}

/**
 * Σ a·u over pairs of lanes as i16x8, `a` signed 8-bit in [−127, 127], `u` in [0, 127] (unpacked weight codes).
 * With relaxed SIMD this is one `relaxed_dot_i8x16_i7x16_s` (pmaddubsw on x86: cannot saturate for these ranges);
 * otherwise two widening multiplies. Lanes group the products differently in the two builds, but every caller
 * only uses the sum over all lanes, which is exact and identical.
 */
// @ts-ignore: decorator
@inline export function dot16(a: v128, u: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i16x8.relaxed_dot_i8x16_i7x16_s(a, u);
  return i16x8.add(i16x8.extmul_low_i8x16_s(a, u), i16x8.extmul_high_i8x16_s(a, u));
}

/**
 * Σ a0·u0 + a1·u1 as i32x4 lane partial sums, codes `u` ≤ 31 (so the i16 sum of two `dot16` cannot overflow).
 * The two i16 dots are added before one widening (relaxed: pmaddubsw, pmaddubsw, paddw, pmaddwd). Measured on this
 * AVX-512 machine, where V8 has no AVX-VNNI and lowers each `i32x4.relaxed_dot_i8x16_i7x16_add_s` to three
 * instructions: Q4_0 matvec 13% faster than two of those chained, with identical results.
 */
// @ts-ignore: decorator
@inline export function dot32U5(a0: v128, u0: v128, a1: v128, u1: v128): v128 {
  return i32x4.extadd_pairwise_i16x8_s(i16x8.add(dot16(a0, u0), dot16(a1, u1)));
}
