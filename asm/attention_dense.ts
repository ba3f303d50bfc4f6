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
import { fmadd, hsum8 } from "./common/simd";
import { expGgml } from "./common/exp_ggml";

/**
 * Σ a[i]·b[i] in the order of ggml's AVX2 `ggml_vec_dot_f32`: four 8-lane accumulators over steps of 32, summed (0+2)+(1+3), halves added, then
 * `_mm_hadd_ps` twice: (t0+t1)+(t2+t3); the last d mod 32 products are added one by one.
 */
// @ts-ignore: decorator
@inline
function dotVec<T>(a: usize, b: usize, d: i32): f32 {
  const E = <usize> sizeof<T>();
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
  let i = 0;
  for (; i + 32 <= d; i += 32) {
    const o = a + (<usize> i << 2);
    const ob = b + <usize> i * E;
    a0 = fmadd(v128.load(o), ld4<T>(ob), a0);
    b0 = fmadd(v128.load(o, 16), ld4<T>(ob + 4 * E), b0);
    a1 = fmadd(v128.load(o, 32), ld4<T>(ob + 8 * E), a1);
    b1 = fmadd(v128.load(o, 48), ld4<T>(ob + 12 * E), b1);
    a2 = fmadd(v128.load(o, 64), ld4<T>(ob + 16 * E), a2);
    b2 = fmadd(v128.load(o, 80), ld4<T>(ob + 20 * E), b2);
    a3 = fmadd(v128.load(o, 96), ld4<T>(ob + 24 * E), a3);
    b3 = fmadd(v128.load(o, 112), ld4<T>(ob + 28 * E), b3);
  }
  const t = f32x4.add(
    f32x4.add(f32x4.add(a0, a2), f32x4.add(a1, a3)),
    f32x4.add(f32x4.add(b0, b2), f32x4.add(b1, b3)),
  );
  let s = (f32x4.extract_lane(t, 0) + f32x4.extract_lane(t, 1)) + (f32x4.extract_lane(t, 2) + f32x4.extract_lane(t, 3));
  for (; i < d; i += 4) {
    const pr = f32x4.mul(v128.load(a + (<usize> i << 2)), ld4<T>(b + <usize> i * E));
    s += f32x4.extract_lane(pr, 0);
    s += f32x4.extract_lane(pr, 1);
    s += f32x4.extract_lane(pr, 2);
    s += f32x4.extract_lane(pr, 3);
  }
  return s;
}

/**
 * In-place softmax of `n` floats at `s` (n ≥ 1), as ggml's `ggml_vec_soft_max_f32` + scale computes it: exp by
 * {@link expGgml} in blocks of eight positions, each block summed in f32 (tinyBLAS-style tree) and added to an f64
 * total, then every value × f32(1 / total). Positions past `n` count as masked (exp = 0).
 */
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
  let sum: f64 = 0;
  i = 0;
  for (; i + 8 <= n; i += 8) {
    const p = s + (<usize> i << 2);
    const lo = expGgml(f32x4.sub(v128.load(p), mv));
    const hi = expGgml(f32x4.sub(v128.load(p, 16), mv));
    v128.store(p, lo);
    v128.store(p, hi, 16);
    sum += <f64> hsum8(lo, hi);
  }
  if (i < n) {
    // The last partial block: masked lanes are 0 (never read past n: the buffer may end there).
    let lo = f32x4.splat(0), hi = f32x4.splat(0);
    const p = s + (<usize> i << 2);
    const r = n - i;
    lo = f32x4.replace_lane(lo, 0, load<f32>(p) - mx);
    if (r > 1) lo = f32x4.replace_lane(lo, 1, load<f32>(p, 4) - mx);
    if (r > 2) lo = f32x4.replace_lane(lo, 2, load<f32>(p, 8) - mx);
    if (r > 3) lo = f32x4.replace_lane(lo, 3, load<f32>(p, 12) - mx);
    if (r > 4) hi = f32x4.replace_lane(hi, 0, load<f32>(p, 16) - mx);
    if (r > 5) hi = f32x4.replace_lane(hi, 1, load<f32>(p, 20) - mx);
    if (r > 6) hi = f32x4.replace_lane(hi, 2, load<f32>(p, 24) - mx);
    lo = expGgml(lo);
    hi = expGgml(hi);
    const lanes = i32x4(0, 1, 2, 3);
    lo = v128.and(lo, i32x4.lt_s(lanes, i32x4.splat(r)));
    hi = v128.and(hi, i32x4.lt_s(lanes, i32x4.splat(r - 4)));
    store<f32>(p, f32x4.extract_lane(lo, 0));
    if (r > 1) store<f32>(p, f32x4.extract_lane(lo, 1), 4);
    if (r > 2) store<f32>(p, f32x4.extract_lane(lo, 2), 8);
    if (r > 3) store<f32>(p, f32x4.extract_lane(lo, 3), 12);
    if (r > 4) store<f32>(p, f32x4.extract_lane(hi, 0), 16);
    if (r > 5) store<f32>(p, f32x4.extract_lane(hi, 1), 20);
    if (r > 6) store<f32>(p, f32x4.extract_lane(hi, 2), 24);
    sum += <f64> hsum8(lo, hi);
  }
  const invs = <f32> (1.0 / sum);
  const inv = f32x4.splat(invs);
  i = 0;
  for (; i + 4 <= n; i += 4) {
    const p = s + (<usize> i << 2);
    v128.store(p, f32x4.mul(v128.load(p), inv));
  }
  for (; i < n; i++) {
    const p = s + (<usize> i << 2);
    store<f32>(p, load<f32>(p) * invs);
  }
}

