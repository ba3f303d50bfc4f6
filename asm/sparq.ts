// deno-fmt-ignore-file -- AssemblyScript (decorators, `<T>x` casts): deno fmt would drop `@inline`.
/**
 * SparQ Attention, one decode step (sparq.md §2, GQA §2.1). Parallel over KV groups: each thread takes whole
 * groups, and a group's result does not depend on which thread computes it, so outputs are identical for any
 * `nth`. Per group (the G = nHead/nKv query heads that share KV head g):
 *
 * 1. `absq = Σ_heads |q|`; i1 = top-r of absq (shared by the group), in ascending order.
 * 2. per head: τ = sqrt(d·Σ_{i1}|q_i| / Σ|q_i|); ŝ[t] = (Σ_{i∈i1} q_i·Kt[i][t]) / τ — passes over r contiguous rows
 *    of the feature-major Kt (four rows per pass), tiled so the accumulators stay in L1.
 * 3. when α or a group sum is needed: e[t] = exp(ŝ[t] − max ŝ), Z = Σ e (the approximate softmax is e/Z).
 * 4. group score: G = 1 → the head's own ŝ (or e; same order as its softmax); G > 1 → Σ_heads e/Z, the sum of
 *    approximate *probabilities* as in the paper's GQA listing (the research module sums logits instead).
 * 5. i2 = the current token + the `window` newest positions before it + the top (k − window) of the rest by
 *    group score (radix select, `attention_select.ts`): min(k+1, S) positions, ascending.
 *    (`keepCurrent = 0`: the llama.cpp fork's variant, min(k, S) positions, the current token not forced.)
 * 6. per head: exact scores q·K[i2]/√d on the gathered rows of row-major K, softmax, y = Σ s·V[i2];
 *    with reallocation out = α·y + (1−α)·v̄, α = Σ_{i2} e/Z (the un-forced approximate softmax), v̄ = vsum/S.
 *
 * When every position would be kept is kept and steps 1–5 are skipped: the result is dense attention.
 *
 * Float reproducibility: steps 1–5 use only IEEE f32 add/mul/div/sqrt/floor in a fixed order, and the SIMD
 * lanes are combined in a fixed order, so the scalar reference reproduces the selected set bit for bit.
 *
 * Cache element type: the kernels are generic over `T` — f32, or u16 for an f16 cache (`sparq_decode_f16`,
 * `attn_rows_decode_f16`): K, V and Kt hold f16 bits, widened to f32 exactly on load (`common/kv_elem.ts`: four at
 * a time, scalar tails one by one), so an f16 cache gives the f32 kernel's result on the f16-rounded
 * values. vsum, q, out and the scratch stay f32.
 */
import { splitStart } from "./common/split";
import { hsumF32 } from "./common/simd";
import { ld1, ld4 } from "./common/kv_elem";
import { attn_f32_keys, attn_select_top, f32Key, f32KeysV } from "./attention_select";

/**
 * Positions per tile of the approximate-score accumulation, over the G heads of a group (128 KB of accumulators,
 * in L2). Measured: long tiles beat L1-sized ones (2048 positions: 1.96 ms vs 8192: 1.44 ms for r = 16 at
 * S = 8192, 32 heads) — the Kt rows stream better in long runs than the accumulators gain from L1.
 */
const TILE: i32 = 32768;

const LOG2E: f32 = 1.44269504088896341;
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440e-4;
const P0: f32 = 1.9875691500e-4;
const P1: f32 = 1.3981999507e-3;
const P2: f32 = 8.3334519073e-3;
const P3: f32 = 4.1665795894e-2;
const P4: f32 = 1.6666665459e-1;
const P5: f32 = 5.0000001201e-1;
/** 1.5·2^23 + 127: for a whole fx in [-126, 127] (x in [-87, 88]), fx + EXP_BIAS has the bits 0x4b40007f + fx. */
const EXP_BIAS: f32 = 12583039.0;

/**
 * {@link expV}'s constants, each splatted to four lanes, in memory: V8 rebuilds a `v128.const` at every use inside
 * a loop (several instructions each), while a load is one; measured 1.7× faster exp over 8192 values.
 */
const EXP_C = memory.data<f32>([
  -87.0, -87.0, -87.0, -87.0, 88.0, 88.0, 88.0, 88.0, LOG2E, LOG2E, LOG2E, LOG2E, 0.5, 0.5, 0.5, 0.5,
  LN2_HI, LN2_HI, LN2_HI, LN2_HI, LN2_LO, LN2_LO, LN2_LO, LN2_LO, P0, P0, P0, P0, P1, P1, P1, P1,
  P2, P2, P2, P2, P3, P3, P3, P3, P4, P4, P4, P4, P5, P5, P5, P5,
  1.0, 1.0, 1.0, 1.0, EXP_BIAS, EXP_BIAS, EXP_BIAS, EXP_BIAS,
]);

