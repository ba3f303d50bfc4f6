// deno-fmt-ignore-file -- AssemblyScript (decorators, `<T>x` casts): deno fmt would drop `@inline`.
/**
 * Activation quantization before the integer dot products, as llama.cpp does it on x86 (so logits match it):
 * Q8_0/Q8_1 for the 32-wide weight types, Q8_K for K-quants, and f16/bf16 rounding for F16/BF16 weights.
 * `X[nTok][cols]` f32 in; layouts out as in `asm/common/act.ts`. Parallel over tokens.
 */
import { splitStart } from "./common/split";
import { f32ToF16, f16ToF32, roundBf16, roundF16 } from "./common/simd";
import { q8Stride, q8kStride } from "./common/act";

/** Four f32 lanes → nearest integers (ties to even) packed as the low four i8 lanes. */
// @ts-ignore: decorator
@inline function packI8(v: v128): v128 {
  const i = i32x4.trunc_sat_f32x4_s(f32x4.nearest(v));
  const h = i16x8.narrow_i32x4_s(i, i);
  return i8x16.narrow_i16x8_s(h, h);
}

/**
 * ggml's `quantize_row_q8_0`/`q8_1` (AVX2 path): per 32 values `d = amax/127`, `q = round(x·127/amax)` (ties to
 * even), `d` stored as f16; also `Σq` and Q8_1's `s = f16(d·Σq)`. `cols` must be a multiple of 32.
 */
export function quantize_q8(x: usize, out: usize, cols: i32, nTok: i32, ith: i32, nth: i32): void {
  const t0 = splitStart(nTok, ith, nth);
  const t1 = splitStart(nTok, ith + 1, nth);
  const nb = cols >> 5;
  const stride = q8Stride(cols);
  for (let t = t0; t < t1; t++) {
    const xs = x + ((<usize>t * <usize>cols) << 2);
    const qs = out + <usize>t * stride;
    const ds = qs + <usize>cols;
    const ss = ds + (<usize>nb << 2);
    const sums = ss + (<usize>nb << 2);
    for (let b = 0; b < nb; b++) {
      const p = xs + (<usize>b << 7);
      let m = f32x4.splat(0);
      for (let k: usize = 0; k < 128; k += 16) m = f32x4.max(m, f32x4.abs(v128.load(p + k)));
      m = f32x4.max(m, i32x4.shuffle(m, m, 2, 3, 0, 1));
      const amax = max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1));
      const d = amax / 127;
      const id = f32x4.splat(amax != 0 ? <f32>127 / amax : 0);
      let sum = i32x4.splat(0);
      const q = qs + (<usize>b << 5);
      for (let k: usize = 0; k < 8; k++) {
        const v = packI8(f32x4.mul(v128.load(p + (k << 4)), id));
        const w = i32x4.extract_lane(v, 0);
        store<i32>(q + (k << 2), w);
        sum = i32x4.add(sum, i32x4.extend_low_i16x8_s(i16x8.extend_low_i8x16_s(v)));
      }
      const s = i32x4.extract_lane(sum, 0) + i32x4.extract_lane(sum, 1) + i32x4.extract_lane(sum, 2) +
        i32x4.extract_lane(sum, 3);
      store<f32>(ds + (<usize>b << 2), roundF16(d));
      store<f32>(ss + (<usize>b << 2), roundF16(d * <f32>s));
      store<i32>(sums + (<usize>b << 2), s);
    }
  }
}

/**
 * ggml's `quantize_row_q8_K`: per 256 values, `iscale = −127/max` where `max` is the value of largest magnitude,
 * `q = min(127, round(iscale·x))` (ties to even), `d = 1/iscale` (f32), and `Σq` of every 16. `cols` must be a
 * multiple of 256.
 */
