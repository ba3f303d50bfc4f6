// deno-fmt-ignore-file -- AssemblyScript (decorators, `<T>x` casts): deno fmt would drop `@inline`.
/**
 * `Y[nTok][rows] = X[nTok][cols]·Wᵀ` for every supported weight type; matrix × vector is `nTok = 1`. Weights are
 * ggml rows exactly as stored in GGUF. Activations: f32 for F32 weights, f16/bf16-rounded f32 for F16/BF16, and
 * the quantized layouts of `asm/common/act.ts` for the block types (integer dot products per block, as ggml).
 *
 * Parallel over rows. Tokens are processed in blocks of TOKEN_BLOCK: a weight row is read from memory once per
 * block and reused from L1 for its tokens. Every output is the same `dot*` call whatever `nTok` and `nth` are, so
 * matvec and matmul agree bit for bit and results do not depend on the thread count. Integer block sums are
 * reduced to one integer before scaling, so the relaxed and plain SIMD builds (whose i32 lanes group the products
 * differently) give identical results too.
 */
import { splitStart } from "./common/split";
import { dotI8, dotI8U7, f16ToF32, f16x4ToF32, hsumF32, hsumI32 } from "./common/simd";
import { q8kStride, q8Stride } from "./common/act";

const TOKEN_BLOCK = 16;

// ---------------------------------------------------------------------------------------------------------------
// Float rows

/** Σ a·b over `n` f32: four 4-lane accumulators over 16 floats, then 4 at a time, then a scalar tail. */
// @ts-ignore: decorator
@inline function dotF32(a: usize, b: usize, n: i32): f32 {
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const o = <usize>i << 2;
    s0 = f32x4.add(s0, f32x4.mul(v128.load(a + o), v128.load(b + o)));
    s1 = f32x4.add(s1, f32x4.mul(v128.load(a + o, 16), v128.load(b + o, 16)));
    s2 = f32x4.add(s2, f32x4.mul(v128.load(a + o, 32), v128.load(b + o, 32)));
    s3 = f32x4.add(s3, f32x4.mul(v128.load(a + o, 48), v128.load(b + o, 48)));
  }
  for (; i + 4 <= n; i += 4) s0 = f32x4.add(s0, f32x4.mul(v128.load(a + (<usize>i << 2)), v128.load(b + (<usize>i << 2))));
  let s = hsumF32(f32x4.add(f32x4.add(s0, s1), f32x4.add(s2, s3)));
  for (; i < n; i++) s += load<f32>(a + (<usize>i << 2)) * load<f32>(b + (<usize>i << 2));
  return s;
}

/** Σ f16(a)·b over `n` values, `a` f16 bits. */
// @ts-ignore: decorator
@inline function dotF16(a: usize, b: usize, n: i32): f32 {
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const h = v128.load(a + (<usize>i << 1));
    const o = b + (<usize>i << 2);
    s0 = f32x4.add(s0, f32x4.mul(f16x4ToF32(i32x4.extend_low_i16x8_u(h)), v128.load(o)));
    s1 = f32x4.add(s1, f32x4.mul(f16x4ToF32(i32x4.extend_high_i16x8_u(h)), v128.load(o, 16)));
  }
  let s = hsumF32(f32x4.add(s0, s1));
  for (; i < n; i++) s += f16ToF32(load<u16>(a + (<usize>i << 1))) * load<f32>(b + (<usize>i << 2));
  return s;
}

/** Σ bf16(a)·b over `n` values, `a` bf16 bits. */
// @ts-ignore: decorator
@inline function dotBf16(a: usize, b: usize, n: i32): f32 {
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const h = v128.load(a + (<usize>i << 1));
    const o = b + (<usize>i << 2);
    s0 = f32x4.add(s0, f32x4.mul(i32x4.shl(i32x4.extend_low_i16x8_u(h), 16), v128.load(o)));
    s1 = f32x4.add(s1, f32x4.mul(i32x4.shl(i32x4.extend_high_i16x8_u(h), 16), v128.load(o, 16)));
  }
  let s = hsumF32(f32x4.add(s0, s1));
  for (; i < n; i++) s += reinterpret<f32>(<u32>load<u16>(a + (<usize>i << 1)) << 16) * load<f32>(b + (<usize>i << 2));
  return s;
}