/** exp(x) for 4 lanes (Cephes expf: 2^n · polynomial, ~1 ulp), x clamped to [-87, 88]; `c` = {@link EXP_C}. */
// @ts-ignore: decorator
@inline 
function expV(x0: v128, c: usize): v128 {
  // pmin/pmax are single instructions (min/max add NaN and ±0 fix-ups); the scores are never NaN.
  const x = f32x4.pmin(f32x4.pmax(x0, v128.load(c)), v128.load(c, 16));
  const fx = f32x4.floor(f32x4.add(f32x4.mul(x, v128.load(c, 32)), v128.load(c, 48)));
  let r = f32x4.sub(x, f32x4.mul(fx, v128.load(c, 64)));
  r = f32x4.sub(r, f32x4.mul(fx, v128.load(c, 80)));
  let p = f32x4.add(f32x4.mul(v128.load(c, 96), r), v128.load(c, 112));
  p = f32x4.add(f32x4.mul(p, r), v128.load(c, 128));
  p = f32x4.add(f32x4.mul(p, r), v128.load(c, 144));
  p = f32x4.add(f32x4.mul(p, r), v128.load(c, 160));
  p = f32x4.add(f32x4.mul(p, r), v128.load(c, 176));
  p = f32x4.mul(p, f32x4.mul(r, r));
  p = f32x4.add(f32x4.add(p, r), v128.load(c, 192));
  // 2^fx: shifting the bits of fx + EXP_BIAS left by 23 drops the 0x4b400000 (no float → int conversion).
  return f32x4.mul(p, i32x4.shl(f32x4.add(fx, v128.load(c, 208)), 23));
}

/** Scalar twin of {@link expV}, operation for operation (used for the tails). */
// @ts-ignore: decorator
@inline 
function expS(x0: f32): f32 {
  const x = min(max(x0, <f32> -87.0), <f32> 88.0);
  const fx = Mathf.floor(x * LOG2E + <f32> 0.5);
  let r = x - fx * LN2_HI;
  r = r - fx * LN2_LO;
  let p = P0 * r + P1;
  p = p * r + P2;
  p = p * r + P3;
  p = p * r + P4;
  p = p * r + P5;
  p = p * (r * r);
  p = p + r + <f32> 1.0;
  return p * reinterpret<f32>((<i32> fx + 127) << 23);
}

/** Maximum of `n` f32 at `a` (n ≥ 1). */
function maxF32(a: usize, n: i32): f32 {
  let m = f32x4.splat(-Infinity);
  let i = 0;
  for (; i + 4 <= n; i += 4) m = f32x4.pmax(m, v128.load(a + (<usize> i << 2)));
  let s = max(
    max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)),
    max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)),
  );
  for (; i < n; i++) s = max(s, load<f32>(a + (<usize> i << 2)));
  return s;
}

/** a[i] = exp(a[i] − m) in place; returns Σ a[i] (one 4-lane accumulator, lanes combined (0+2)+(1+3), then the tail). */
function expSubSum(a: usize, n: i32, m: f32): f32 {
  const mv = f32x4.splat(m);
  let z = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const p = a + (<usize> i << 2);
    const e = expV(f32x4.sub(v128.load(p), mv), EXP_C);
    v128.store(p, e);
    z = f32x4.add(z, e);
  }
  let s = hsumF32(z);
  for (; i < n; i++) {
    const p = a + (<usize> i << 2);
    const e = expS(load<f32>(p) - m);
    store<f32>(p, e);
    s += e;
  }
  return s;
}

/**
 * Dot products of `a` with four rows `b0..b3` (n f32 each), returned as the four lanes. The four rows are read in
 * the same loop so their cache misses overlap. Each lane's sum: 4-lane partial sums combined (0+2)+(1+3), then the
 * scalar tail.
 */
