// deno-fmt-ignore-file -- AssemblyScript (decorators, `<T>x` casts): deno fmt would drop `@inline`.
/**
 * Rotary position embedding in place on `x[nTok][nHeads][headDim]`, token t at position `pos0 + t`. Only the
 * first `ropeDims` dims of each head rotate (partial rotary); the rest pass through. Normal mode rotates adjacent
 * pairs `(2i, 2i+1)`, NeoX mode `(i, i + ropeDims/2)`. Angles follow ggml: `theta` starts at the position and is
 * multiplied by `base^(−2/ropeDims)` (f32) per pair, divided by the optional per-pair factor `freqFactors[i]`
 * (Llama 3 `rope_freqs`). Parallel over tokens × heads.
 */
import { splitStart } from "./common/split";
import { fma32 } from "./common/simd";
import { sincosf } from "./common/trig_f32";
export { cosf_glibc, sinf_glibc } from "./common/trig_f32";

export function rope(x: usize, nTok: i32, nHeads: i32, headDim: i32, ropeDims: i32, pos0: i32, base: f32, neox: i32, freqFactors: usize, ith: i32, nth: i32): void {
  const total = nTok * nHeads;
  const i0 = splitStart(total, ith, nth), i1 = splitStart(total, ith + 1, nth);
  const thetaScale = <f32>Math.pow(<f64>base, <f64>-2 / <f64>ropeDims);
  const half = ropeDims >> 1;
  for (let k = i0; k < i1; k++) {
    const t = k / nHeads;
    const row = x + ((<usize>k * <usize>headDim) << 2);
    let theta = <f32>(pos0 + t);
    for (let i = 0; i < half; i++) {
      const th = freqFactors ? theta / load<f32>(freqFactors + (<usize>i << 2)) : theta;
      const c = sincosf(th, 1), s = sincosf(th, 0);
      const a = row + ((neox ? <usize>i : <usize>(2 * i)) << 2);
      const b = row + ((neox ? <usize>(i + half) : <usize>(2 * i + 1)) << 2);
      const x0 = load<f32>(a), x1 = load<f32>(b);
      store<f32>(a, fma32(x0, c, -(x1 * s)));
      store<f32>(b, fma32(x0, s, x1 * c));
      theta *= thetaScale;
    }
  }
}