// ---------------------------------------------------------------------------------------------------------------
// 32-wide blocks against Q8 activations. `x` is one token's Q8 record (see act.ts), `nb` = cols/32.

const LOW4 = i8x16.splat(0x0f);

/** Bit `k` of the 16 bits at lanes … as 0x10 bytes: lane j gets 0x10 when bit j of `bits` (u16) is set. */
// @ts-ignore: decorator
@inline function highBits16(bits: u32): v128 {
  const v = i8x16.swizzle(i16x8.splat(<i16>bits), i8x16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
  const m = v128.and(v, i8x16(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128));
  return v128.and(i8x16.ne(m, i8x16.splat(0)), i8x16.splat(0x10));
}

/** Q4_0 {f16 d; u8 qs[16]}: value = d·(nibble − 8); low nibbles are elements 0..15, high 16..31. */
// @ts-ignore: decorator
@inline function dotQ4_0(w: usize, x: usize, nb: i32, cols: i32): f32 {
  const xd = x + <usize>cols;
  const xsum = xd + (<usize>nb << 3);
  let acc: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const blk = w + <usize>b * 18;
    const q = v128.load(blk + 2);
    const xq = x + (<usize>b << 5);
    let s = dotI8U7(i32x4.splat(0), v128.load(xq), v128.and(q, LOW4));
    s = dotI8U7(s, v128.load(xq, 16), v128.and(i16x8.shr_u(q, 4), LOW4));
    s = i32x4.sub(s, i32x4.splat(load<i32>(xsum + (<usize>b << 2)) << 1)); // −8·Σx spread over 4 lanes
    const d = f16ToF32(load<u16>(blk)) * load<f32>(xd + (<usize>b << 2));
    acc += d * <f32>hsumI32(s);
  }
  return acc;
}

/** Q4_1 {f16 d; f16 m; u8 qs[16]}: value = d·nibble + m. */
// @ts-ignore: decorator
@inline function dotQ4_1(w: usize, x: usize, nb: i32, cols: i32): f32 {
  const xd = x + <usize>cols;
  const xs = xd + (<usize>nb << 2);
  let acc: f32 = 0;
  let accm: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const blk = w + <usize>b * 20;
    const q = v128.load(blk + 4);
    const xq = x + (<usize>b << 5);
    let s = dotI8U7(i32x4.splat(0), v128.load(xq), v128.and(q, LOW4));
    s = dotI8U7(s, v128.load(xq, 16), v128.and(i16x8.shr_u(q, 4), LOW4));
    const d = f16ToF32(load<u16>(blk)) * load<f32>(xd + (<usize>b << 2));
    acc += d * <f32>hsumI32(s);
    accm += f16ToF32(load<u16>(blk, 2)) * load<f32>(xs + (<usize>b << 2));
  }
  return acc + accm;
}

/** Q5_0 {f16 d; u8 qh[4]; u8 qs[16]}: value = d·((nibble | bit<<4) − 16), bit j of qh for element j. */
// @ts-ignore: decorator
@inline function dotQ5_0(w: usize, x: usize, nb: i32, cols: i32): f32 {
  const xd = x + <usize>cols;
  const xsum = xd + (<usize>nb << 3);
  let acc: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const blk = w + <usize>b * 22;
    const qh = load<u32>(blk + 2);
    const q = v128.load(blk + 6);
    const xq = x + (<usize>b << 5);
    let s = dotI8U7(i32x4.splat(0), v128.load(xq), v128.or(v128.and(q, LOW4), highBits16(qh & 0xffff)));
    s = dotI8U7(s, v128.load(xq, 16), v128.or(v128.and(i16x8.shr_u(q, 4), LOW4), highBits16(qh >> 16)));
    s = i32x4.sub(s, i32x4.splat(load<i32>(xsum + (<usize>b << 2)) << 2)); // −16·Σx over 4 lanes
    const d = f16ToF32(load<u16>(blk)) * load<f32>(xd + (<usize>b << 2));
    acc += d * <f32>hsumI32(s);
  }
  return acc;
}