// @ts-ignore: decorator
@inline function dot4<T>(a: usize, b0: usize, b1: usize, b2: usize, b3: usize, n: i32): v128 {
  const E = <usize> sizeof<T>();
  let s0 = f32x4.splat(0);
  let s1 = f32x4.splat(0);
  let s2 = f32x4.splat(0);
  let s3 = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize> i << 2, ob = <usize> i * E;
    const x = v128.load(a + o);
    s0 = f32x4.add(s0, f32x4.mul(x, ld4<T>(b0 + ob)));
    s1 = f32x4.add(s1, f32x4.mul(x, ld4<T>(b1 + ob)));
    s2 = f32x4.add(s2, f32x4.mul(x, ld4<T>(b2 + ob)));
    s3 = f32x4.add(s3, f32x4.mul(x, ld4<T>(b3 + ob)));
  }
  // Transpose-and-add: lane k of the result is hsum(s_k) in the (0+2)+(1+3) order.
  const t0 = f32x4.add(s0, i32x4.shuffle(s0, s0, 2, 3, 0, 1));
  const t1 = f32x4.add(s1, i32x4.shuffle(s1, s1, 2, 3, 0, 1));
  const t2 = f32x4.add(s2, i32x4.shuffle(s2, s2, 2, 3, 0, 1));
  const t3 = f32x4.add(s3, i32x4.shuffle(s3, s3, 2, 3, 0, 1));
  const e = i32x4.shuffle(i32x4.shuffle(t0, t1, 0, 4, 0, 4), i32x4.shuffle(t2, t3, 0, 4, 0, 4), 0, 1, 4, 5);
  const f = i32x4.shuffle(i32x4.shuffle(t0, t1, 1, 5, 1, 5), i32x4.shuffle(t2, t3, 1, 5, 1, 5), 0, 1, 4, 5);
  const r = f32x4.add(e, f);
  if (i == n) return r;
  let c0 = f32x4.extract_lane(r, 0);
  let c1 = f32x4.extract_lane(r, 1);
  let c2 = f32x4.extract_lane(r, 2);
  let c3 = f32x4.extract_lane(r, 3);
  for (; i < n; i++) {
    const o = <usize> i << 2, ob = <usize> i * E;
    const x = load<f32>(a + o);
    c0 += x * ld1<T>(b0 + ob);
    c1 += x * ld1<T>(b1 + ob);
    c2 += x * ld1<T>(b2 + ob);
    c3 += x * ld1<T>(b3 + ob);
  }
  return f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(c0), 1, c1), 2, c2), 3, c3);
}

/**
 * Loads every cache line of the selected rows once, in a loop of independent loads, so that many misses are in
 * flight at once (the compute loops that follow keep only a few rows in flight); the rows of one group then sit in
 * L2 for the exact-attention pass. The loaded bits are folded into `sink` so the loads are not dead code.
 */
function touchRows(sel: usize, n: i32, base: usize, rowBytes: usize, sink: usize): void {
  let acc = i32x4.splat(0);
  for (let j = 0; j < n; j++) {
    const row = base + <usize> load<i32>(sel + (<usize> j << 2)) * rowBytes;
    for (let o: usize = 0; o < rowBytes; o += 64) acc = v128.or(acc, v128.load(row + o));
  }
  v128.store(sink, acc);
}

/** y[i] += w0·x0[i] + w1·x1[i] + w2·x2[i] + w3·x3[i] for `n` values (w = the four lanes of `w`; x of type T). */
// @ts-ignore: decorator
@inline function axpy4<T>(y: usize, x0: usize, x1: usize, x2: usize, x3: usize, w: v128, n: i32): void {
  const E = <usize> sizeof<T>();
  const w0 = f32x4.splat(f32x4.extract_lane(w, 0));
  const w1 = f32x4.splat(f32x4.extract_lane(w, 1));
  const w2 = f32x4.splat(f32x4.extract_lane(w, 2));
  const w3 = f32x4.splat(f32x4.extract_lane(w, 3));
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize> i << 2, ox = <usize> i * E;
    const a = f32x4.add(f32x4.mul(w0, ld4<T>(x0 + ox)), f32x4.mul(w1, ld4<T>(x1 + ox)));
    const b = f32x4.add(f32x4.mul(w2, ld4<T>(x2 + ox)), f32x4.mul(w3, ld4<T>(x3 + ox)));
    v128.store(y + o, f32x4.add(v128.load(y + o), f32x4.add(a, b)));
  }
  for (; i < n; i++) {
    const o = <usize> i << 2, ox = <usize> i * E;
    const a = f32x4.extract_lane(w, 0) * ld1<T>(x0 + ox) + f32x4.extract_lane(w, 1) * ld1<T>(x1 + ox);
    const b = f32x4.extract_lane(w, 2) * ld1<T>(x2 + ox) + f32x4.extract_lane(w, 3) * ld1<T>(x3 + ox);
    store<f32>(y + o, load<f32>(y + o) + (a + b));
  }
}

/** y[i] += a·x[i] for `n` values (y f32, x of type T). */
// @ts-ignore: decorator
@inline 
function axpy<T>(y: usize, x: usize, a: f32, n: i32): void {
  const E = <usize> sizeof<T>();
  const av = f32x4.splat(a);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize> i << 2;
    v128.store(y + o, f32x4.add(v128.load(y + o), f32x4.mul(av, ld4<T>(x + <usize> i * E))));
  }
  for (; i < n; i++) {
    store<f32>(y + (<usize> i << 2), load<f32>(y + (<usize> i << 2)) + a * ld1<T>(x + <usize> i * E));
  }
}