/** Rows per block of the decode weighted sum over cache rows read in place (128 KB of f32 rows of d = 128, in L2). */
const DBLOCK = 256;

/** Positions per f16 V block converted for G > 1 heads: 32 rows of d ≤ 128 floats (16 KB) stay in L1. */
const VBLOCK = 32;

/** Positions per V block read in place for G > 1 heads (7B GQA shape: 256 rows 1.22 s, 32 rows 1.47 s). */
const VBLOCK_IN_PLACE = 256;

/**
 * scores[g][p] = scale · q_g · K[p] for p in [0, nPos), each dot in ggml_vec_dot_f32's order ({@link dotVec}): llama.cpp
 * takes that path for q·K both in a prompt batch (q is a non-contiguous view) and in decode (llamafile's GEMM
 * declines a single column). Each K row is loaded once for the G heads that share it (f16: converted once).
 */
function scores<T>(
  q: usize, kBase: usize, sc: usize, G: i32, d: i32, nCtx: i32, nPos: i32, scale: f32, conv: usize,
): void {
  const qBytes = <usize> d << 2;
  const rowBytes = <usize> d * <usize> sizeof<T>();
  for (let p = 0; p < nPos; p++) {
    const kr = kBase + <usize> p * rowBytes;
    const out = sc + (<usize> p << 2);
    if (sizeof<T>() == 2 && G > 1) {
      cvtF16(conv, kr, d);
      for (let g = 0; g < G; g++) {
        store<f32>(out + ((<usize> g * <usize> nCtx) << 2), dotVec<f32>(q + <usize> g * qBytes, conv, d) * scale);
      }
    } else {
      for (let g = 0; g < G; g++) {
        store<f32>(out + ((<usize> g * <usize> nCtx) << 2), dotVec<T>(q + <usize> g * qBytes, kr, d) * scale);
      }
    }
  }
}

/** Row p's four values from column c on: f32 rows `stride` bytes apart at `base`, or f16 rows streamed from the cache. */
// @ts-ignore: decorator
@inline
function vload<T>(base: usize, stride: usize, p: i32, c: i32, conv: bool): v128 {
  if (sizeof<T>() == 2 && !conv) return ld4<T>(base + <usize> p * stride + (<usize> c << 1));
  return v128.load(base + <usize> p * stride + (<usize> c << 2));
}

/**
 * Four outputs of the weighted sum from their eight accumulators (a_j: the positions p ≡ j mod 8): llamafile
 * tinyBLAS's sum of the eight lanes, (t0 + t2) + (t1 + t3) with t_j = a_{j+4} + a_j.
 */