/** Q5_1 {f16 d; f16 m; u8 qh[4]; u8 qs[16]}: value = d·(nibble | bit<<4) + m. */
// @ts-ignore: decorator
@inline function dotQ5_1(w: usize, x: usize, nb: i32, cols: i32): f32 {
  const xd = x + <usize>cols;
  const xs = xd + (<usize>nb << 2);
  let acc: f32 = 0;
  let accm: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const blk = w + <usize>b * 24;
    const qh = load<u32>(blk + 4);
    const q = v128.load(blk + 8);
    const xq = x + (<usize>b << 5);
    let s = dotI8U7(i32x4.splat(0), v128.load(xq), v128.or(v128.and(q, LOW4), highBits16(qh & 0xffff)));
    s = dotI8U7(s, v128.load(xq, 16), v128.or(v128.and(i16x8.shr_u(q, 4), LOW4), highBits16(qh >> 16)));
    const d = f16ToF32(load<u16>(blk)) * load<f32>(xd + (<usize>b << 2));
    acc += d * <f32>hsumI32(s);
    accm += f16ToF32(load<u16>(blk, 2)) * load<f32>(xs + (<usize>b << 2));
  }
  return acc + accm;
}

/** Q8_0 {f16 d; i8 qs[32]}: value = d·q. */
// @ts-ignore: decorator
@inline function dotQ8_0(w: usize, x: usize, nb: i32, cols: i32): f32 {
  const xd = x + <usize>cols;
  let acc: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const blk = w + <usize>b * 34;
    const xq = x + (<usize>b << 5);
    let s = dotI8(i32x4.splat(0), v128.load(xq), v128.load(blk + 2));
    s = dotI8(s, v128.load(xq, 16), v128.load(blk + 18));
    const d = f16ToF32(load<u16>(blk)) * load<f32>(xd + (<usize>b << 2));
    acc += d * <f32>hsumI32(s);
  }
  return acc;
}

// ---------------------------------------------------------------------------------------------------------------
// K-quants (256-wide super-blocks) against Q8K activations. `nb` = cols/256.

/** 6-bit scale and min number `j` (0..7) of a Q4_K/Q5_K `scales[12]` (ggml's `get_scale_min_k4`), as sc | m<<8. */
// @ts-ignore: decorator
@inline function scaleMinK4(sc: usize, j: i32): i32 {
  if (j < 4) return (load<u8>(sc + j) & 63) | ((load<u8>(sc + j + 4) & 63) << 8);
  const a = <i32>load<u8>(sc + j + 4), lo = <i32>load<u8>(sc + j - 4), hi = <i32>load<u8>(sc + j);
  return ((a & 0xf) | ((lo >> 6) << 4)) | (((a >> 4) | ((hi >> 6) << 4)) << 8);
}

/** Q4_K {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}: value = d·sc·nibble − dmin·m per 32-wide sub-block. */
// @ts-ignore: decorator
@inline function dotQ4_K(w: usize, x: usize, nb: i32, cols: i32): f32 {
  const xd = x + <usize>cols;
  const bs = xd + (<usize>nb << 2);
  let sum: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const blk = w + <usize>b * 144;
    const sc = blk + 4;
    const qs = blk + 16;
    const xq = x + (<usize>b << 8);
    const bsb = bs + (<usize>b << 6);
    let isum = i32x4.splat(0);
    let msum = 0;
    for (let j = 0; j < 4; j++) {
      const q0 = v128.load(qs + (<usize>j << 5));
      const q1 = v128.load(qs + (<usize>j << 5), 16);
      const xa = xq + (<usize>j << 6);
      let lo = dotI8U7(i32x4.splat(0), v128.load(xa), v128.and(q0, LOW4));
      lo = dotI8U7(lo, v128.load(xa, 16), v128.and(q1, LOW4));
      let hi = dotI8U7(i32x4.splat(0), v128.load(xa, 32), v128.and(i16x8.shr_u(q0, 4), LOW4));
      hi = dotI8U7(hi, v128.load(xa, 48), v128.and(i16x8.shr_u(q1, 4), LOW4));
      const a = scaleMinK4(sc, 2 * j), c = scaleMinK4(sc, 2 * j + 1);
      isum = i32x4.add(isum, i32x4.add(i32x4.mul(lo, i32x4.splat(a & 0xff)), i32x4.mul(hi, i32x4.splat(c & 0xff))));
      const g = bsb + (<usize>j << 4);
      msum += (a >> 8) * (load<i32>(g) + load<i32>(g, 4)) + (c >> 8) * (load<i32>(g, 8) + load<i32>(g, 12));
    }
    const dy = load<f32>(xd + (<usize>b << 2));
    sum += f16ToF32(load<u16>(blk)) * dy * <f32>hsumI32(isum) - f16ToF32(load<u16>(blk, 2)) * dy * <f32>msum;
  }
  return sum;
}