export function quantize_q8k(x: usize, out: usize, cols: i32, nTok: i32, ith: i32, nth: i32): void {
  const t0 = splitStart(nTok, ith, nth);
  const t1 = splitStart(nTok, ith + 1, nth);
  const nb = cols >> 8;
  const stride = q8kStride(cols);
  for (let t = t0; t < t1; t++) {
    const xs = x + ((<usize>t * <usize>cols) << 2);
    const qs = out + <usize>t * stride;
    const ds = qs + <usize>cols;
    const bsums = ds + (<usize>nb << 2);
    for (let b = 0; b < nb; b++) {
      const p = xs + (<usize>b << 10);
      // Scalar on purpose: ggml keeps the *first* value of largest magnitude, with its sign.
      let amax: f32 = 0;
      let mx: f32 = 0;
      for (let k: usize = 0; k < 256; k++) {
        const v = load<f32>(p + (k << 2));
        const a = abs(v);
        if (a > amax) {
          amax = a;
          mx = v;
        }
      }
      const q = qs + (<usize>b << 8);
      if (amax == 0) {
        store<f32>(ds + (<usize>b << 2), 0);
        memory.fill(q, 0, 256);
        for (let g: usize = 0; g < 16; g++) store<i32>(bsums + ((<usize>(b << 4) + g) << 2), 0);
        continue;
      }
      const iscale: f32 = <f32>-127 / mx;
      const is = f32x4.splat(iscale);
      const lim = i32x4.splat(127);
      for (let g: usize = 0; g < 16; g++) {
        let sum = i32x4.splat(0);
        for (let k: usize = 0; k < 4; k++) {
          const o = (g << 4) + (k << 2);
          const i = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p + (o << 2)), is))), lim);
          sum = i32x4.add(sum, i);
          const h = i16x8.narrow_i32x4_s(i, i);
          store<i32>(q + o, i32x4.extract_lane(i8x16.narrow_i16x8_s(h, h), 0));
        }
        const s = i32x4.extract_lane(sum, 0) + i32x4.extract_lane(sum, 1) + i32x4.extract_lane(sum, 2) +
          i32x4.extract_lane(sum, 3);
        store<i32>(bsums + ((<usize>(b << 4) + g) << 2), s);
      }
      store<f32>(ds + (<usize>b << 2), <f32>1 / iscale);
    }
  }
}

/** `out[i] = f16(x[i])` as f32 (activations for F16 weights, as ggml converts them to F16). */
export function round_f16(x: usize, out: usize, n: i32, ith: i32, nth: i32): void {
  const i0 = splitStart(n, ith, nth);
  const i1 = splitStart(n, ith + 1, nth);
  for (let i = i0; i < i1; i++) store<f32>(out + (<usize>i << 2), roundF16(load<f32>(x + (<usize>i << 2))));
}

/** `out[i] = bf16(x[i])` as f32 (activations for BF16 weights). */
export function round_bf16(x: usize, out: usize, n: i32, ith: i32, nth: i32): void {
  const i0 = splitStart(n, ith, nth);
  const i1 = splitStart(n, ith + 1, nth);
  for (let i = i0; i < i1; i++) store<f32>(out + (<usize>i << 2), roundBf16(load<f32>(x + (<usize>i << 2))));
}

/** f32 → f16 bits (round to nearest even), `n` values (F16 KV cache rows). */
export function f32_to_f16(x: usize, out: usize, n: i32, ith: i32, nth: i32): void {
  const i0 = splitStart(n, ith, nth);
  const i1 = splitStart(n, ith + 1, nth);
  for (let i = i0; i < i1; i++) store<u16>(out + (<usize>i << 1), f32ToF16(load<f32>(x + (<usize>i << 2))));
}

/** f16 bits → f32, `n` values. */
export function f16_to_f32(x: usize, out: usize, n: i32, ith: i32, nth: i32): void {
  const i0 = splitStart(n, ith, nth);
  const i1 = splitStart(n, ith + 1, nth);
  for (let i = i0; i < i1; i++) store<f32>(out + (<usize>i << 2), f16ToF32(load<u16>(x + (<usize>i << 1))));
}