// @ts-ignore: decorator
@inline
function sum8Lanes(a0: v128, a1: v128, a2: v128, a3: v128, a4: v128, a5: v128, a6: v128, a7: v128): v128 {
  return f32x4.add(f32x4.add(f32x4.add(a4, a0), f32x4.add(a6, a2)), f32x4.add(f32x4.add(a5, a1), f32x4.add(a7, a3)));
}

/**
 * out_g = Σ_p w[g][p] · V[p] in llamafile tinyBLAS's order (llama.cpp computes kq·V as an F32 GEMM over the
 * positions): eight accumulators per output, position p in accumulator p mod 8, each a chain of fused
 * multiply-adds, summed at the end as {@link hsum8} does; between rows or blocks they wait in `accs` (G·8·d floats).
 * One head (MHA): the rows stream through once, each multiply-add reading and writing its accumulator in L1 — a
 * loop over a block's rows per column group strides a row (512 B) per step and maps the rows onto 8 of the L1's 64
 * sets (7B MHA shape, 512 tokens after 1536, one thread: 1.4–1.5 s against 1.9–3.0 s for 256-row blocks, 2.9 s for
 * 32-row blocks). G > 1 heads: V goes in blocks (VBLOCK_IN_PLACE rows read in place, or VBLOCK f16 rows converted
 * once), each used by the G heads while it is in cache, four columns (eight accumulators in registers) at a time.
 */