/** Q5_K {f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}: like Q4_K with a fifth bit from qh. */
// @ts-ignore: decorator
@inline function dotQ5_K(w: usize, x: usize, nb: i32, cols: i32): f32 {
  const xd = x + <usize>cols;
  const bs = xd + (<usize>nb << 2);
  let sum: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const blk = w + <usize>b * 176;
    const sc = blk + 4;
    const h0 = v128.load(blk + 16);
    const h1 = v128.load(blk + 32);
    const qs = blk + 48;
    const xq = x + (<usize>b << 8);
    const bsb = bs + (<usize>b << 6);
    let isum = i32x4.splat(0);
    let msum = 0;
    const bit16 = i8x16.splat(0x10);
    for (let j = 0; j < 4; j++) {
      const q0 = v128.load(qs + (<usize>j << 5));
      const q1 = v128.load(qs + (<usize>j << 5), 16);
      const bitL: i32 = 1 << (2 * j);
      const ml = i8x16.splat(<i8>bitL);
      const mh = i8x16.splat(<i8>(bitL << 1));
      const xa = xq + (<usize>j << 6);
      const l0 = v128.or(v128.and(q0, LOW4), v128.and(i8x16.ne(v128.and(h0, ml), i8x16.splat(0)), bit16));
      const l1 = v128.or(v128.and(q1, LOW4), v128.and(i8x16.ne(v128.and(h1, ml), i8x16.splat(0)), bit16));
      const u0 = v128.or(v128.and(i16x8.shr_u(q0, 4), LOW4), v128.and(i8x16.ne(v128.and(h0, mh), i8x16.splat(0)), bit16));
      const u1 = v128.or(v128.and(i16x8.shr_u(q1, 4), LOW4), v128.and(i8x16.ne(v128.and(h1, mh), i8x16.splat(0)), bit16));
      let lo = dotI8U7(i32x4.splat(0), v128.load(xa), l0);
      lo = dotI8U7(lo, v128.load(xa, 16), l1);
      let hi = dotI8U7(i32x4.splat(0), v128.load(xa, 32), u0);
      hi = dotI8U7(hi, v128.load(xa, 48), u1);
      const a = scaleMinK4(sc, 2 * j), c = scaleMinK4(sc, 2 * j + 1);
      isum = i32x4.add(isum, i32x4.add(i32x4.mul(lo, i32x4.splat(a & 0xff)), i32x4.mul(hi, i32x4.splat(c & 0xff))));
      const g = bsb + (<usize>j << 4);
      msum += (a >> 8) * (load<i32>(g) + load<i32>(g, 4)) + (c >> 8) * (load<i32>(g, 8) + load<i32>(g, 12));
    }
    const dy = load<f32>(xd + (<usize>b << 2));
    sum += f16ToF32(load<u16>(blk)) * dy * <f32>hsumI32(isum) - f16ToF32(load<u16>(blk, 2)) * dy * <f32>msum;
  }
  return sum;
}

