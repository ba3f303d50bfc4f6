// deno-fmt-ignore-file -- AssemblyScript (decorators, `<T>x` casts): deno fmt would drop `@inline`.
/** ggml's AVX2 `ggml_v_expf`, four lanes: the exp of llama.cpp's CPU softmax and SiLU, operation for operation. */
import { fmadd } from "./simd";

/** -(a·b) + c: fused in the relaxed-SIMD build (ggml's `_mm256_fnmadd_ps`), mul + sub otherwise. */
// @ts-ignore: decorator
@inline
function nmadd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_nmadd(a, b, c);
  return f32x4.sub(c, f32x4.mul(a, b));
}

/**
 * The constants of {@link expGgml}, each splatted to 16 bytes, in memory: V8 rebuilds a `v128.const` at every use
 * inside a loop (several instructions each; expGgml has 14), while a load is one (see docs/DESIGN.md).
 * f32 bits: 0x1.8p23, log2(e), ln2 low and high parts, the polynomial's five coefficients, 126, 192; then the i32
 * 0x3f800000 (exponent bias), 0x82000000 and 0x7f000000 (the split of 2^n for |n| > 126).
 */
const EXP_C = memory.data<u32>([
  0x4b400000, 0x4b400000, 0x4b400000, 0x4b400000,
  0x3fb8aa3b, 0x3fb8aa3b, 0x3fb8aa3b, 0x3fb8aa3b,
  0x35bfbe8e, 0x35bfbe8e, 0x35bfbe8e, 0x35bfbe8e,
  0x3f317200, 0x3f317200, 0x3f317200, 0x3f317200,
  0x3c072010, 0x3c072010, 0x3c072010, 0x3c072010,
  0x3d2b9f17, 0x3d2b9f17, 0x3d2b9f17, 0x3d2b9f17,
  0x3e2aaf33, 0x3e2aaf33, 0x3e2aaf33, 0x3e2aaf33,
  0x3efffedb, 0x3efffedb, 0x3efffedb, 0x3efffedb,
  0x3f7ffff6, 0x3f7ffff6, 0x3f7ffff6, 0x3f7ffff6,
  0x42fc0000, 0x42fc0000, 0x42fc0000, 0x42fc0000,
  0x43400000, 0x43400000, 0x43400000, 0x43400000,
  0x3f800000, 0x3f800000, 0x3f800000, 0x3f800000,
  0x82000000, 0x82000000, 0x82000000, 0x82000000,
  0x7f000000, 0x7f000000, 0x7f000000, 0x7f000000,
]);
const R = 0, LOG2E = 16, LN2_LO = 32, LN2_HI = 48, C5 = 64, C4 = 80, C3 = 96, C2 = 112, C1 = 128, BIG = 144, HUGE = 160, ONE_BITS = 176, G_BITS = 192,
  S1_BITS = 208;

/** Constant `off` of {@link EXP_C}. */
// @ts-ignore: decorator
@inline
function ec(off: usize): v128 {
  return v128.load(EXP_C + off);
}

/**
 * exp(x), 4 lanes, operation for operation ggml's AVX2 `ggml_v_expf` (the softmax of llama.cpp's CPU backend), so
 * that the attention weights equal llama.cpp's bit for bit (with the relaxed build's fused multiply-adds).
 */
// @ts-ignore: decorator
@inline
export function expGgml(x: v128): v128 {
  const r = ec(R); // 0x1.8p23
  const z = fmadd(x, ec(LOG2E), r);
  const n = f32x4.sub(z, r);
  const b = nmadd(n, ec(LN2_LO), nmadd(n, ec(LN2_HI), x));
  const e = i32x4.shl(z, 23);
  const k = i32x4.add(e, ec(ONE_BITS));
  const an = f32x4.abs(n);
  const c = f32x4.gt(an, ec(BIG));
  const u = f32x4.mul(b, b);
  const j = fmadd(
    fmadd(fmadd(ec(C5), b, ec(C4)), u,
      fmadd(ec(C3), b, ec(C2))),
    u, f32x4.mul(ec(C1), b));
  if (!v128.any_true(c)) return fmadd(j, k, k);
  // |n| > 126: the result is subnormal (2^n split into two factors) or, beyond 192, zero or infinity.
  const g = v128.and(f32x4.le(n, f32x4.splat(0)), ec(G_BITS));
  const s1 = i32x4.add(g, ec(S1_BITS));
  const s2 = i32x4.sub(e, g);
  const dd = f32x4.gt(an, ec(HUGE));
  const mid = v128.or(v128.and(c, f32x4.mul(fmadd(s2, j, s2), s1)), v128.andnot(fmadd(k, j, k), c));
  return v128.or(v128.and(dd, f32x4.mul(s1, s1)), v128.andnot(mid, dd));
}