function weightedSum<T>(
  out: usize, vBase: usize, sc: usize, G: i32, d: i32, nCtx: i32, nPos: i32, conv: usize, accs: usize,
): void {
  const E = <usize> sizeof<T>();
  const outBytes = <usize> d << 2;
  const rowBytes = <usize> d * E;
  memory.fill(accs, 0, <usize> G * 8 * outBytes);
  const converted = sizeof<T>() == 2 && G > 1;
  if (G == 1) {
    // One head: rows in order, each streamed once, its weight splat once, every column's accumulator of class
    // p mod 8 read and written in `accs` (4 KB at d = 128: in L1). The same chains as the blocked loop below.
    for (let p = 0; p < nPos; p++) {
      const row = vBase + <usize> p * rowBytes;
      const ws = f32x4.splat(load<f32>(sc + (<usize> p << 2)));
      const acc = accs + (<usize> (p & 7)) * outBytes;
      for (let c = 0; c < d; c += 4) {
        const ac = acc + (<usize> c << 2);
        v128.store(ac, fmadd(ws, ld4<T>(row + <usize> c * E), v128.load(ac)));
      }
    }
    for (let c = 0; c < d; c += 4) {
      const ac = accs + (<usize> c << 2);
      v128.store(out + (<usize> c << 2), sum8Lanes(
        v128.load(ac), v128.load(ac + outBytes), v128.load(ac + 2 * outBytes), v128.load(ac + 3 * outBytes),
        v128.load(ac + 4 * outBytes), v128.load(ac + 5 * outBytes), v128.load(ac + 6 * outBytes), v128.load(ac + 7 * outBytes),
      ));
    }
    return;
  }
  const block = converted ? VBLOCK : VBLOCK_IN_PLACE;
  for (let p0 = 0; p0 < nPos; p0 += block) {
    const p1 = min(p0 + block, nPos);
    // f16 with G > 1: the block converted once into `conv` for the G heads (row p at vb + p·outBytes).
    let vb = vBase;
    let stride = rowBytes;
    if (converted) {
      cvtF16(conv, vBase + <usize> p0 * rowBytes, (p1 - p0) * d);
      vb = conv - <usize> p0 * outBytes;
      stride = outBytes;
    }
    for (let g = 0; g < G; g++) {
      const w = sc + ((<usize> g * <usize> nCtx) << 2);
      const acc = accs + <usize> g * 8 * outBytes;
      for (let c = 0; c < d; c += 4) {
        const ac = acc + (<usize> c << 2);
        let a0 = v128.load(ac), a1 = v128.load(ac + outBytes), a2 = v128.load(ac + 2 * outBytes);
        let a3 = v128.load(ac + 3 * outBytes), a4 = v128.load(ac + 4 * outBytes), a5 = v128.load(ac + 5 * outBytes);
        let a6 = v128.load(ac + 6 * outBytes), a7 = v128.load(ac + 7 * outBytes);
        let p = p0;
        for (; p + 8 <= p1; p += 8) {
          const wp = w + (<usize> p << 2);
          a0 = fmadd(f32x4.splat(load<f32>(wp)), vload<T>(vb, stride, p, c, converted), a0);
          a1 = fmadd(f32x4.splat(load<f32>(wp, 4)), vload<T>(vb, stride, p + 1, c, converted), a1);
          a2 = fmadd(f32x4.splat(load<f32>(wp, 8)), vload<T>(vb, stride, p + 2, c, converted), a2);
          a3 = fmadd(f32x4.splat(load<f32>(wp, 12)), vload<T>(vb, stride, p + 3, c, converted), a3);
          a4 = fmadd(f32x4.splat(load<f32>(wp, 16)), vload<T>(vb, stride, p + 4, c, converted), a4);
          a5 = fmadd(f32x4.splat(load<f32>(wp, 20)), vload<T>(vb, stride, p + 5, c, converted), a5);
          a6 = fmadd(f32x4.splat(load<f32>(wp, 24)), vload<T>(vb, stride, p + 6, c, converted), a6);
          a7 = fmadd(f32x4.splat(load<f32>(wp, 28)), vload<T>(vb, stride, p + 7, c, converted), a7);
        }
        // The last block's partial group: positions past nPos are masked (weight 0, the accumulator unchanged).
        const r = p1 - p;
        if (r > 0) {
          const wp = w + (<usize> p << 2);
          a0 = fmadd(f32x4.splat(load<f32>(wp)), vload<T>(vb, stride, p, c, converted), a0);
          if (r > 1) a1 = fmadd(f32x4.splat(load<f32>(wp, 4)), vload<T>(vb, stride, p + 1, c, converted), a1);
          if (r > 2) a2 = fmadd(f32x4.splat(load<f32>(wp, 8)), vload<T>(vb, stride, p + 2, c, converted), a2);
          if (r > 3) a3 = fmadd(f32x4.splat(load<f32>(wp, 12)), vload<T>(vb, stride, p + 3, c, converted), a3);
          if (r > 4) a4 = fmadd(f32x4.splat(load<f32>(wp, 16)), vload<T>(vb, stride, p + 4, c, converted), a4);
          if (r > 5) a5 = fmadd(f32x4.splat(load<f32>(wp, 20)), vload<T>(vb, stride, p + 5, c, converted), a5);
          if (r > 6) a6 = fmadd(f32x4.splat(load<f32>(wp, 24)), vload<T>(vb, stride, p + 6, c, converted), a6);
        }
        if (p1 == nPos) {
          // Last block: the outputs.
          v128.store(out + <usize> g * outBytes + (<usize> c << 2), sum8Lanes(a0, a1, a2, a3, a4, a5, a6, a7));
        } else {
          v128.store(ac, a0);
          v128.store(ac + outBytes, a1);
          v128.store(ac + 2 * outBytes, a2);
          v128.store(ac + 3 * outBytes, a3);
          v128.store(ac + 4 * outBytes, a4);
          v128.store(ac + 5 * outBytes, a5);
          v128.store(ac + 6 * outBytes, a6);
          v128.store(ac + 7 * outBytes, a7);
        }
      }
    }
  }
}

/**
 * Decode: out_g = Σ_p w[g][p] · V[p] in ggml_vec_dot_f32's order over the positions (llama.cpp's kq·V for a single
 * token, where llamafile's GEMM declines one column): position p goes to accumulator class p mod 32 (four 8-lane
 * vectors), each a chain of fused multiply-adds; at the end the classes are summed (0+2)+(1+3), the halves added,
 * then (t0+t1)+(t2+t3). The 32·d accumulators of each head wait in `accs`. Rows read in place go in blocks of
 * DBLOCK: each class takes its (up to eight) rows of the block in one register per four columns, so an
 * accumulator is loaded and stored once per block rather than once per row. f16 rows are widened as they are
 * loaded, once per head: for G > 1 heads that is cheaper than converting a block once and then streaming it row by
 * row through the accumulators in memory (the 7B GQA shape at 8192, f16: 8.7–9.5 ms against 10.0–12.2, same sums).
 */