/**
 * Q6_K {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}: value = d·sc·(q − 32), q = 4 low bits from ql | 2 high
 * bits from qh; one scale per 16 values.
 */
// @ts-ignore: decorator
@inline function dotQ6_K(w: usize, x: usize, nb: i32, cols: i32): f32 {
  const xd = x + <usize>cols;
  const bs = xd + (<usize>nb << 2);
  const m30 = i8x16.splat(0x30);
  let sum: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const blk = w + <usize>b * 210;
    const xq = x + (<usize>b << 8);
    const bsb = bs + (<usize>b << 6);
    let isum = i32x4.splat(0);
    for (let n = 0; n < 2; n++) {
      const ql = blk + (<usize>n << 6);
      const qh = blk + 128 + (<usize>n << 5);
      const sc = blk + 192 + (<usize>n << 3);
      const xn = xq + (<usize>n << 7);
      const gs = bsb + (<usize>n << 5);
      for (let h = 0; h < 2; h++) {
        // Half h covers l in [16h, 16h+16): elements l, l+32, l+64, l+96 of this 128-chunk.
        const o = <usize>h << 4;
        const la = v128.load(ql + o), lb = v128.load(ql + o, 32), hb = v128.load(qh + o);
        const q1 = v128.or(v128.and(la, LOW4), v128.and(i16x8.shl(hb, 4), m30));
        const q2 = v128.or(v128.and(lb, LOW4), v128.and(i16x8.shl(hb, 2), m30));
        const q3 = v128.or(v128.and(i16x8.shr_u(la, 4), LOW4), v128.and(hb, m30));
        const q4 = v128.or(v128.and(i16x8.shr_u(lb, 4), LOW4), v128.and(i16x8.shr_u(hb, 2), m30));
        // Group g = element/16 has scale sc[g] and activation sum bsums[g]; −32·Σx spread as −8·Σx per lane.
        const g1 = h, g2 = h + 2, g3 = h + 4, g4 = h + 6;
        const s1 = i32x4.sub(dotI8U7(i32x4.splat(0), v128.load(xn + (<usize>g1 << 4)), q1), i32x4.splat(load<i32>(gs + (<usize>g1 << 2)) << 3));
        const s2 = i32x4.sub(dotI8U7(i32x4.splat(0), v128.load(xn + (<usize>g2 << 4)), q2), i32x4.splat(load<i32>(gs + (<usize>g2 << 2)) << 3));
        const s3 = i32x4.sub(dotI8U7(i32x4.splat(0), v128.load(xn + (<usize>g3 << 4)), q3), i32x4.splat(load<i32>(gs + (<usize>g3 << 2)) << 3));
        const s4 = i32x4.sub(dotI8U7(i32x4.splat(0), v128.load(xn + (<usize>g4 << 4)), q4), i32x4.splat(load<i32>(gs + (<usize>g4 << 2)) << 3));
        isum = i32x4.add(isum, i32x4.add(
          i32x4.add(i32x4.mul(s1, i32x4.splat(load<i8>(sc + g1))), i32x4.mul(s2, i32x4.splat(load<i8>(sc + g2)))),
          i32x4.add(i32x4.mul(s3, i32x4.splat(load<i8>(sc + g3))), i32x4.mul(s4, i32x4.splat(load<i8>(sc + g4)))),
        ));
      }
    }
    sum += f16ToF32(load<u16>(blk + 208)) * load<f32>(xd + (<usize>b << 2)) * <f32>hsumI32(isum);
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------------------------
// Exports: one per weight type, same loop. `x` is f32 rows (F32/F16/BF16, `cols` apart) or quantized
// activation records (`q8Stride`/`q8kStride` apart).

export function matmul_f32(w: usize, x: usize, y: usize, rows: i32, cols: i32, nTok: i32, ith: i32, nth: i32): void {
  const r0 = splitStart(rows, ith, nth), r1 = splitStart(rows, ith + 1, nth);
  const rb = <usize>cols << 2, xs = <usize>cols << 2;
  for (let t0 = 0; t0 < nTok; t0 += TOKEN_BLOCK) {
    const t1 = min(nTok, t0 + TOKEN_BLOCK);
    for (let r = r0; r < r1; r++) for (let t = t0; t < t1; t++) store<f32>(y + ((<usize>t * <usize>rows + <usize>r) << 2), dotF32(w + <usize>r * rb, x + <usize>t * xs, cols));
  }
}

export function matmul_f16(w: usize, x: usize, y: usize, rows: i32, cols: i32, nTok: i32, ith: i32, nth: i32): void {
  const r0 = splitStart(rows, ith, nth), r1 = splitStart(rows, ith + 1, nth);
  const rb = <usize>cols << 1, xs = <usize>cols << 2;
  for (let t0 = 0; t0 < nTok; t0 += TOKEN_BLOCK) {
    const t1 = min(nTok, t0 + TOKEN_BLOCK);
    for (let r = r0; r < r1; r++) for (let t = t0; t < t1; t++) store<f32>(y + ((<usize>t * <usize>rows + <usize>r) << 2), dotF16(w + <usize>r * rb, x + <usize>t * xs, cols));
  }
}

export function matmul_bf16(w: usize, x: usize, y: usize, rows: i32, cols: i32, nTok: i32, ith: i32, nth: i32): void {
  const r0 = splitStart(rows, ith, nth), r1 = splitStart(rows, ith + 1, nth);
  const rb = <usize>cols << 1, xs = <usize>cols << 2;
  for (let t0 = 0; t0 < nTok; t0 += TOKEN_BLOCK) {
    const t1 = min(nTok, t0 + TOKEN_BLOCK);
    for (let r = r0; r < r1; r++) for (let t = t0; t < t1; t++) store<f32>(y + ((<usize>t * <usize>rows + <usize>r) << 2), dotBf16(w + <usize>r * rb, x + <usize>t * xs, cols));
  }
}

export function matmul_q4_0(w: usize, x: usize, y: usize, rows: i32, cols: i32, nTok: i32, ith: i32, nth: i32): void {
  const r0 = splitStart(rows, ith, nth), r1 = splitStart(rows, ith + 1, nth);
  const nb = cols >> 5, rb = <usize>nb * 18, xs = q8Stride(cols);
  for (let t0 = 0; t0 < nTok; t0 += TOKEN_BLOCK) {
    const t1 = min(nTok, t0 + TOKEN_BLOCK);
    for (let r = r0; r < r1; r++) for (let t = t0; t < t1; t++) store<f32>(y + ((<usize>t * <usize>rows + <usize>r) << 2), dotQ4_0(w + <usize>r * rb, x + <usize>t * xs, nb, cols));
  }
}

export function matmul_q4_1(w: usize, x: usize, y: usize, rows: i32, cols: i32, nTok: i32, ith: i32, nth: i32): void {
  const r0 = splitStart(rows, ith, nth), r1 = splitStart(rows, ith + 1, nth);
  const nb = cols >> 5, rb = <usize>nb * 20, xs = q8Stride(cols);
  for (let t0 = 0; t0 < nTok; t0 += TOKEN_BLOCK) {
    const t1 = min(nTok, t0 + TOKEN_BLOCK);
    for (let r = r0; r < r1; r++) for (let t = t0; t < t1; t++) store<f32>(y + ((<usize>t * <usize>rows + <usize>r) << 2), dotQ4_1(w + <usize>r * rb, x + <usize>t * xs, nb, cols));
  }
}

export function matmul_q5_0(w: usize, x: usize, y: usize, rows: i32, cols: i32, nTok: i32, ith: i32, nth: i32): void {
  const r0 = splitStart(rows, ith, nth), r1 = splitStart(rows, ith + 1, nth);
  const nb = cols >> 5, rb = <usize>nb * 22, xs = q8Stride(cols);
  for (let t0 = 0; t0 < nTok; t0 += TOKEN_BLOCK) {
    const t1 = min(nTok, t0 + TOKEN_BLOCK);
    for (let r = r0; r < r1; r++) for (let t = t0; t < t1; t++) store<f32>(y + ((<usize>t * <usize>rows + <usize>r) << 2), dotQ5_0(w + <usize>r * rb, x + <usize>t * xs, nb, cols));
  }
}

export function matmul_q5_1(w: usize, x: usize, y: usize, rows: i32, cols: i32, nTok: i32, ith: i32, nth: i32): void {
  const r0 = splitStart(rows, ith, nth), r1 = splitStart(rows, ith + 1, nth);
  const nb = cols >> 5, rb = <usize>nb * 24, xs = q8Stride(cols);
  for (let t0 = 0; t0 < nTok; t0 += TOKEN_BLOCK) {
    const t1 = min(nTok, t0 + TOKEN_BLOCK);
    for (let r = r0; r < r1; r++) for (let t = t0; t < t1; t++) store<f32>(y + ((<usize>t * <usize>rows + <usize>r) << 2), dotQ5_1(w + <usize>r * rb, x + <usize>t * xs, nb, cols));
  }
}

export function matmul_q8_0(w: usize, x: usize, y: usize, rows: i32, cols: i32, nTok: i32, ith: i32, nth: i32): void {
  const r0 = splitStart(rows, ith, nth), r1 = splitStart(rows, ith + 1, nth);
  const nb = cols >> 5, rb = <usize>nb * 34, xs = q8Stride(cols);
  for (let t0 = 0; t0 < nTok; t0 += TOKEN_BLOCK) {
    const t1 = min(nTok, t0 + TOKEN_BLOCK);
    for (let r = r0; r < r1; r++) for (let t = t0; t < t1; t++) store<f32>(y + ((<usize>t * <usize>rows + <usize>r) << 2), dotQ8_0(w + <usize>r * rb, x + <usize>t * xs, nb, cols));
  }
}

export function matmul_q4_k(w: usize, x: usize, y: usize, rows: i32, cols: i32, nTok: i32, ith: i32, nth: i32): void {
  const r0 = splitStart(rows, ith, nth), r1 = splitStart(rows, ith + 1, nth);
  const nb = cols >> 8, rb = <usize>nb * 144, xs = q8kStride(cols);
  for (let t0 = 0; t0 < nTok; t0 += TOKEN_BLOCK) {
    const t1 = min(nTok, t0 + TOKEN_BLOCK);
    for (let r = r0; r < r1; r++) for (let t = t0; t < t1; t++) store<f32>(y + ((<usize>t * <usize>rows + <usize>r) << 2), dotQ4_K(w + <usize>r * rb, x + <usize>t * xs, nb, cols));
  }
}

export function matmul_q5_k(w: usize, x: usize, y: usize, rows: i32, cols: i32, nTok: i32, ith: i32, nth: i32): void {
  const r0 = splitStart(rows, ith, nth), r1 = splitStart(rows, ith + 1, nth);
  const nb = cols >> 8, rb = <usize>nb * 176, xs = q8kStride(cols);
  for (let t0 = 0; t0 < nTok; t0 += TOKEN_BLOCK) {
    const t1 = min(nTok, t0 + TOKEN_BLOCK);
    for (let r = r0; r < r1; r++) for (let t = t0; t < t1; t++) store<f32>(y + ((<usize>t * <usize>rows + <usize>r) << 2), dotQ5_K(w + <usize>r * rb, x + <usize>t * xs, nb, cols));
  }
}

export function matmul_q6_k(w: usize, x: usize, y: usize, rows: i32, cols: i32, nTok: i32, ith: i32, nth: i32): void {
  const r0 = splitStart(rows, ith, nth), r1 = splitStart(rows, ith + 1, nth);
  const nb = cols >> 8, rb = <usize>nb * 210, xs = q8kStride(cols);
  for (let t0 = 0; t0 < nTok; t0 += TOKEN_BLOCK) {
    const t1 = min(nTok, t0 + TOKEN_BLOCK);
    for (let r = r0; r < r1; r++) for (let t = t0; t < t1; t++) store<f32>(y + ((<usize>t * <usize>rows + <usize>r) << 2), dotQ6_K(w + <usize>r * rb, x + <usize>t * xs, nb, cols));
  }
}
