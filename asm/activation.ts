// deno-fmt-ignore-file -- AssemblyScript (decorators, `<T>x` casts): deno fmt would drop `@inline`.
/**
 * Activations and elementwise vector ops on f32 (parallel over elements or rows; `out` may equal an input).
 * GELU: ggml's CPU backend evaluates its tanh-approximation GELU through an f16 lookup table (the input rounded to
 * f16, the result stored as f16); `gelu` computes the same formula exactly in f32, `gelu_f16` replicates the table.
 */
import { splitStart } from "./common/split";
import { roundF16 } from "./common/simd";
import { expGgml } from "./common/exp_ggml";

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
const GELU_COEF_A: f32 = 0.044715;

// @ts-ignore: decorator
@inline function siluF(v: f32): f32 {
  return v / (<f32>1 + Mathf.exp(-v));
}

// @ts-ignore: decorator
@inline function geluF(v: f32): f32 {
  return <f32>0.5 * v * (<f32>1 + Mathf.tanh(SQRT_2_OVER_PI * v * (<f32>1 + GELU_COEF_A * v * v)));
}

/** ggml's table GELU: |x| ≥ 10 saturates (0 or x), otherwise f16(gelu(f16(x))). */
// @ts-ignore: decorator
@inline function geluF16(v: f32): f32 {
  if (v <= -10) return 0;
  if (v >= 10) return v;
  return roundF16(geluF(roundF16(v)));
}

/** `out[i] = silu(x[i])`. */
export function silu(out: usize, x: usize, n: i32, ith: i32, nth: i32): void {
  const i0 = splitStart(n, ith, nth), i1 = splitStart(n, ith + 1, nth);
  for (let i = i0; i < i1; i++) store<f32>(out + (<usize>i << 2), siluF(load<f32>(x + (<usize>i << 2))));
}

/** `out[i] = gelu(x[i])` (tanh approximation, exact f32). */
export function gelu(out: usize, x: usize, n: i32, ith: i32, nth: i32): void {
  const i0 = splitStart(n, ith, nth), i1 = splitStart(n, ith + 1, nth);
  for (let i = i0; i < i1; i++) store<f32>(out + (<usize>i << 2), geluF(load<f32>(x + (<usize>i << 2))));
}

/** `out[i] = gelu(x[i])` as ggml's f16 lookup table computes it. */
export function gelu_f16(out: usize, x: usize, n: i32, ith: i32, nth: i32): void {
  const i0 = splitStart(n, ith, nth), i1 = splitStart(n, ith + 1, nth);
  for (let i = i0; i < i1; i++) store<f32>(out + (<usize>i << 2), geluF16(load<f32>(x + (<usize>i << 2))));
}

/**
 * SwiGLU over rows of `rowLen`: `out[i] = silu(gate[i]) · up[i]`, as ggml's AVX2 `ggml_vec_swiglu_f32` computes it
 * row by row — each full block of eight as x / (1 + {@link expGgml}(0 − x)) · g, the last rowLen mod 8 values of a row
 * with the scalar exp. Parallel over blocks of eight (a row's tail is one block).
 */
export function swiglu(out: usize, gate: usize, up: usize, n: i32, rowLen: i32, ith: i32, nth: i32): void {
  const full = rowLen >> 3, tail = rowLen & 7;
  const perRow = full + (tail ? 1 : 0);
  const units = (n / rowLen) * perRow;
  const u0 = splitStart(units, ith, nth), u1 = splitStart(units, ith + 1, nth);
  const one = f32x4.splat(1), zero = f32x4.splat(0);
  for (let u = u0; u < u1; u++) {
    const row = u / perRow, blk = u % perRow;
    const i = row * rowLen + (blk << 3);
    if (blk < full) {
      for (let h = 0; h < 8; h += 4) {
        const o = <usize>(i + h) << 2;
        const x = v128.load(gate + o);
        v128.store(out + o, f32x4.mul(f32x4.div(x, f32x4.add(one, expGgml(f32x4.sub(zero, x)))), v128.load(up + o)));
      }
    } else {
      for (let j = i; j < i + tail; j++) {
        const o = <usize>j << 2;
        store<f32>(out + o, siluF(load<f32>(gate + o)) * load<f32>(up + o));
      }
    }
  }
}