function weightedSumDecode<T>(
  out: usize, vBase: usize, sc: usize, G: i32, d: i32, nCtx: i32, nPos: i32, conv: usize, accs: usize,
): void {
  const E = <usize> sizeof<T>();
  const outBytes = <usize> d << 2;
  const rowBytes = <usize> d * E;
  memory.fill(accs, 0, <usize> G * 32 * outBytes);
  // Blocks of DBLOCK rows: one sequential pass brings the block in at streaming bandwidth, then each accumulator
  // class takes its rows of the block (every 32nd) in order, its four columns at a time in one register.
  for (let p0 = 0; p0 < nPos; p0 += DBLOCK) {
    const p1 = min(p0 + DBLOCK, nPos);
    const end = vBase + <usize> p1 * rowBytes;
    let t = i32x4.splat(0);
    for (let a = vBase + <usize> p0 * rowBytes; a < end; a += 64) t = i32x4.add(t, v128.load32_zero(a));
    v128.store(conv, t); // (conv is unused here; the store keeps the loads)
    for (let g = 0; g < G; g++) {
      const w = sc + ((<usize> g * <usize> nCtx) << 2);
      for (let cls = 0; cls < 32; cls++) {
        const r0 = p0 + cls;
        if (r0 >= p1) break;
        const n = (p1 - 1 - r0) / 32 + 1; // rows r0, r0 + 32, … below p1 (at most DBLOCK / 32 = 8)
        const acc = accs + (<usize> (g * 32 + cls)) * outBytes;
        const w0 = f32x4.splat(load<f32>(w + (<usize> r0 << 2)));
        const w1 = n > 1 ? f32x4.splat(load<f32>(w + (<usize> (r0 + 32) << 2))) : w0;
        const w2 = n > 2 ? f32x4.splat(load<f32>(w + (<usize> (r0 + 64) << 2))) : w0;
        const w3 = n > 3 ? f32x4.splat(load<f32>(w + (<usize> (r0 + 96) << 2))) : w0;
        const w4 = n > 4 ? f32x4.splat(load<f32>(w + (<usize> (r0 + 128) << 2))) : w0;
        const w5 = n > 5 ? f32x4.splat(load<f32>(w + (<usize> (r0 + 160) << 2))) : w0;
        const w6 = n > 6 ? f32x4.splat(load<f32>(w + (<usize> (r0 + 192) << 2))) : w0;
        const w7 = n > 7 ? f32x4.splat(load<f32>(w + (<usize> (r0 + 224) << 2))) : w0;
        const v0 = vBase + <usize> r0 * rowBytes;
        const rs = <usize> 32 * rowBytes;
        for (let c = 0; c < d; c += 4) {
          const ac = acc + (<usize> c << 2);
          const vc = v0 + <usize> c * E;
          let a = v128.load(ac);
          a = fmadd(w0, ld4<T>(vc), a);
          if (n > 1) a = fmadd(w1, ld4<T>(vc + rs), a);
          if (n > 2) a = fmadd(w2, ld4<T>(vc + 2 * rs), a);
          if (n > 3) a = fmadd(w3, ld4<T>(vc + 3 * rs), a);
          if (n > 4) a = fmadd(w4, ld4<T>(vc + 4 * rs), a);
          if (n > 5) a = fmadd(w5, ld4<T>(vc + 5 * rs), a);
          if (n > 6) a = fmadd(w6, ld4<T>(vc + 6 * rs), a);
          if (n > 7) a = fmadd(w7, ld4<T>(vc + 7 * rs), a);
          v128.store(ac, a);
        }
      }
    }
  }
  for (let g = 0; g < G; g++) {
    const accG = accs + <usize> g * 32 * outBytes;
    for (let c = 0; c < d; c += 4) {
      const a = accG + (<usize> c << 2);
      // x_l = (A_l + A_{16+l}) + (A_{8+l} + A_{24+l}): the four 8-lane vectors summed (0+2)+(1+3), lane l.
      const x0 = f32x4.add(f32x4.add(v128.load(a), v128.load(a + 16 * outBytes)), f32x4.add(v128.load(a + 8 * outBytes), v128.load(a + 24 * outBytes)));
      const x1 = f32x4.add(f32x4.add(v128.load(a + outBytes), v128.load(a + 17 * outBytes)), f32x4.add(v128.load(a + 9 * outBytes), v128.load(a + 25 * outBytes)));
      const x2 = f32x4.add(f32x4.add(v128.load(a + 2 * outBytes), v128.load(a + 18 * outBytes)), f32x4.add(v128.load(a + 10 * outBytes), v128.load(a + 26 * outBytes)));
      const x3 = f32x4.add(f32x4.add(v128.load(a + 3 * outBytes), v128.load(a + 19 * outBytes)), f32x4.add(v128.load(a + 11 * outBytes), v128.load(a + 27 * outBytes)));
      const x4 = f32x4.add(f32x4.add(v128.load(a + 4 * outBytes), v128.load(a + 20 * outBytes)), f32x4.add(v128.load(a + 12 * outBytes), v128.load(a + 28 * outBytes)));
      const x5 = f32x4.add(f32x4.add(v128.load(a + 5 * outBytes), v128.load(a + 21 * outBytes)), f32x4.add(v128.load(a + 13 * outBytes), v128.load(a + 29 * outBytes)));
      const x6 = f32x4.add(f32x4.add(v128.load(a + 6 * outBytes), v128.load(a + 22 * outBytes)), f32x4.add(v128.load(a + 14 * outBytes), v128.load(a + 30 * outBytes)));
      const x7 = f32x4.add(f32x4.add(v128.load(a + 7 * outBytes), v128.load(a + 23 * outBytes)), f32x4.add(v128.load(a + 15 * outBytes), v128.load(a + 31 * outBytes)));
      // Halves added (t_j = x_j + x_{j+4}), then _mm_hadd_ps twice: (t0 + t1) + (t2 + t3).
      const t0 = f32x4.add(x0, x4), t1 = f32x4.add(x1, x5), t2 = f32x4.add(x2, x6), t3 = f32x4.add(x3, x7);
      v128.store(out + <usize> g * outBytes + (<usize> c << 2), f32x4.add(f32x4.add(t0, t1), f32x4.add(t2, t3)));
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
  // This thread's f16 → f32 conversion buffer (VBLOCK rows of d), after every thread's scores, then its G·32·d
  // weighted-sum accumulators after every thread's conversion buffer.
  const conv = scoresBuf + ((<usize> nth * <usize> G * <usize> nCtx + <usize> ith * <usize> VBLOCK * <usize> d) << 2);
  const accs = scoresBuf +
    ((<usize> nth * (<usize> G * <usize> nCtx + <usize> VBLOCK * <usize> d) + <usize> ith * <usize> G * 32 * <usize> d) << 2);
  const nUnits = nTok * nKv;
  for (let u = ith; u < nUnits; u += nth) {
    const t = u / nKv;
    const h = u % nKv;
    const nPos = pos0 + t + 1;
    const first = <usize> (t * nHead + h * G) * rowBytes;
    const kvOff = <usize> h * <usize> nCtx * <usize> d * <usize> sizeof<T>();
    scores<T>(q + first, k + kvOff, sc, G, d, nCtx, nPos, scale, conv);
    for (let g = 0; g < G; g++) softmaxInPlace(sc + ((<usize> g * <usize> nCtx) << 2), nPos);
    // llama.cpp's kq·V: a GEMM (llamafile) for a prompt batch, ggml_vec_dot_f32 for one token.
    if (nTok > 1) weightedSum<T>(out + first, v + kvOff, sc, G, d, nCtx, nPos, conv, accs);
    else weightedSumDecode<T>(out + first, v + kvOff, sc, G, d, nCtx, nPos, conv, accs);
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