// @ts-ignore: decorator
@inline 
function pad4(n: i32): i32 {
  return (n + 3) & ~3;
}

/**
 * Exact attention of the G query heads `q` `[G][d]` of one KV group over the rows `sel[0..nSel)` of K and V:
 * `out[h] = α_h · softmax(q_h·K[sel]/√d) · V[sel]`. Leaves the weights (softmax × α) in `wts` `[G][ws]` (ws a
 * multiple of 4, ≥ nSel). Each K and V row is read once for the whole group; `touch` first loads the rows in a
 * loop of independent loads (worth it when they are scattered). `sink`: 16 bytes of scratch.
 */
function gatherAttention<T>(
  q: usize, out: usize, kc: usize, vc: usize, sel: usize, nSel: i32, G: i32, d: i32, dv: i32,
  wts: usize, ws: i32, alpha: usize, touch: bool, sink: usize,
): void {
  const E = <usize> sizeof<T>();
  const kRow = <usize> d * E, vRow = <usize> dv * E;
  const scale: f32 = <f32> 1.0 / Mathf.sqrt(<f32> d);
  // Rows are taken four at a time: their cache misses overlap (one row at a time is latency-bound on a CPU,
  // the selected rows being scattered), and in the V pass each output is loaded and stored once per four rows.
  if (touch) touchRows(sel, nSel, kc, kRow, sink);
  let j = 0;
  for (; j + 4 <= nSel; j += 4) {
    const p = sel + (<usize> j << 2);
    const r0 = kc + <usize> load<i32>(p) * kRow;
    const r1 = kc + <usize> load<i32>(p, 4) * kRow;
    const r2 = kc + <usize> load<i32>(p, 8) * kRow;
    const r3 = kc + <usize> load<i32>(p, 12) * kRow;
    for (let h = 0; h < G; h++) {
      const w = wts + ((<usize> h * ws + <usize> j) << 2);
      v128.store(w, f32x4.mul(dot4<T>(q + ((<usize> (h * d)) << 2), r0, r1, r2, r3, d), f32x4.splat(scale)));
    }
  }
  for (; j < nSel; j++) {
    const row = kc + <usize> load<i32>(sel + (<usize> j << 2)) * kRow;
    for (let h = 0; h < G; h++) {
      store<f32>(wts + ((<usize> h * ws + <usize> j) << 2), f32x4.extract_lane(dot4<T>(q + ((<usize> (h * d)) << 2), row, row, row, row, d), 0) * scale);
    }
  }
  // Per head: softmax weights scaled by α.
  for (let h = 0; h < G; h++) {
    const w = wts + ((<usize> h * ws) << 2);
    const a = load<f32>(alpha + (<usize> h << 2));
    const ya = a / expSubSum(w, nSel, maxF32(w, nSel));
    const yv = f32x4.splat(ya);
    let j = 0;
    for (; j + 4 <= nSel; j += 4) v128.store(w + (<usize> j << 2), f32x4.mul(v128.load(w + (<usize> j << 2)), yv));
    for (; j < nSel; j++) store<f32>(w + (<usize> j << 2), load<f32>(w + (<usize> j << 2)) * ya);
    memory.fill(out + ((<usize> (h * dv)) << 2), 0, <usize> dv << 2);
  }
  if (touch) touchRows(sel, nSel, vc, vRow, sink);
  j = 0;
  for (; j + 4 <= nSel; j += 4) {
    const p = sel + (<usize> j << 2);
    const r0 = vc + <usize> load<i32>(p) * vRow;
    const r1 = vc + <usize> load<i32>(p, 4) * vRow;
    const r2 = vc + <usize> load<i32>(p, 8) * vRow;
    const r3 = vc + <usize> load<i32>(p, 12) * vRow;
    for (let h = 0; h < G; h++) {
      axpy4<T>(out + ((<usize> (h * dv)) << 2), r0, r1, r2, r3, v128.load(wts + ((<usize> h * ws + <usize> j) << 2)), dv);
    }
  }
  for (; j < nSel; j++) {
    const row = vc + <usize> load<i32>(sel + (<usize> j << 2)) * vRow;
    for (let h = 0; h < G; h++) {
      axpy<T>(out + ((<usize> (h * dv)) << 2), row, load<f32>(wts + ((<usize> h * ws + <usize> j) << 2)), dv);
    }
  }
}

/**
 * Bytes of scratch one KV group needs (the stride between groups' scratch): ŝ and the exact scores for G heads
 * over nCtx positions, keys/candidates/selection over nCtx, the 2048-word select histogram, and d-sized
 * buffers for the top-r step. `lib/attention/sparq.ts` mirrors this formula.
 */
