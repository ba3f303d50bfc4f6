// deno-fmt-ignore-file -- AssemblyScript: deno fmt would drop the `@inline` decorators.
/**
 * Dense causal attention over the KV cache (f32 or f16 elements), for decode (one query token) and prefill (a batch).
 *
 * Work unit = (query token t, KV head h): the G = nHead/nKv query heads that share KV head h are done
 * together, so each K row and each V row of that head is loaded ONCE per unit and used G times
 * (GQA); positions are walked in order, so K and V stream through memory at bandwidth. Two passes:
 * scores = q·K (all positions, all G heads; four K rows per step, their four dot products reduced
 * together) → softmax in place → out = Σ p·V (V in L1-sized blocks, each block used by the G heads
 * while it is in cache, accumulating 16 output columns in registers).
 *
 * Units are dealt round-robin to the threads (unit u goes to thread u mod nth): every unit is computed
 * by one thread in the same order whatever nth is, so results do not depend on the thread count, and
 * the causal rows of a prefill batch (short first, long last) are spread evenly.
 *
 * Layouts (byte pointers): q/out `[nTok][nHead][d]` f32; K/V `[nKv][nCtx][d]` row-major, f32 (`attn_dense_f32`) or
 * f16 bits (`attn_dense_f16`: halves are widened to f32 exactly on load, and the arithmetic is the f32 kernel's,
 * operation for operation). With GQA (G > 1) each K row and V row is used G times, so the f16 kernel converts the
 * four K rows of a step, and each V block, once into an f32 buffer and runs the f32 loops on it; MHA converts as it
 * streams. Scratch: `nth·G·nCtx` floats of scores (thread ith uses its own `G·nCtx` block), then `nth·VBLOCK·d`
 * floats of conversion buffers. The element type is the generic `T` (f32, or u16 for f16 bits), fixed at compile
 * time.
 */

import { cvtF16, ld4 } from "./common/kv_elem";

// exp(x) for x ≤ 0 (scores minus their max), 4 lanes: Cephes expf polynomial, ~1 ulp.
const LOG2E: f32 = 1.44269504088896341;
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440e-4;

// @ts-ignore: decorator
@inline
function expv(x0: v128): v128 {
  // Below -87.3 exp underflows to denormals; clamping keeps 2^n a normal float (the value is ~1e-38,
  // negligible next to the max term's 1).
  const x = f32x4.max(x0, f32x4.splat(-87.3));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(LOG2E)));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(LN2_HI)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(LN2_LO)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  const r2 = f32x4.mul(r, r);
  p = f32x4.add(f32x4.add(f32x4.mul(p, r2), r), f32x4.splat(1.0));
  const scale = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return f32x4.mul(p, scale);
}

/** a·b + c: one fused multiply-add in the relaxed-SIMD build, mul + add otherwise. */
// @ts-ignore: decorator
@inline
function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

// @ts-ignore: decorator
@inline
function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

// @ts-ignore: decorator
@inline
function dot<T>(a: usize, b: usize, d: i32): f32 {
  const E = <usize> sizeof<T>();
  let s0 = f32x4.splat(0);
  let s1 = f32x4.splat(0);
  let i = 0;
  for (; i + 8 <= d; i += 8) {
    const o = <usize> i << 2;
    const ob = b + <usize> i * E;
    s0 = madd(v128.load(a + o), ld4<T>(ob), s0);
    s1 = madd(v128.load(a + o, 16), ld4<T>(ob + 4 * E), s1);
  }
  for (; i < d; i += 4) {
    const o = <usize> i << 2;
    s0 = madd(v128.load(a + o), ld4<T>(b + <usize> i * E), s0);
  }
  return hsum(f32x4.add(s0, s1));
}