/** GeGLU: `out[i] = gelu(gate[i]) · up[i]`; `f16Table` ≠ 0 uses ggml's table GELU. */
export function geglu(out: usize, gate: usize, up: usize, n: i32, f16Table: i32, ith: i32, nth: i32): void {
  const i0 = splitStart(n, ith, nth), i1 = splitStart(n, ith + 1, nth);
  for (let i = i0; i < i1; i++) {
    const o = <usize>i << 2;
    const g = load<f32>(gate + o);
    store<f32>(out + o, (f16Table ? geluF16(g) : geluF(g)) * load<f32>(up + o));
  }
}

/** Softmax of each of `nRows` rows of `n` values, in place: max-subtracted, sum in f64 as ggml. */
export function softmax(x: usize, n: i32, nRows: i32, ith: i32, nth: i32): void {
  const r0 = splitStart(nRows, ith, nth), r1 = splitStart(nRows, ith + 1, nth);
  for (let r = r0; r < r1; r++) {
    const row = x + ((<usize>r * <usize>n) << 2);
    let m = -Infinity as f32;
    for (let i = 0; i < n; i++) m = max(m, load<f32>(row + (<usize>i << 2)));
    let s: f64 = 0;
    for (let i = 0; i < n; i++) {
      const e = Mathf.exp(load<f32>(row + (<usize>i << 2)) - m);
      store<f32>(row + (<usize>i << 2), e);
      s += <f64>e;
    }
    const inv = <f32>(1.0 / s);
    for (let i = 0; i < n; i++) store<f32>(row + (<usize>i << 2), load<f32>(row + (<usize>i << 2)) * inv);
  }
}

/** `out[i] = a[i] + b[i]` (residual add). */
export function add(out: usize, a: usize, b: usize, n: i32, ith: i32, nth: i32): void {
  const i0 = splitStart(n, ith, nth), i1 = splitStart(n, ith + 1, nth);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, f32x4.add(v128.load(a + o), v128.load(b + o)));
  }
  for (; i < i1; i++) store<f32>(out + (<usize>i << 2), load<f32>(a + (<usize>i << 2)) + load<f32>(b + (<usize>i << 2)));
}

/** `out[i] = x[i] · s`. */
export function scale(out: usize, x: usize, s: f32, n: i32, ith: i32, nth: i32): void {
  const i0 = splitStart(n, ith, nth), i1 = splitStart(n, ith + 1, nth);
  for (let i = i0; i < i1; i++) store<f32>(out + (<usize>i << 2), load<f32>(x + (<usize>i << 2)) * s);
}

/** `x[r][i] += bias[i]` for `nRows` rows of `n` values (linear-layer bias). */
export function add_bias(x: usize, bias: usize, n: i32, nRows: i32, ith: i32, nth: i32): void {
  const r0 = splitStart(nRows, ith, nth), r1 = splitStart(nRows, ith + 1, nth);
  for (let r = r0; r < r1; r++) {
    const row = x + ((<usize>r * <usize>n) << 2);
    for (let i = 0; i < n; i++) store<f32>(row + (<usize>i << 2), load<f32>(row + (<usize>i << 2)) + load<f32>(bias + (<usize>i << 2)));
  }
}

/** Index of the largest of `n` values (the first on ties; NaN never wins). Single-threaded (`Shard.call`). */
export function argmax(x: usize, n: i32): i32 {
  let best = 0;
  let m = -Infinity as f32;
  for (let i = 0; i < n; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    if (v > m) {
      m = v;
      best = i;
    }
  }
  return best;
}