export function sparq_scratch_bytes(nCtx: i32, G: i32, d: i32): i32 {
  const words = 2 * G * pad4(nCtx) + 3 * pad4(nCtx) + 2048 + 4 * pad4(d) + 2 * pad4(G);
  return ((words << 2) + 63) & ~63;
}

/**
 * One SparQ decode step for all heads. Pointers are byte offsets: `q`, `out` `[nHead][d]`/`[nHead][dv]`;
 * `kc` K `[nKv][nCtx][d]`, `vc` V `[nKv][nCtx][dv]`, `kt` Kt `[nKv][d][nCtx]`, `vsum` `[nKv][dv]` (read only with
 * `realloc`), S positions stored (the current token is S−1). `r`, `k`, `window` as in the module comment
 * (window ≤ k). `keepCurrent` 1: the current token is always selected on top of k (research code); 0: it competes
 * like any other position and min(k, S) are kept (the simplified algorithm of the llama.cpp fork, window 0). `scratch` + g·`stride` is group g's scratch ({@link sparq_scratch_bytes}).
 */
// @ts-ignore: decorator
@inline function sparqDecode<T>(
  q: usize,
  out: usize,
  kc: usize,
  vc: usize,
  kt: usize,
  vsum: usize,
  nCtx: i32,
  S: i32,
  nHead: i32,
  nKv: i32,
  d: i32,
  dv: i32,
  r: i32,
  k: i32,
  window: i32,
  realloc: i32,
  keepCurrent: i32,
  scratch: usize,
  stride: i32,
  ith: i32,
  nth: i32,
): void {
  const g0 = splitStart(nKv, ith, nth);
  const g1 = splitStart(nKv, ith + 1, nth);
  const G = nHead / nKv;
  const E = <usize> sizeof<T>();
  for (let g = g0; g < g1; g++) {
    sparqGroup<T>(
      q + ((<usize> (g * G * d)) << 2),
      out + ((<usize> (g * G * dv)) << 2),
      kc + <usize> g * <usize> nCtx * <usize> d * E,
      vc + <usize> g * <usize> nCtx * <usize> dv * E,
      kt + <usize> g * <usize> d * <usize> nCtx * E,
      vsum + ((<usize> (g * dv)) << 2),
      nCtx,
      S,
      G,
      d,
      dv,
      r,
      k,
      window,
      realloc,
      keepCurrent,
      scratch + <usize> g * <usize> stride,
    );
  }
}

/** {@link sparqDecode} over an f32 cache. */
export function sparq_decode(
  q: usize, out: usize, kc: usize, vc: usize, kt: usize, vsum: usize, nCtx: i32, S: i32, nHead: i32, nKv: i32, d: i32,
  dv: i32, r: i32, k: i32, window: i32, realloc: i32, keepCurrent: i32, scratch: usize, stride: i32, ith: i32,
  nth: i32,
): void {
  sparqDecode<f32>(q, out, kc, vc, kt, vsum, nCtx, S, nHead, nKv, d, dv, r, k, window, realloc, keepCurrent, scratch,
    stride, ith, nth);
}

/** {@link sparqDecode} over an f16 cache (K, V and Kt hold f16 bits; vsum is f32). */
export function sparq_decode_f16(
  q: usize, out: usize, kc: usize, vc: usize, kt: usize, vsum: usize, nCtx: i32, S: i32, nHead: i32, nKv: i32, d: i32,
  dv: i32, r: i32, k: i32, window: i32, realloc: i32, keepCurrent: i32, scratch: usize, stride: i32, ith: i32,
  nth: i32,
): void {
  sparqDecode<u16>(q, out, kc, vc, kt, vsum, nCtx, S, nHead, nKv, d, dv, r, k, window, realloc, keepCurrent, scratch,
    stride, ith, nth);
}

