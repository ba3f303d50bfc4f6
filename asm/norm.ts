// deno-fmt-ignore-file -- AssemblyScript (decorators, `<T>x` casts): deno fmt would drop `@inline`.
/**
 * RMSNorm and LayerNorm over `nRows` rows of `n` values (parallel over rows). As ggml: the sums are in f64, the
 * scale is `1/sqrt(mean + eps)` in f32, then the (optional) weight and bias are applied in f32.
 */
import { splitStart } from "./common/split";

/** `out[r] = x[r] / sqrt(mean(x[r]²) + eps) · w` (`w` = 0: no weight). */
export function rmsnorm(out: usize, x: usize, w: usize, n: i32, eps: f32, nRows: i32, ith: i32, nth: i32): void {
  const r0 = splitStart(nRows, ith, nth), r1 = splitStart(nRows, ith + 1, nth);
  for (let r = r0; r < r1; r++) {
    const xr = x + ((<usize>r * <usize>n) << 2), o = out + ((<usize>r * <usize>n) << 2);
    let s: f64 = 0;
    for (let i = 0; i < n; i++) {
      const v = load<f32>(xr + (<usize>i << 2));
      s += <f64>(v * v);
    }
    const scale = <f32>1 / Mathf.sqrt(<f32>(s / <f64>n) + eps);
    for (let i = 0; i < n; i++) {
      const v = load<f32>(xr + (<usize>i << 2)) * scale;
      store<f32>(o + (<usize>i << 2), w ? v * load<f32>(w + (<usize>i << 2)) : v);
    }
  }
}

/** `out[r] = (x[r] − mean) / sqrt(var + eps) · w + b` (`w`, `b` = 0: none). */
export function layernorm(out: usize, x: usize, w: usize, b: usize, n: i32, eps: f32, nRows: i32, ith: i32, nth: i32): void {
  const r0 = splitStart(nRows, ith, nth), r1 = splitStart(nRows, ith + 1, nth);
  for (let r = r0; r < r1; r++) {
    const xr = x + ((<usize>r * <usize>n) << 2), o = out + ((<usize>r * <usize>n) << 2);
    let s: f64 = 0;
    for (let i = 0; i < n; i++) s += <f64>load<f32>(xr + (<usize>i << 2));
    const mean = <f32>(s / <f64>n);
    let s2: f64 = 0;
    for (let i = 0; i < n; i++) {
      const v = load<f32>(xr + (<usize>i << 2)) - mean;
      s2 += <f64>(v * v);
    }
    const scale = <f32>1 / Mathf.sqrt(<f32>(s2 / <f64>n) + eps);
    for (let i = 0; i < n; i++) {
      let v = (load<f32>(xr + (<usize>i << 2)) - mean) * scale;
      if (w) v *= load<f32>(w + (<usize>i << 2));
      if (b) v += load<f32>(b + (<usize>i << 2));
      store<f32>(o + (<usize>i << 2), v);
    }
  }
}
