/**
 * Scalar references of the non-matmul kernels (norms, RoPE, activations, vector ops), in f64 unless ggml rounds
 * to f32 on purpose. Tests compare the wasm kernels to these.
 * @module
 */
import { roundF16 } from "./f16.ts";

const f = Math.fround;

/** RMSNorm of each row of `n` (`w` optional). */
export function rmsnormRef(x: Float32Array, w: Float32Array | null, n: number, eps: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length / n; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += x[r * n + i] ** 2;
    const scale = 1 / Math.sqrt(s / n + eps);
    for (let i = 0; i < n; i++) out[r * n + i] = x[r * n + i] * scale * (w ? w[i] : 1);
  }
  return out;
}

/** LayerNorm of each row of `n` (`w`, `b` optional). */
export function layernormRef(
  x: Float32Array,
  w: Float32Array | null,
  b: Float32Array | null,
  n: number,
  eps: number,
): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length / n; r++) {
    let s = 0, s2 = 0;
    for (let i = 0; i < n; i++) s += x[r * n + i];
    const mean = s / n;
    for (let i = 0; i < n; i++) s2 += (x[r * n + i] - mean) ** 2;
    const scale = 1 / Math.sqrt(s2 / n + eps);
    for (let i = 0; i < n; i++) out[r * n + i] = (x[r * n + i] - mean) * scale * (w ? w[i] : 1) + (b ? b[i] : 0);
  }
  return out;
}

/**
 * RoPE in place on `x[nTok][nHeads][headDim]`. Angles as ggml computes them: `theta = pos`, multiplied in f32 by
 * `f32(base^(−2/ropeDims))` after each pair and divided by `ff[i]` (so large positions carry ggml's f32 drift).
 */
export function ropeRef(
  x: Float32Array,
  nTok: number,
  nHeads: number,
  headDim: number,
  ropeDims: number,
  pos0: number,
  base: number,
  neox: boolean,
  freqFactors: Float32Array | null = null,
): void {
  const half = ropeDims / 2;
  for (let t = 0; t < nTok; t++) {
    for (let h = 0; h < nHeads; h++) {
      const o = (t * nHeads + h) * headDim;
      const thetaScale = f(base ** (-2 / ropeDims));
      let theta = f(pos0 + t);
      for (let i = 0; i < half; i++, theta = f(theta * thetaScale)) {
        const th = freqFactors ? f(theta / freqFactors[i]) : theta;
        const a = o + (neox ? i : 2 * i), b = o + (neox ? i + half : 2 * i + 1);
        const x0 = x[a], x1 = x[b];
        x[a] = x0 * Math.cos(th) - x1 * Math.sin(th);
        x[b] = x0 * Math.sin(th) + x1 * Math.cos(th);
      }
    }
  }
}

/** Softmax of each row of `n`. */
export function softmaxRef(x: Float32Array, n: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length / n; r++) {
    let m = -Infinity, s = 0;
    for (let i = 0; i < n; i++) m = Math.max(m, x[r * n + i]);
    for (let i = 0; i < n; i++) s += Math.exp(x[r * n + i] - m);
    for (let i = 0; i < n; i++) out[r * n + i] = Math.exp(x[r * n + i] - m) / s;
  }
  return out;
}

/** silu(v) = v / (1 + e^−v). */
export function siluRef(v: number): number {
  return v / (1 + Math.exp(-v));
}

/** GELU, tanh approximation (ggml's formula). */
export function geluRef(v: number): number {
  return 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * v * (1 + 0.044715 * v * v)));
}

/** ggml's CPU GELU through its f16 table: saturates beyond ±10, else f16(gelu(f16(v))). */
export function geluF16Ref(v: number): number {
  v = f(v);
  if (v <= -10) return 0;
  if (v >= 10) return v;
  return roundF16(geluRef(roundF16(v)));
}

/** Index of the first largest value. */
export function argmaxRef(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}