function sparqGroup<T>(
  q: usize,
  out: usize,
  kc: usize,
  vc: usize,
  kt: usize,
  vsum: usize,
  nCtx: i32,
  S: i32,
  G: i32,
  d: i32,
  dv: i32,
  r: i32,
  k: i32,
  window: i32,
  realloc: i32,
  keepCurrent: i32,
  base: usize,
): void {
  const E = <usize> sizeof<T>();
  const nc4 = <usize> pad4(nCtx);
  const shat = base; // [G][nc4] f32: ŝ, then e = exp(ŝ − max)
  const wts = shat + ((<usize> G * nc4) << 2); // [G][nc4] f32: group score, then exact scores
  const keys = wts + ((<usize> G * nc4) << 2); // [nc4] u32
  const cand = keys + (nc4 << 2); // [nc4] u32
  const sel = cand + (nc4 << 2); // [nc4] i32
  const hist = sel + (nc4 << 2); // [2048] u32
  const absq = hist + (2048 << 2); // [d] f32
  const idx1 = absq + (<usize> pad4(d) << 2); // [d] i32
  const keysD = idx1 + (<usize> pad4(d) << 2); // [d] u32
  const candD = keysD + (<usize> pad4(d) << 2); // [d] u32
  const alpha = candD + (<usize> pad4(d) << 2); // [G] f32

  // Forced: the `window` newest positions, plus the current token when keepCurrent (the research code's k + 1).
  const forced = window + keepCurrent;
  const nSel = min(k + keepCurrent, S);
  const sparse = nSel < S;
  if (!sparse) {
    for (let j = 0; j < S; j++) store<i32>(sel + (<usize> j << 2), j);
  } else {
    // Step 1: the r largest components of Σ_heads |q|.
    for (let i = 0; i < d; i++) {
      let a: f32 = 0;
      for (let h = 0; h < G; h++) a += abs(load<f32>(q + ((<usize> (h * d + i)) << 2)));
      store<f32>(absq + (<usize> i << 2), a);
    }
    attn_f32_keys(absq, d, keysD);
    const nr = attn_select_top(keysD, d, r, hist, candD, idx1);

    // Step 2: approximate logits from contiguous Kt rows, four rows per pass (acc += (q0·k0 + q1·k1) +
    // (q2·k2 + q3·k3), then single rows for r mod 4), one tile of positions at a time.
    const tile = max(256, (TILE / G) & ~3);
    const nr4 = nr & ~3;
    for (let t0 = 0; t0 < S; t0 += tile) {
      const t1 = min(S, t0 + tile);
      for (let h = 0; h < G; h++) memory.fill(shat + ((<usize> h * nc4 + <usize> t0) << 2), 0, <usize> (t1 - t0) << 2);
      for (let j = 0; j < nr4; j += 4) {
        const p = idx1 + (<usize> j << 2);
        const i0 = load<i32>(p), i1 = load<i32>(p, 4), i2 = load<i32>(p, 8), i3 = load<i32>(p, 12);
        const k0 = kt + <usize> i0 * <usize> nCtx * E;
        const k1 = kt + <usize> i1 * <usize> nCtx * E;
        const k2 = kt + <usize> i2 * <usize> nCtx * E;
        const k3 = kt + <usize> i3 * <usize> nCtx * E;
        // f16 with G > 1: convert each four positions of the four rows once and apply them to every head (heads
        // inner; their coefficients splatted into `hist`, free during this step). Same operations per
        // accumulator as below, so the same results; the tail positions are left to the loop below.
        let tv = t0;
        if (sizeof<T>() == 2 && G > 1) {
          for (let h = 0; h < G; h++) {
            const qh = q + ((<usize> (h * d)) << 2);
            const cf = hist + (<usize> h << 6);
            v128.store(cf, f32x4.splat(load<f32>(qh + (<usize> i0 << 2))));
            v128.store(cf, f32x4.splat(load<f32>(qh + (<usize> i1 << 2))), 16);
            v128.store(cf, f32x4.splat(load<f32>(qh + (<usize> i2 << 2))), 32);
            v128.store(cf, f32x4.splat(load<f32>(qh + (<usize> i3 << 2))), 48);
          }
          for (; tv + 4 <= t1; tv += 4) {
            const o = <usize> tv << 2, ok = <usize> tv * E;
            const x0 = ld4<T>(k0 + ok), x1 = ld4<T>(k1 + ok), x2 = ld4<T>(k2 + ok), x3 = ld4<T>(k3 + ok);
            for (let h = 0; h < G; h++) {
              const cf = hist + (<usize> h << 6);
              const x = f32x4.add(f32x4.mul(v128.load(cf), x0), f32x4.mul(v128.load(cf, 16), x1));
              const y = f32x4.add(f32x4.mul(v128.load(cf, 32), x2), f32x4.mul(v128.load(cf, 48), x3));
              const acc = shat + ((<usize> h * nc4) << 2) + o;
              v128.store(acc, f32x4.add(v128.load(acc), f32x4.add(x, y)));
            }
          }
        }
        for (let h = 0; h < G; h++) {
          const qh = q + ((<usize> (h * d)) << 2);
          const a0 = load<f32>(qh + (<usize> i0 << 2)), a1 = load<f32>(qh + (<usize> i1 << 2));
          const a2 = load<f32>(qh + (<usize> i2 << 2)), a3 = load<f32>(qh + (<usize> i3 << 2));
          const v0 = f32x4.splat(a0), v1 = f32x4.splat(a1), v2 = f32x4.splat(a2), v3 = f32x4.splat(a3);
          const acc = shat + ((<usize> h * nc4) << 2);
          let t = tv;
          for (; t + 4 <= t1; t += 4) {
            const o = <usize> t << 2, ok = <usize> t * E;
            const x = f32x4.add(f32x4.mul(v0, ld4<T>(k0 + ok)), f32x4.mul(v1, ld4<T>(k1 + ok)));
            const y = f32x4.add(f32x4.mul(v2, ld4<T>(k2 + ok)), f32x4.mul(v3, ld4<T>(k3 + ok)));
            v128.store(acc + o, f32x4.add(v128.load(acc + o), f32x4.add(x, y)));
          }
          for (; t < t1; t++) {
            const o = <usize> t << 2, ok = <usize> t * E;
            const x = a0 * ld1<T>(k0 + ok) + a1 * ld1<T>(k1 + ok);
            const y = a2 * ld1<T>(k2 + ok) + a3 * ld1<T>(k3 + ok);
            store<f32>(acc + o, load<f32>(acc + o) + (x + y));
          }
        }
      }
      for (let j = nr4; j < nr; j++) {
        const i = load<i32>(idx1 + (<usize> j << 2));
        const row = kt + <usize> i * <usize> nCtx * E;
        for (let h = 0; h < G; h++) {
          const qi = load<f32>(q + ((<usize> (h * d + i)) << 2));
          const qv = f32x4.splat(qi);
          const acc = shat + ((<usize> h * nc4) << 2);
          let t = t0;
          for (; t + 4 <= t1; t += 4) {
            const o = <usize> t << 2;
            v128.store(acc + o, f32x4.add(v128.load(acc + o), f32x4.mul(qv, ld4<T>(row + <usize> t * E))));
          }
          for (; t < t1; t++) {
            const o = <usize> t << 2;
            store<f32>(acc + o, load<f32>(acc + o) + qi * ld1<T>(row + <usize> t * E));
          }
        }
      }
    }
    for (let h = 0; h < G; h++) {
      const qh = q + ((<usize> (h * d)) << 2);
      let l1: f32 = 0;
      for (let i = 0; i < d; i++) l1 += abs(load<f32>(qh + (<usize> i << 2)));
      let l1sel: f32 = 0;
      for (let j = 0; j < nr; j++) l1sel += abs(load<f32>(qh + (<usize> load<i32>(idx1 + (<usize> j << 2)) << 2)));
      const tau: f32 = l1 > 0 ? Mathf.sqrt(<f32> d * l1sel / l1) : 1;
      const acc = shat + ((<usize> h * nc4) << 2);
      const tv = f32x4.splat(tau);
      // Fused into this pass: the max of ŝ (step 3's, parked in alpha[h]) and, for G = 1, the keys (step 4's).
      let mv = f32x4.splat(-Infinity);
      let t = 0;
      for (; t + 4 <= S; t += 4) {
        const x = f32x4.div(v128.load(acc + (<usize> t << 2)), tv);
        v128.store(acc + (<usize> t << 2), x);
        mv = f32x4.pmax(mv, x);
        if (G == 1) v128.store(keys + (<usize> t << 2), f32KeysV(x));
      }
      let m = max(
        max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)),
        max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)),
      );
      for (; t < S; t++) {
        const x = load<f32>(acc + (<usize> t << 2)) / tau;
        store<f32>(acc + (<usize> t << 2), x);
        m = max(m, x);
        if (G == 1) store<u32>(keys + (<usize> t << 2), f32Key(x));
      }
      store<f32>(alpha + (<usize> h << 2), m);
    }

    // Step 3: the approximate softmax (only when α or a group sum needs it); alpha[h] holds 1/Z for now.
    if (realloc || G > 1) {
      for (let h = 0; h < G; h++) {
        const a = shat + ((<usize> h * nc4) << 2);
        store<f32>(alpha + (<usize> h << 2), <f32> 1.0 / expSubSum(a, S, load<f32>(alpha + (<usize> h << 2))));
      }
    }

    // Step 4: group score over the candidates (all but the current token and the window).
    const nCand = S - forced;
    if (G > 1) {
      for (let h = 0; h < G; h++) {
        const e = shat + ((<usize> h * nc4) << 2);
        const iz = load<f32>(alpha + (<usize> h << 2));
        const izv = f32x4.splat(iz);
        let t = 0;
        if (h == 0) {
          for (; t + 4 <= nCand; t += 4) {
            v128.store(wts + (<usize> t << 2), f32x4.mul(v128.load(e + (<usize> t << 2)), izv));
          }
          for (; t < nCand; t++) store<f32>(wts + (<usize> t << 2), load<f32>(e + (<usize> t << 2)) * iz);
        } else {
          for (; t + 4 <= nCand; t += 4) {
            const o = <usize> t << 2;
            v128.store(wts + o, f32x4.add(v128.load(wts + o), f32x4.mul(v128.load(e + o), izv)));
          }
          for (; t < nCand; t++) {
            const o = <usize> t << 2;
            store<f32>(wts + o, load<f32>(wts + o) + load<f32>(e + o) * iz);
          }
        }
      }
      attn_f32_keys(wts, nCand, keys);
    }

    // Step 5: top (nSel − forced) of the candidates, then the forced newest positions.
    const c = attn_select_top(keys, nCand, nSel - forced, hist, cand, sel);
    for (let t = nCand; t < S; t++) store<i32>(sel + (<usize> (c + t - nCand) << 2), t);

    if (realloc) {
      for (let h = 0; h < G; h++) {
        const e = shat + ((<usize> h * nc4) << 2);
        let sum: f32 = 0;
        for (let j = 0; j < nSel; j++) sum += load<f32>(e + (<usize> load<i32>(sel + (<usize> j << 2)) << 2));
        store<f32>(alpha + (<usize> h << 2), sum * load<f32>(alpha + (<usize> h << 2)));
      }
    }
  }

  // Step 6: exact attention over the selected rows, weights scaled by α (1 without reallocation or when every
  // position is kept).
  for (let h = 0; h < G; h++) {
    store<f32>(alpha + (<usize> h << 2), sparse && realloc ? load<f32>(alpha + (<usize> h << 2)) : <f32> 1);
  }
  gatherAttention<T>(q, out, kc, vc, sel, nSel, G, d, dv, wts, <i32> nc4, alpha, sparse, hist);
  // Reallocation: out += (1 − α)·vsum/S.
  if (sparse && realloc) {
    const invS: f32 = <f32> 1.0 / <f32> S;
    for (let h = 0; h < G; h++) {
      const vb = (<f32> 1.0 - load<f32>(alpha + (<usize> h << 2))) * invS;
      axpy<f32>(out + ((<usize> (h * dv)) << 2), vsum, vb, dv);
    }
  }
}