/** In-place softmax of `n` floats at `s` (n ≥ 1). */
function softmaxInPlace(s: usize, n: i32): void {
  let mx: f32 = -Infinity;
  let i = 0;
  if (n >= 4) {
    let m4 = f32x4.splat(-Infinity);
    for (; i + 4 <= n; i += 4) m4 = f32x4.max(m4, v128.load(s + (<usize> i << 2)));
    mx = max(
      max(f32x4.extract_lane(m4, 0), f32x4.extract_lane(m4, 1)),
      max(f32x4.extract_lane(m4, 2), f32x4.extract_lane(m4, 3)),
    );
  }
  for (; i < n; i++) mx = max(mx, load<f32>(s + (<usize> i << 2)));
  const mv = f32x4.splat(mx);
  let sum4 = f32x4.splat(0);
  i = 0;
  for (; i + 4 <= n; i += 4) {
    const p = s + (<usize> i << 2);
    const e = expv(f32x4.sub(v128.load(p), mv));
    v128.store(p, e);
    sum4 = f32x4.add(sum4, e);
  }
  let sum = hsum(sum4);
  for (; i < n; i++) {
    const p = s + (<usize> i << 2);
    const e = f32x4.extract_lane(expv(f32x4.splat(load<f32>(p) - mx)), 0);
    store<f32>(p, e);
    sum += e;
  }
  const inv = f32x4.splat(<f32> 1.0 / sum);
  i = 0;
  for (; i + 4 <= n; i += 4) {
    const p = s + (<usize> i << 2);
    v128.store(p, f32x4.mul(v128.load(p), inv));
  }
  const invs: f32 = <f32> 1.0 / sum;
  for (; i < n; i++) {
    const p = s + (<usize> i << 2);
    store<f32>(p, load<f32>(p) * invs);
  }
}

/** Positions per V block: 32 rows of d ≤ 128 floats (16 KB) stay in L1 while the G heads use them. */
const VBLOCK = 32;

/** `[a·, b·, c·, d·]` lane sums of four accumulators, as one vector (two shuffle rounds). */
// @ts-ignore: decorator
@inline
function hsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 4, 1, 5), v128.shuffle<f32>(a, b, 2, 6, 3, 7));
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 4, 1, 5), v128.shuffle<f32>(c, d, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 1, 4, 5), v128.shuffle<f32>(ab, cd, 2, 3, 6, 7));
}

/** scores[g][p] = scale · q_g · K[p] for p in [0, nPos): four K rows at a time, each loaded once for all G heads. */
function scores<T>(
  q: usize, kBase: usize, sc: usize, G: i32, d: i32, nCtx: i32, nPos: i32, scale: f32, conv: usize,
): void {
  const E = <usize> sizeof<T>();
  const qBytes = <usize> d << 2;
  const rowBytes = <usize> d * E;
  const vs = f32x4.splat(scale);
  let p = 0;
  // MHA (G = 1) streams best one row at a time; with G > 1 four rows are shared by the G heads.
  for (; G > 1 && p + 4 <= nPos; p += 4) {
    // The four rows as f32: in place (f32 cache), or converted once into `conv` for the G heads (f16).
    let k0 = kBase + <usize> p * rowBytes;
    if (sizeof<T>() == 2) {
      cvtF16(conv, k0, 4 * d);
      k0 = conv;
    }
    const k1 = k0 + qBytes, k2 = k1 + qBytes, k3 = k2 + qBytes;
    for (let g = 0; g < G; g++) {
      const qg = q + <usize> g * qBytes;
      // Eight independent accumulator chains (two per row) keep the multiply-add pipeline full.
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
      let i = 0;
      for (; i + 8 <= d; i += 8) {
        const o = <usize> i << 2;
        const qv = v128.load(qg + o), qw = v128.load(qg + o, 16);
        a0 = madd(qv, v128.load(k0 + o), a0);
        a1 = madd(qv, v128.load(k1 + o), a1);
        a2 = madd(qv, v128.load(k2 + o), a2);
        a3 = madd(qv, v128.load(k3 + o), a3);
        b0 = madd(qw, v128.load(k0 + o, 16), b0);
        b1 = madd(qw, v128.load(k1 + o, 16), b1);
        b2 = madd(qw, v128.load(k2 + o, 16), b2);
        b3 = madd(qw, v128.load(k3 + o, 16), b3);
      }
      for (; i < d; i += 4) {
        const o = <usize> i << 2;
        const qv = v128.load(qg + o);
        a0 = madd(qv, v128.load(k0 + o), a0);
        a1 = madd(qv, v128.load(k1 + o), a1);
        a2 = madd(qv, v128.load(k2 + o), a2);
        a3 = madd(qv, v128.load(k3 + o), a3);
      }
      a0 = f32x4.add(a0, b0);
      a1 = f32x4.add(a1, b1);
      a2 = f32x4.add(a2, b2);
      a3 = f32x4.add(a3, b3);
      v128.store(sc + ((<usize> g * <usize> nCtx + <usize> p) << 2), f32x4.mul(hsum4(a0, a1, a2, a3), vs));
    }
  }
  for (; p < nPos; p++) {
    const kr = kBase + <usize> p * rowBytes;
    for (let g = 0; g < G; g++) {
      store<f32>(sc + ((<usize> g * <usize> nCtx + <usize> p) << 2), dot<T>(q + <usize> g * qBytes, kr, d) * scale);
    }
  }
}

