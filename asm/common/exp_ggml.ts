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
 * exp(x), 4 lanes, operation for operation ggml's AVX2 `ggml_v_expf` (the softmax of llama.cpp's CPU backend), so
 * that the attention weights equal llama.cpp's bit for bit (with the relaxed build's fused multiply-adds).
 */
// @ts-ignore: decorator
@inline
export function expGgml(x: v128): v128 {
  const r = f32x4.splat(12582912.0); // 0x1.8p23
  const z = fmadd(x, f32x4.splat(1.4426950216293335), r);
  const n = f32x4.sub(z, r);
  const b = nmadd(n, f32x4.splat(0.0000014286067653301870), nmadd(n, f32x4.splat(0.693145751953125), x));
  const e = i32x4.shl(z, 23);
  const k = i32x4.add(e, i32x4.splat(0x3f800000));
  const an = f32x4.abs(n);
  const c = f32x4.gt(an, f32x4.splat(126));
  const u = f32x4.mul(b, b);
  const j = fmadd(
    fmadd(fmadd(f32x4.splat(0.0082473903894424438), b, f32x4.splat(0.041899766772985458)), u,
      fmadd(f32x4.splat(0.16668395698070526), b, f32x4.splat(0.49999126791954041))),
    u, f32x4.mul(f32x4.splat(0.99999940395355225), b));
  if (!v128.any_true(c)) return fmadd(j, k, k);
  // |n| > 126: the result is subnormal (2^n split into two factors) or, beyond 192, zero or infinity.
  const g = v128.and(f32x4.le(n, f32x4.splat(0)), i32x4.splat(0x82000000));
  const s1 = i32x4.add(g, i32x4.splat(0x7f000000));
  const s2 = i32x4.sub(e, g);
  const dd = f32x4.gt(an, f32x4.splat(192));
  const mid = v128.or(v128.and(c, f32x4.mul(fmadd(s2, j, s2), s1)), v128.andnot(fmadd(k, j, k), c));
  return v128.or(v128.and(dd, f32x4.mul(s1, s1)), v128.andnot(mid, dd));
}