/**
 * Exact attention over a given set of rows per KV group — the baselines' decode step (StreamingLLM's sinks and
 * window, H2O's kept set). Group g attends to `sel[g·selStride ..][0 .. cnt[g])` (i32 positions, ascending) and
 * leaves its softmax weights in `wts` `[nKv][G][selStride]` (selStride a multiple of 4). `aux`: `nKv·(pad4(G)+4)`
 * f32 of scratch. Parallel over KV groups like `sparq_decode`.
 */
// @ts-ignore: decorator
@inline function attnRowsDecode<T>(
  q: usize,
  out: usize,
  kc: usize,
  vc: usize,
  sel: usize,
  cnt: usize,
  selStride: i32,
  nCtx: i32,
  nHead: i32,
  nKv: i32,
  d: i32,
  dv: i32,
  wts: usize,
  aux: usize,
  ith: i32,
  nth: i32,
): void {
  const G = nHead / nKv;
  const E = <usize> sizeof<T>();
  const g0 = splitStart(nKv, ith, nth);
  const g1 = splitStart(nKv, ith + 1, nth);
  for (let g = g0; g < g1; g++) {
    const alpha = aux + ((<usize> (g * (pad4(G) + 4))) << 2);
    for (let h = 0; h < G; h++) store<f32>(alpha + (<usize> h << 2), 1);
    gatherAttention<T>(
      q + ((<usize> (g * G * d)) << 2),
      out + ((<usize> (g * G * dv)) << 2),
      kc + <usize> g * <usize> nCtx * <usize> d * E,
      vc + <usize> g * <usize> nCtx * <usize> dv * E,
      sel + ((<usize> g * <usize> selStride) << 2),
      load<i32>(cnt + (<usize> g << 2)),
      G,
      d,
      dv,
      wts + ((<usize> g * <usize> G * <usize> selStride) << 2),
      selStride,
      alpha,
      true,
      alpha + ((<usize> pad4(G)) << 2),
    );
  }
}

/** {@link attnRowsDecode} over an f32 cache. */
export function attn_rows_decode(
  q: usize, out: usize, kc: usize, vc: usize, sel: usize, cnt: usize, selStride: i32, nCtx: i32, nHead: i32, nKv: i32,
  d: i32, dv: i32, wts: usize, aux: usize, ith: i32, nth: i32,
): void {
  attnRowsDecode<f32>(q, out, kc, vc, sel, cnt, selStride, nCtx, nHead, nKv, d, dv, wts, aux, ith, nth);
}

/** {@link attnRowsDecode} over an f16 cache (K and V hold f16 bits). */
export function attn_rows_decode_f16(
  q: usize, out: usize, kc: usize, vc: usize, sel: usize, cnt: usize, selStride: i32, nCtx: i32, nHead: i32, nKv: i32,
  d: i32, dv: i32, wts: usize, aux: usize, ith: i32, nth: i32,
): void {
  attnRowsDecode<u16>(q, out, kc, vc, sel, cnt, selStride, nCtx, nHead, nKv, d, dv, wts, aux, ith, nth);
}