/** out_g = Σ_p w[g][p] · V[p] (out zeroed first): V in blocks of VBLOCK rows, each block read from memory once. */
function weightedSum<T>(
  out: usize, vBase: usize, sc: usize, G: i32, d: i32, nCtx: i32, nPos: i32, conv: usize,
): void {
  const E = <usize> sizeof<T>();
  const outBytes = <usize> d << 2;
  const rowBytes = <usize> d * E;
  memory.fill(out, 0, <usize> G * outBytes);
  if (G == 1) {
    // MHA: nothing to share, so stream V row by row into the (L1-resident) output row.
    for (let p = 0; p < nPos; p++) {
      const wv = f32x4.splat(load<f32>(sc + (<usize> p << 2)));
      const vr = vBase + <usize> p * rowBytes;
      for (let c = 0; c < d; c += 4) {
        const off = <usize> c << 2;
        v128.store(out + off, madd(wv, ld4<T>(vr + <usize> c * E), v128.load(out + off)));
      }
    }
    return;
  }
  for (let p0 = 0; p0 < nPos; p0 += VBLOCK) {
    const p1 = min(p0 + VBLOCK, nPos);
    // The block's rows as f32 (`vb` + p·outBytes is row p): in place, or converted once for the G heads (f16).
    let vb = vBase;
    if (sizeof<T>() == 2) {
      cvtF16(conv, vBase + <usize> p0 * rowBytes, (p1 - p0) * d);
      vb = conv - <usize> p0 * outBytes;
    }
    for (let g = 0; g < G; g++) {
      const o = out + <usize> g * outBytes;
      const w = sc + ((<usize> g * <usize> nCtx) << 2);
      let c = 0;
      // 32 columns at a time in eight registers (eight independent chains), then 16, then 4.
      for (; c + 32 <= d; c += 32) {
        const oc = o + (<usize> c << 2);
        let a0 = v128.load(oc), a1 = v128.load(oc, 16), a2 = v128.load(oc, 32), a3 = v128.load(oc, 48);
        let a4 = v128.load(oc, 64), a5 = v128.load(oc, 80), a6 = v128.load(oc, 96), a7 = v128.load(oc, 112);
        for (let p = p0; p < p1; p++) {
          const wv = f32x4.splat(load<f32>(w + (<usize> p << 2)));
          const vr = vb + <usize> p * outBytes + (<usize> c << 2);
          a0 = madd(wv, v128.load(vr), a0);
          a1 = madd(wv, v128.load(vr, 16), a1);
          a2 = madd(wv, v128.load(vr, 32), a2);
          a3 = madd(wv, v128.load(vr, 48), a3);
          a4 = madd(wv, v128.load(vr, 64), a4);
          a5 = madd(wv, v128.load(vr, 80), a5);
          a6 = madd(wv, v128.load(vr, 96), a6);
          a7 = madd(wv, v128.load(vr, 112), a7);
        }
        v128.store(oc, a0);
        v128.store(oc, a1, 16);
        v128.store(oc, a2, 32);
        v128.store(oc, a3, 48);
        v128.store(oc, a4, 64);
        v128.store(oc, a5, 80);
        v128.store(oc, a6, 96);
        v128.store(oc, a7, 112);
      }
      for (; c + 16 <= d; c += 16) {
        const oc = o + (<usize> c << 2);
        let a0 = v128.load(oc), a1 = v128.load(oc, 16), a2 = v128.load(oc, 32), a3 = v128.load(oc, 48);
        for (let p = p0; p < p1; p++) {
          const wv = f32x4.splat(load<f32>(w + (<usize> p << 2)));
          const vr = vb + <usize> p * outBytes + (<usize> c << 2);
          a0 = madd(wv, v128.load(vr), a0);
          a1 = madd(wv, v128.load(vr, 16), a1);
          a2 = madd(wv, v128.load(vr, 32), a2);
          a3 = madd(wv, v128.load(vr, 48), a3);
        }
        v128.store(oc, a0);
        v128.store(oc, a1, 16);
        v128.store(oc, a2, 32);
        v128.store(oc, a3, 48);
      }
      for (; c < d; c += 4) {
        const oc = o + (<usize> c << 2);
        let a0 = v128.load(oc);
        for (let p = p0; p < p1; p++) {
          const wv = f32x4.splat(load<f32>(w + (<usize> p << 2)));
          a0 = madd(wv, v128.load(vb + <usize> p * outBytes + (<usize> c << 2)), a0);
        }
        v128.store(oc, a0);
      }
    }
  }
}

/**
 * Causal attention for `nTok` query tokens at positions `pos0 ..` (decode: nTok = 1). Token t sees
 * positions `0 .. pos0 + t`. Query head j uses KV head `j / (nHead / nKv)` (ggml's GQA broadcast).
 * `d` must be a multiple of 4; `scale` multiplies q·k before the softmax. K and V elements are `T`.
 */
// @ts-ignore: decorator
@inline
function attnDense<T>(
  q: usize,
  k: usize,
  v: usize,
  out: usize,
  scoresBuf: usize,
  nTok: i32,
  pos0: i32,
  nHead: i32,
  nKv: i32,
  d: i32,
  nCtx: i32,
  scale: f32,
  ith: i32,
  nth: i32,
): void {
  const G = nHead / nKv;
  const rowBytes = <usize> d << 2;
  const sc = scoresBuf + ((<usize> ith * <usize> G * <usize> nCtx) << 2);
  // This thread's f16 → f32 conversion buffer (VBLOCK rows of d), after every thread's scores.
  const conv = scoresBuf + ((<usize> nth * <usize> G * <usize> nCtx + <usize> ith * <usize> VBLOCK * <usize> d) << 2);
  const nUnits = nTok * nKv;
  for (let u = ith; u < nUnits; u += nth) {
    const t = u / nKv;
    const h = u % nKv;
    const nPos = pos0 + t + 1;
    const first = <usize> (t * nHead + h * G) * rowBytes;
    const kvOff = <usize> h * <usize> nCtx * <usize> d * <usize> sizeof<T>();
    scores<T>(q + first, k + kvOff, sc, G, d, nCtx, nPos, scale, conv);
    for (let g = 0; g < G; g++) softmaxInPlace(sc + ((<usize> g * <usize> nCtx) << 2), nPos);
    weightedSum<T>(out + first, v + kvOff, sc, G, d, nCtx, nPos, conv);
  }
}

/** {@link attnDense} over an f32 cache. */
export function attn_dense_f32(
  q: usize, k: usize, v: usize, out: usize, scoresBuf: usize, nTok: i32, pos0: i32, nHead: i32, nKv: i32, d: i32,
  nCtx: i32, scale: f32, ith: i32, nth: i32,
): void {
  attnDense<f32>(q, k, v, out, scoresBuf, nTok, pos0, nHead, nKv, d, nCtx, scale, ith, nth);
}

/** {@link attnDense} over an f16 cache (K and V hold f16 bits). */
export function attn_dense_f16(
  q: usize, k: usize, v: usize, out: usize, scoresBuf: usize, nTok: i32, pos0: i32, nHead: i32, nKv: i32, d: i32,
  nCtx: i32, scale: f32, ith: i32, nth: i32,
): void {
  attnDense<u16>(q, k, v, out, scoresBuf, nTok, pos0, nHead, nKv, d, nCtx, scale, ith, nth);
}
