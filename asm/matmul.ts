// deno-fmt-ignore-file -- AssemblyScript (decorators, `<T>x` casts): deno fmt would drop `@inline`.
/**
 * `Y[nTok][rows] = X[nTok][cols]·Wᵀ` for every supported weight type; matrix × vector is `nTok = 1`. Weights are
 * ggml rows exactly as stored in GGUF. Activations: f32 for F32 weights, f16/bf16-rounded f32 for F16/BF16, and
 * the quantized layouts of `asm/common/act.ts` for the block types (integer dot products per block, as ggml).
 *
 * Parallel over rows. Tokens are processed in blocks of TOKEN_BLOCK: a weight row is read from memory once per
 * block and reused from L1 for its tokens; the block types also unpack a row's codes and scales, and the float
 * types load and convert its weights, once per four tokens (`dotQ32Tok4`, `dotQK45Tok4`, `dotQ6_KTok4`,
 * `dotFloatGemmTok4`). Every output takes the same operations whatever `nTok` and
 * `nth` are, so matvec and matmul agree bit for bit and results do not depend on the thread count. Integer block sums are
 * reduced to one integer before scaling, so the relaxed and plain SIMD builds (whose i32 lanes group the products
 * differently) give identical results too.
 */
import { splitStart } from "./common/split";
import { dot16, dot32U5, dotI8, f16ToF32, f16sx4ToF32, fma32, fmadd, hsum8, hsumF32, hsumI32 } from "./common/simd";
import { q8kStride, q8Stride } from "./common/act";

const TOKEN_BLOCK = 16;

// ---------------------------------------------------------------------------------------------------------------
// Float rows

const W_F32 = 0, W_F16 = 1, W_BF16 = 2;

/** Four weights of a float row (`kind` W_F32, W_F16 or W_BF16 bits) from index `i`, as f32x4 (exact). */
// @ts-ignore: decorator
@inline function ldw(kind: i32, a: usize, i: i32): v128 {
  if (kind == W_F32) return v128.load(a + (<usize>i << 2));
  const h = v128.load16x4_s(a + (<usize>i << 1));
  return kind == W_F16 ? f16sx4ToF32(h) : i32x4.shl(h, 16);
}

/** One weight of a float row as f32. */
// @ts-ignore: decorator
@inline function ldw1(kind: i32, a: usize, i: i32): f32 {
  if (kind == W_F32) return load<f32>(a + (<usize>i << 2));
  const h = <u32>load<u16>(a + (<usize>i << 1));
  return kind == W_F16 ? f16ToF32(h) : reinterpret<f32>(h << 16);
}

/**
 * Σ w·x of a float row in llamafile tinyBLAS's order (llama.cpp's GEMM for F32/F16 weights in a batch, `n` a
 * multiple of 8): one 8-lane accumulator of fused multiply-adds over steps of 8, then {@link hsum8}. (F16 products
 * of f16-rounded activations are exact, so fusing does not matter there.)
 */
// @ts-ignore: decorator
@inline function dotFloatGemm(kind: i32, a: usize, b: usize, n: i32): f32 {
  let lo = f32x4.splat(0), hi = f32x4.splat(0);
  for (let i = 0; i < n; i += 8) {
    lo = fmadd(ldw(kind, a, i), v128.load(b + (<usize>i << 2)), lo);
    hi = fmadd(ldw(kind, a, i + 4), v128.load(b + (<usize>i << 2), 16), hi);
  }
  return hsum8(lo, hi);
}

/**
 * {@link dotFloatGemm} of one row against four tokens (`x` and the outputs `xs`/`ys` bytes apart): each group of 8
 * weights is loaded (and converted) once for the four tokens; every token's sum takes the same operations as alone.
 */
// @ts-ignore: decorator
@inline function dotFloatGemmTok4(kind: i32, a: usize, x: usize, xs: usize, n: i32, y: usize, ys: usize): void {
  const x1 = x + xs, x2 = x1 + xs, x3 = x2 + xs;
  let l0 = f32x4.splat(0), h0 = l0, l1 = l0, h1 = l0, l2 = l0, h2 = l0, l3 = l0, h3 = l0;
  for (let i = 0; i < n; i += 8) {
    const wl = ldw(kind, a, i), wh = ldw(kind, a, i + 4), o = <usize>i << 2;
    l0 = fmadd(wl, v128.load(x + o), l0);
    h0 = fmadd(wh, v128.load(x + o, 16), h0);
    l1 = fmadd(wl, v128.load(x1 + o), l1);
    h1 = fmadd(wh, v128.load(x1 + o, 16), h1);
    l2 = fmadd(wl, v128.load(x2 + o), l2);
    h2 = fmadd(wh, v128.load(x2 + o, 16), h2);
    l3 = fmadd(wl, v128.load(x3 + o), l3);
    h3 = fmadd(wh, v128.load(x3 + o, 16), h3);
  }
  store<f32>(y, hsum8(l0, h0));
  store<f32>(y + ys, hsum8(l1, h1));
  store<f32>(y + 2 * ys, hsum8(l2, h2));
  store<f32>(y + 3 * ys, hsum8(l3, h3));
}

/**
 * Σ w·x of a float row in the order of ggml's AVX2 `ggml_vec_dot_f32`/`ggml_vec_dot_f16` (one token, or a batch
 * whose row length is not a multiple of 8): four 8-lane accumulators of fused multiply-adds over steps of 32,
 * summed (0+2)+(1+3), the halves added, `_mm_hadd_ps` twice; the last n mod 32 products added one by one (in f64
 * for F16, as ggml does).
 */
// @ts-ignore: decorator
@inline function dotFloatVec(kind: i32, a: usize, b: usize, n: i32): f32 {
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, h0 = a0, h1 = a0, h2 = a0, h3 = a0;
  let i = 0;
  for (; i + 32 <= n; i += 32) {
    const x = b + (<usize>i << 2);
    a0 = fmadd(ldw(kind, a, i), v128.load(x), a0);
    h0 = fmadd(ldw(kind, a, i + 4), v128.load(x, 16), h0);
    a1 = fmadd(ldw(kind, a, i + 8), v128.load(x, 32), a1);
    h1 = fmadd(ldw(kind, a, i + 12), v128.load(x, 48), h1);
    a2 = fmadd(ldw(kind, a, i + 16), v128.load(x, 64), a2);
    h2 = fmadd(ldw(kind, a, i + 20), v128.load(x, 80), h2);
    a3 = fmadd(ldw(kind, a, i + 24), v128.load(x, 96), a3);
    h3 = fmadd(ldw(kind, a, i + 28), v128.load(x, 112), h3);
  }
  const t = f32x4.add(f32x4.add(f32x4.add(a0, a2), f32x4.add(a1, a3)), f32x4.add(f32x4.add(h0, h2), f32x4.add(h1, h3)));
  const s = (f32x4.extract_lane(t, 0) + f32x4.extract_lane(t, 1)) + (f32x4.extract_lane(t, 2) + f32x4.extract_lane(t, 3));
  if (kind == W_F32) {
    let sf = s;
    for (; i < n; i++) sf += ldw1(kind, a, i) * load<f32>(b + (<usize>i << 2));
    return sf;
  }
  let sd = <f64>s;
  for (; i < n; i++) sd += <f64>(ldw1(kind, a, i) * load<f32>(b + (<usize>i << 2)));
  return <f32>sd;
}

/**
 * Σ bf16(w)·x in the order of ggml's AVX2 `ggml_vec_dot_bf16` (llama.cpp's path for one token): four 8-lane accumulators over steps of 32, summed (0+2)+(1+3), the halves added, then
 * (t0+t2)+(t1+t3); the last n mod 32 products added in f64. Products of bf16 values are exact in f32.
 */
// @ts-ignore: decorator
@inline function dotBf16(a: usize, b: usize, n: i32): f32 {
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, h0 = a0, h1 = a0, h2 = a0, h3 = a0;
  let i = 0;
  for (; i + 32 <= n; i += 32) {
    const x = b + (<usize>i << 2);
    a0 = f32x4.add(f32x4.mul(ldw(W_BF16, a, i), v128.load(x)), a0);
    h0 = f32x4.add(f32x4.mul(ldw(W_BF16, a, i + 4), v128.load(x, 16)), h0);
    a1 = f32x4.add(f32x4.mul(ldw(W_BF16, a, i + 8), v128.load(x, 32)), a1);
    h1 = f32x4.add(f32x4.mul(ldw(W_BF16, a, i + 12), v128.load(x, 48)), h1);
    a2 = f32x4.add(f32x4.mul(ldw(W_BF16, a, i + 16), v128.load(x, 64)), a2);
    h2 = f32x4.add(f32x4.mul(ldw(W_BF16, a, i + 20), v128.load(x, 80)), h2);
    a3 = f32x4.add(f32x4.mul(ldw(W_BF16, a, i + 24), v128.load(x, 96)), a3);
    h3 = f32x4.add(f32x4.mul(ldw(W_BF16, a, i + 28), v128.load(x, 112)), h3);
  }
  let sd = <f64>hsum8(f32x4.add(f32x4.add(a0, a2), f32x4.add(a1, a3)), f32x4.add(f32x4.add(h0, h2), f32x4.add(h1, h3)));
  for (; i < n; i++) sd += <f64>(ldw1(W_BF16, a, i) * load<f32>(b + (<usize>i << 2)));
  return <f32>sd;
}

// ---------------------------------------------------------------------------------------------------------------
// 32-wide blocks against Q8 activations. `x` is one token's Q8 record (see act.ts), `nb` = cols/32.

/**
 * The 16-byte masks of the weight unpacking, in memory (`v128.load(MASKS, off)`): V8 rebuilds a `v128.const` at
 * every use inside a loop (several instructions), while a load is one — Q4_0 matvec ~35% faster at 7B shapes.
 * Offsets: LOW4 (0x0f), M30 (0x30: Q6_K's two high bits), X10 (0x10: a fifth bit), BIT_OF_LANE, SPLAT01/SPLAT23
 * (the swizzles spreading bytes 0, 1 / 2, 3 over eight lanes each), then BIT_J + 16·i: byte 1 << i in every lane.
 */
const MASKS = memory.data<u8>([
  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
  48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48,
  16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
  1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128,
  0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
  2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
  4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
  8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
  16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
  32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32,
  64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
  128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,
]);
const LOW4: usize = 0, M30: usize = 16, X10: usize = 32, BIT_OF_LANE: usize = 48, SPLAT01: usize = 64,
  SPLAT23: usize = 80, BIT_J: usize = 96;

/** The mask at offset `off` of {@link MASKS}. */
// @ts-ignore: decorator
@inline function mask(off: usize): v128 {
  return v128.load(MASKS + off);
}

/**
 * The fifth bits of a Q5_0/Q5_1 block as 0x10 bytes: lane j of the result for elements 0..15 (`high` = false,
 * bits 0..15 of the u32 `qh` at `p`) or 16..31 (`high`, bits 16..31). One splat load, one byte shuffle, a
 * compare: as ggml's `bytes_from_bits_32`.
 */
// @ts-ignore: decorator
@inline function fifthBits(qh: v128, high: bool): v128 {
  const v = high
    ? i8x16.swizzle(qh, mask(SPLAT23))
    : i8x16.swizzle(qh, mask(SPLAT01));
  const bits = mask(BIT_OF_LANE);
  return v128.and(i8x16.eq(v128.and(v, bits), bits), mask(X10));
}

/** [Σa, Σb, Σc, Σd]: the four i32x4 block sums reduced to one lane each (exact; same in both builds). */
// @ts-ignore: decorator
@inline function reduce4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(i32x4.shuffle(a, b, 0, 4, 1, 5), i32x4.shuffle(a, b, 2, 6, 3, 7));
  const cd = i32x4.add(i32x4.shuffle(c, d, 0, 4, 1, 5), i32x4.shuffle(c, d, 2, 6, 3, 7));
  return i32x4.add(i32x4.shuffle(ab, cd, 0, 1, 4, 5), i32x4.shuffle(ab, cd, 2, 3, 6, 7));
}

/** The f16 values at `p`, `p + stride`, `p + 2·stride`, `p + 3·stride` as f32x4 (scales of 4 blocks). */
// @ts-ignore: decorator
@inline function f16x4At(p: usize, stride: usize): v128 {
  // Into i16 lanes 0-3 (one pinsrw from memory each), then sign-extended.
  let v = v128.load16_lane(p, i32x4.splat(0), 0);
  v = v128.load16_lane(p + stride, v, 1);
  v = v128.load16_lane(p + 2 * stride, v, 2);
  v = v128.load16_lane(p + 3 * stride, v, 3);
  return f16sx4ToF32(i32x4.extend_low_i16x8_s(v));
}

const K_Q4_0 = 0, K_Q4_1 = 1, K_Q5_0 = 2, K_Q5_1 = 3, K_Q8_0 = 4;

/**
 * The weight codes of elements 0..15 of a 32-wide block of type `kind` (a compile-time constant after inlining),
 * as the i8x16 operand of the block's integer dot ({@link isumCodes}):
 * - Q4_0 {f16 d; u8 qs[16]}, Q4_1 {f16 d; f16 m; u8 qs[16]}: the low nibbles, unsigned (Q4_0's offset 8 is applied
 *   by the caller as −8·Σx, Q4_1's `m` as m·Σ(d_x·x));
 * - Q5_0 {f16 d; u8 qh[4]; u8 qs[16]}, Q5_1 {f16 d; f16 m; u8 qh[4]; u8 qs[16]}: nibble | fifth bit << 4 (Q5_0's
 *   offset 16 applied by the caller);
 * - Q8_0 {f16 d; i8 qs[32]}: |w| with relaxed SIMD (see {@link isumCodes}), w otherwise.
 */
// @ts-ignore: decorator
@inline function codesLo(kind: i32, blk: usize): v128 {
  if (kind == K_Q4_0) return v128.and(v128.load(blk + 2), mask(LOW4));
  if (kind == K_Q4_1) return v128.and(v128.load(blk + 4), mask(LOW4));
  if (kind == K_Q5_0) return v128.or(v128.and(v128.load(blk + 6), mask(LOW4)), fifthBits(v128.load32_splat(blk + 2), false));
  if (kind == K_Q5_1) return v128.or(v128.and(v128.load(blk + 8), mask(LOW4)), fifthBits(v128.load32_splat(blk + 4), false));
  return ASC_FEATURE_RELAXED_SIMD ? i8x16.abs(v128.load(blk + 2)) : v128.load(blk + 2);
}

/** The weight codes of elements 16..31 (high nibbles; Q8_0: the second 16 bytes), as {@link codesLo}. */
// @ts-ignore: decorator
@inline function codesHi(kind: i32, blk: usize): v128 {
  if (kind == K_Q4_0) return v128.and(i16x8.shr_u(v128.load(blk + 2), 4), mask(LOW4));
  if (kind == K_Q4_1) return v128.and(i16x8.shr_u(v128.load(blk + 4), 4), mask(LOW4));
  if (kind == K_Q5_0) return v128.or(v128.and(i16x8.shr_u(v128.load(blk + 6), 4), mask(LOW4)), fifthBits(v128.load32_splat(blk + 2), true));
  if (kind == K_Q5_1) return v128.or(v128.and(i16x8.shr_u(v128.load(blk + 8), 4), mask(LOW4)), fifthBits(v128.load32_splat(blk + 4), true));
  return ASC_FEATURE_RELAXED_SIMD ? i8x16.abs(v128.load(blk + 18)) : v128.load(blk + 18);
}

/**
 * Integer dot (i32x4 partial sums) of one block's codes `lo`, `hi` ({@link codesLo}, {@link codesHi}) with one
 * token's Q8 values at `xq`. Q8_0 with relaxed SIMD: the weight signs move onto the activations (|w|·(±x), as
 * ggml's AVX2 `mul_sum_i8_pairs`) so one `relaxed_dot_i8x16_i7x16_s` (pmaddubsw) does 16 products into i16 pairs,
 * each half widened on its own (pmaddwd; two halves added in i16 could overflow): |w| ≤ 127 as ggml quantizes (a
 * stored −128 still gives the exact product on x86, where the operand is read unsigned) and |x| ≤ 127, so the
 * pairwise i16 sums cannot saturate. 5–11% faster than chaining two `relaxed_dot_i8x16_i7x16_add_s`, which V8
 * lowers to three instructions each without AVX-VNNI. The sign select is a `relaxed_laneselect` (one pblendvb):
 * its mask lanes are all-ones or all-zeros, where it is deterministic.
 */
// @ts-ignore: decorator
@inline function isumCodes(kind: i32, blk: usize, lo: v128, hi: v128, xq: usize): v128 {
  if (kind != K_Q8_0) return dot32U5(v128.load(xq), lo, v128.load(xq, 16), hi);
  if (ASC_FEATURE_RELAXED_SIMD) {
    const zero = i32x4.splat(0);
    const x0 = v128.load(xq), x1 = v128.load(xq, 16);
    const sx0 = i8x16.relaxed_laneselect(i8x16.neg(x0), x0, i8x16.lt_s(v128.load(blk + 2), zero));
    const sx1 = i8x16.relaxed_laneselect(i8x16.neg(x1), x1, i8x16.lt_s(v128.load(blk + 18), zero));
    return i32x4.add(i32x4.extadd_pairwise_i16x8_s(dot16(sx0, lo)), i32x4.extadd_pairwise_i16x8_s(dot16(sx1, hi)));
  }
  return dotI8(dotI8(i32x4.splat(0), v128.load(xq), lo), v128.load(xq, 16), hi);
}

/** Block integer dot of 32-wide type `kind` with one token's Q8 values. */
// @ts-ignore: decorator
@inline function isum32(kind: i32, blk: usize, xq: usize): v128 {
  return isumCodes(kind, blk, codesLo(kind, blk), codesHi(kind, blk), xq);
}

/**
 * One token's step of {@link dotQ32} over blocks b..b+3 (at `blk`), from their codes unpacked by the caller:
 * `acc + f32(Σ_blocks isum − offset·Σx)·(d_w·d_x)`, lane j for block b + j. `x` is the token's Q8 record; `dw` the
 * four blocks' weight scales as f32.
 */
// @ts-ignore: decorator
@inline function stepQ32(
  acc: v128, kind: i32, blk: usize, bytes: usize, l0: v128, h0: v128, l1: v128, h1: v128, l2: v128, h2: v128,
  l3: v128, h3: v128, x: usize, b: i32, nb: i32, cols: i32, dw: v128,
): v128 {
  const xq = x + (<usize>b << 5), ob = <usize>b << 2;
  const xd = x + <usize>cols, xsum = xd + (<usize>nb << 3);
  // Code offsets (8 for Q4_0, 16 for Q5_0) are applied once per block as −offset·Σx.
  const shift = kind == K_Q4_0 ? 3 : kind == K_Q5_0 ? 4 : 0;
  let s = reduce4(
    isumCodes(kind, blk, l0, h0, xq),
    isumCodes(kind, blk + bytes, l1, h1, xq + 32),
    isumCodes(kind, blk + 2 * bytes, l2, h2, xq + 64),
    isumCodes(kind, blk + 3 * bytes, l3, h3, xq + 96),
  );
  if (shift) s = i32x4.sub(s, i32x4.shl(v128.load(xsum + ob), shift));
  return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.mul(dw, v128.load(xd + ob))));
}

/**
 * Row · Q8 activations for Q4_0: `Σ_b d_w·d_x·isum_b`. Four blocks at a time: their integer sums are reduced into
 * one vector and scaled with four f16 scales converted at once. (This order is within a few ulp of llama.cpp's
 * repacked Q4_0 GEMV; its one f32 chain per row was 20–45% slower here. The other 32-wide types take
 * {@link dotQ32Lanes} or {@link dotQ32Min}.)
 */
// @ts-ignore: decorator
@inline function dotQ32(w: usize, x: usize, nb: i32, cols: i32, kind: i32, bytes: usize): f32 {
  let acc = f32x4.splat(0);
  let b = 0;
  for (; b + 4 <= nb; b += 4) {
    const blk = w + <usize>b * bytes;
    const b1 = blk + bytes, b2 = blk + 2 * bytes, b3 = blk + 3 * bytes;
    acc = stepQ32(acc, kind, blk, bytes, codesLo(kind, blk), codesHi(kind, blk), codesLo(kind, b1), codesHi(kind, b1),
      codesLo(kind, b2), codesHi(kind, b2), codesLo(kind, b3), codesHi(kind, b3), x, b, nb, cols, f16x4At(blk, bytes));
  }
  return hsumF32(acc) + tailQ32(w, x, b, nb, cols, kind, bytes);
}

/** Four-element group sums (i32x4) of a·b over 16 signed 8-bit lanes (|a|, |b| ≤ 128): exact, adjacent groups. */
// @ts-ignore: decorator
@inline function quadSums(a: v128, b: v128): v128 {
  const lo = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(a), i16x8.extend_low_i8x16_s(b));
  const hi = i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(a), i16x8.extend_high_i8x16_s(b));
  return i32x4.add(i32x4.shuffle(lo, hi, 0, 2, 4, 6), i32x4.shuffle(lo, hi, 1, 3, 5, 7));
}

/**
 * The integer sums of four consecutive elements (ggml's `mul_sum_i8_pairs_float` lanes) of 16 elements of a Q8_0
 * or Q5_0 block (`codes` from {@link codesLo}/{@link codesHi}, `w16` their 16 raw bytes for Q8_0's signs) with
 * the token's 16 Q8 values `xv`. Q5_0's offset 16 comes off each group as 16·Σx.
 */
// @ts-ignore: decorator
@inline function laneSums(kind: i32, codes: v128, w16: usize, xv: v128): v128 {
  if (kind == K_Q8_0) {
    if (!ASC_FEATURE_RELAXED_SIMD) return quadSums(xv, codes);
    const sx = i8x16.relaxed_laneselect(i8x16.neg(xv), xv, i8x16.lt_s(v128.load(w16), i32x4.splat(0)));
    return i32x4.extadd_pairwise_i16x8_s(dot16(sx, codes));
  }
  const cx = ASC_FEATURE_RELAXED_SIMD ? i32x4.extadd_pairwise_i16x8_s(dot16(xv, codes)) : quadSums(xv, codes);
  return i32x4.sub(cx, i32x4.shl(i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(xv)), 4));
}

/** Lane sums of elements 0..15 (`half` 0) or 16..31 (`half` 1) of a Q8_0/Q5_0 block against one token, as f32x4. */
// @ts-ignore: decorator
@inline function laneHalf(kind: i32, blk: usize, xq: usize, half: i32): v128 {
  const c0: usize = kind == K_Q8_0 ? 2 : 6; // Q8_0's raw bytes (signs); unused for Q5_0
  const codes = half == 0 ? codesLo(kind, blk) : codesHi(kind, blk);
  return f32x4.convert_i32x4_s(laneSums(kind, codes, blk + c0 + (<usize>half << 4), v128.load(xq + (<usize>half << 4))));
}

/**
 * Row · Q8_0 activations for Q8_0/Q5_0 weights in the order of llama.cpp on x86 (ggml's AVX2
 * `ggml_vec_dot_q8_0_q8_0`/`q5_0_q8_0` for one token, llamafile's tinyBLAS_Q0_AVX for a batch — the same
 * arithmetic): per block, eight f32 lanes of four-element integer sums, fused into an eight-lane accumulator
 * with d_w·d_x, then `hsum_float_8`.
 */
// @ts-ignore: decorator
@inline function dotQ32Lanes(w: usize, x: usize, nb: i32, cols: i32, kind: i32, bytes: usize): f32 {
  const xd = x + <usize>cols;
  let lo = f32x4.splat(0), hi = f32x4.splat(0);
  let b = 0;
  // Four blocks' d_w·d_x in one vector (f16 scales converted together), then each block's lane sums.
  for (; b + 4 <= nb; b += 4) {
    const blk = w + <usize>b * bytes, xq = x + (<usize>b << 5);
    const dd = f32x4.mul(f16x4At(blk, bytes), v128.load(xd + (<usize>b << 2)));
    const d0 = v128.shuffle<f32>(dd, dd, 0, 0, 0, 0), d1 = v128.shuffle<f32>(dd, dd, 1, 1, 1, 1);
    const d2 = v128.shuffle<f32>(dd, dd, 2, 2, 2, 2), d3 = v128.shuffle<f32>(dd, dd, 3, 3, 3, 3);
    lo = fmadd(d0, laneHalf(kind, blk, xq, 0), lo);
    hi = fmadd(d0, laneHalf(kind, blk, xq, 1), hi);
    lo = fmadd(d1, laneHalf(kind, blk + bytes, xq + 32, 0), lo);
    hi = fmadd(d1, laneHalf(kind, blk + bytes, xq + 32, 1), hi);
    lo = fmadd(d2, laneHalf(kind, blk + 2 * bytes, xq + 64, 0), lo);
    hi = fmadd(d2, laneHalf(kind, blk + 2 * bytes, xq + 64, 1), hi);
    lo = fmadd(d3, laneHalf(kind, blk + 3 * bytes, xq + 96, 0), lo);
    hi = fmadd(d3, laneHalf(kind, blk + 3 * bytes, xq + 96, 1), hi);
  }
  for (; b < nb; b++) {
    const blk = w + <usize>b * bytes, xq = x + (<usize>b << 5);
    const dd = f32x4.splat(f16ToF32(load<u16>(blk)) * load<f32>(xd + (<usize>b << 2)));
    lo = fmadd(dd, laneHalf(kind, blk, xq, 0), lo);
    hi = fmadd(dd, laneHalf(kind, blk, xq, 1), hi);
  }
  return hsum8(lo, hi);
}

/**
 * {@link dotQ32Lanes} of one row with four tokens (Q8 records `xstride` apart), results `ystride` apart: each
 * block's codes are unpacked once for the four tokens; every token's sum takes exactly dotQ32Lanes' operations.
 */
// @ts-ignore: decorator
@inline function dotQ32LanesTok4(
  w: usize, x: usize, xstride: usize, nb: i32, cols: i32, kind: i32, bytes: usize, y: usize, ystride: usize,
): void {
  const c0: usize = kind == K_Q8_0 ? 2 : 6;
  const x1 = x + xstride, x2 = x + 2 * xstride, x3 = x + 3 * xstride;
  let l0 = f32x4.splat(0), l1 = f32x4.splat(0), l2 = f32x4.splat(0), l3 = f32x4.splat(0);
  let h0 = f32x4.splat(0), h1 = f32x4.splat(0), h2 = f32x4.splat(0), h3 = f32x4.splat(0);
  for (let b = 0; b < nb; b++) {
    const blk = w + <usize>b * bytes, ob = <usize>cols + (<usize>b << 2), oq = <usize>b << 5;
    const dw = f16ToF32(load<u16>(blk));
    const cl = codesLo(kind, blk), ch = codesHi(kind, blk);
    const wl = blk + c0, wh = wl + 16;
    let d = f32x4.splat(dw * load<f32>(x + ob));
    l0 = fmadd(d, f32x4.convert_i32x4_s(laneSums(kind, cl, wl, v128.load(x + oq))), l0);
    h0 = fmadd(d, f32x4.convert_i32x4_s(laneSums(kind, ch, wh, v128.load(x + oq, 16))), h0);
    d = f32x4.splat(dw * load<f32>(x1 + ob));
    l1 = fmadd(d, f32x4.convert_i32x4_s(laneSums(kind, cl, wl, v128.load(x1 + oq))), l1);
    h1 = fmadd(d, f32x4.convert_i32x4_s(laneSums(kind, ch, wh, v128.load(x1 + oq, 16))), h1);
    d = f32x4.splat(dw * load<f32>(x2 + ob));
    l2 = fmadd(d, f32x4.convert_i32x4_s(laneSums(kind, cl, wl, v128.load(x2 + oq))), l2);
    h2 = fmadd(d, f32x4.convert_i32x4_s(laneSums(kind, ch, wh, v128.load(x2 + oq, 16))), h2);
    d = f32x4.splat(dw * load<f32>(x3 + ob));
    l3 = fmadd(d, f32x4.convert_i32x4_s(laneSums(kind, cl, wl, v128.load(x3 + oq))), l3);
    h3 = fmadd(d, f32x4.convert_i32x4_s(laneSums(kind, ch, wh, v128.load(x3 + oq, 16))), h3);
  }
  store<f32>(y, hsum8(l0, h0));
  store<f32>(y + ystride, hsum8(l1, h1));
  store<f32>(y + 2 * ystride, hsum8(l2, h2));
  store<f32>(y + 3 * ystride, hsum8(l3, h3));
}

/**
 * Row · Q8_1 activations for Q4_1/Q5_1 in the order of ggml's AVX2 `ggml_vec_dot_q4_1_q8_1`/`q5_1_q8_1` (both
 * prompt and decode in llama.cpp: no repacked or llamafile path takes these types): per block, eight f32 lanes
 * of four-element integer sums, fused into an eight-lane accumulator with d_w·d_x; the m_w·s_x terms summed on
 * their own; `hsum_float_8(acc) + Σm·s`. The min terms nearly cancel the scaled sums, so a different rounding
 * order shows in the result well above one ulp — enough to round the next layer's 8-bit activations apart.
 */
// @ts-ignore: decorator
@inline function dotQ32Min(w: usize, x: usize, nb: i32, cols: i32, kind: i32, bytes: usize): f32 {
  const xd = x + <usize>cols, xs = xd + (<usize>nb << 2);
  let lo = f32x4.splat(0), hi = f32x4.splat(0);
  let summs: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const blk = w + <usize>b * bytes, xq = x + (<usize>b << 5), ob = <usize>b << 2;
    summs += f16ToF32(load<u16>(blk, 2)) * load<f32>(xs + ob);
    const dd = f32x4.splat(f16ToF32(load<u16>(blk)) * load<f32>(xd + ob));
    const qlo = f32x4.convert_i32x4_s(i32x4.extadd_pairwise_i16x8_s(dot16(v128.load(xq), codesLo(kind, blk))));
    const qhi = f32x4.convert_i32x4_s(i32x4.extadd_pairwise_i16x8_s(dot16(v128.load(xq, 16), codesHi(kind, blk))));
    lo = fmadd(qlo, dd, lo);
    hi = fmadd(qhi, dd, hi);
  }
  return hsum8(lo, hi) + summs;
}

/** The blocks b..nb of {@link dotQ32} that do not fill a group of four, one at a time. */
// @ts-ignore: decorator
@inline function tailQ32(w: usize, x: usize, b0: i32, nb: i32, cols: i32, kind: i32, bytes: usize): f32 {
  const xd = x + <usize>cols, xsum = xd + (<usize>nb << 3);
  const shift = kind == K_Q4_0 ? 3 : kind == K_Q5_0 ? 4 : 0;
  let tail: f32 = 0;
  for (let b = b0; b < nb; b++) {
    const blk = w + <usize>b * bytes;
    let s = hsumI32(isum32(kind, blk, x + (<usize>b << 5)));
    if (shift) s -= load<i32>(xsum + (<usize>b << 2)) << shift;
    tail += f16ToF32(load<u16>(blk)) * load<f32>(xd + (<usize>b << 2)) * <f32>s;
  }
  return tail;
}

/**
 * {@link dotQ32} of one row with four tokens (Q8 records `xstride` apart), results `ystride` apart. The row's
 * codes and scales are unpacked once per four blocks and shared by the four tokens (prompt batches: 1.4–1.6×
 * faster than a row per token); each token's sum takes exactly dotQ32's operations, so the results are equal bit
 * for bit.
 */
// @ts-ignore: decorator
@inline function dotQ32Tok4(
  w: usize, x: usize, xstride: usize, nb: i32, cols: i32, kind: i32, bytes: usize, y: usize, ystride: usize,
): void {
  const x1 = x + xstride, x2 = x + 2 * xstride, x3 = x + 3 * xstride;
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let b = 0;
  for (; b + 4 <= nb; b += 4) {
    const blk = w + <usize>b * bytes;
    const b1 = blk + bytes, b2 = blk + 2 * bytes, b3 = blk + 3 * bytes;
    const l0 = codesLo(kind, blk), h0 = codesHi(kind, blk), l1 = codesLo(kind, b1), h1 = codesHi(kind, b1);
    const l2 = codesLo(kind, b2), h2 = codesHi(kind, b2), l3 = codesLo(kind, b3), h3 = codesHi(kind, b3);
    const dw = f16x4At(blk, bytes);
    a0 = stepQ32(a0, kind, blk, bytes, l0, h0, l1, h1, l2, h2, l3, h3, x, b, nb, cols, dw);
    a1 = stepQ32(a1, kind, blk, bytes, l0, h0, l1, h1, l2, h2, l3, h3, x1, b, nb, cols, dw);
    a2 = stepQ32(a2, kind, blk, bytes, l0, h0, l1, h1, l2, h2, l3, h3, x2, b, nb, cols, dw);
    a3 = stepQ32(a3, kind, blk, bytes, l0, h0, l1, h1, l2, h2, l3, h3, x3, b, nb, cols, dw);
  }
  store<f32>(y, hsumF32(a0) + tailQ32(w, x, b, nb, cols, kind, bytes));
  store<f32>(y + ystride, hsumF32(a1) + tailQ32(w, x1, b, nb, cols, kind, bytes));
  store<f32>(y + 2 * ystride, hsumF32(a2) + tailQ32(w, x2, b, nb, cols, kind, bytes));
  store<f32>(y + 3 * ystride, hsumF32(a3) + tailQ32(w, x3, b, nb, cols, kind, bytes));
}

/**
 * `Y = X·Wᵀ` for the 32-wide types: per block of TOKEN_BLOCK tokens, each row of this thread's share against the
 * tokens four at a time ({@link dotQ32Tok4} for Q4_0, {@link dotQ32LanesTok4} for Q8_0/Q5_0), the last nTok mod 4
 * one at a time; Q4_1/Q5_1 ({@link dotQ32Min}) one at a time throughout.
 */
// @ts-ignore: decorator
@inline function matmulQ32(
  w: usize, x: usize, y: usize, rows: i32, cols: i32, nTok: i32, ith: i32, nth: i32, kind: i32, bytes: usize,
  hasMin: bool,
): void {
  const r0 = splitStart(rows, ith, nth), r1 = splitStart(rows, ith + 1, nth);
  const nb = cols >> 5, rb = <usize>nb * bytes, xs = q8Stride(cols), ys = <usize>rows << 2;
  for (let t0 = 0; t0 < nTok; t0 += TOKEN_BLOCK) {
    const t1 = min(nTok, t0 + TOKEN_BLOCK);
    for (let r = r0; r < r1; r++) {
      const wr = w + <usize>r * rb;
      let t = t0;
      // Four-token tiles where the type has one (Q4_1/Q5_1 take one token at a time).
      for (; !hasMin && t + 4 <= t1; t += 4) {
        const xt = x + <usize>t * xs, yt = y + <usize>t * ys + (<usize>r << 2);
        if (kind == K_Q4_0) dotQ32Tok4(wr, xt, xs, nb, cols, kind, bytes, yt, ys);
        else dotQ32LanesTok4(wr, xt, xs, nb, cols, kind, bytes, yt, ys);
      }
      for (; t < t1; t++) {
        const xt = x + <usize>t * xs;
        const v = hasMin ? dotQ32Min(wr, xt, nb, cols, kind, bytes)
          : kind == K_Q4_0 ? dotQ32(wr, xt, nb, cols, kind, bytes) : dotQ32Lanes(wr, xt, nb, cols, kind, bytes);
        store<f32>(y + <usize>t * ys + (<usize>r << 2), v);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// K-quants (256-wide super-blocks) against Q8K activations. `nb` = cols/256.

/**
 * The eight 6-bit scales (bytes 0..7) and mins (bytes 8..15) of a Q4_K/Q5_K `scales[12]`, unpacked with ggml's
 * 32-bit mask trick (equivalent to `get_scale_min_k4` for j = 0..7).
 */
// @ts-ignore: decorator
@inline function scalesMinsK4(sc: usize): v128 {
  const u0 = load<u32>(sc), u1 = load<u32>(sc, 4), u2 = load<u32>(sc, 8);
  let v = i32x4.splat(u0 & 0x3f3f3f3f);
  v = i32x4.replace_lane(v, 1, (u2 & 0x0f0f0f0f) | (((u0 >> 6) & 0x03030303) << 4));
  v = i32x4.replace_lane(v, 2, u1 & 0x3f3f3f3f);
  return i32x4.replace_lane(v, 3, ((u2 >> 4) & 0x0f0f0f0f) | (((u1 >> 6) & 0x03030303) << 4));
}

/**
 * Q4_K {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]} and Q5_K {…; u8 qh[32]; u8 qs[128]}: value =
 * d·sc·code − dmin·m per 32-wide sub-block; 64-value chunk j holds sub-block 2j in its low nibbles and 2j+1 in its
 * high nibbles; Q5_K's fifth bit of value l of sub-block s is bit s of qh[l].
 */
// @ts-ignore: decorator
@inline function kBytes(five: bool): usize {
  return five ? 176 : 144;
}

/**
 * One code vector of a Q4_K/Q5_K super-block: 64-value chunk `j` (0..3), its high nibbles (`upper`: sub-block
 * 2j + 1) or low ones (sub-block 2j), values 16..31 (`second`) or 0..15 of the sub-block; Q5_K adds the fifth bit
 * from `h` (qh bytes 0..15 or 16..31, matching `second`).
 */
// @ts-ignore: decorator
@inline function codeQK45(qs: usize, j: i32, upper: bool, second: bool, five: bool, h: v128): v128 {
  const q = v128.load(qs + (<usize>j << 5) + (second ? 16 : 0));
  let c = upper ? v128.and(i16x8.shr_u(q, 4), mask(LOW4)) : v128.and(q, mask(LOW4));
  if (five) {
    const m = mask(BIT_J + (<usize>(2 * j + (upper ? 1 : 0)) << 4));
    c = v128.or(c, v128.and(i8x16.eq(v128.and(h, m), m), mask(X10)));
  }
  return c;
}

/**
 * `isum + (sub-block sums of chunks 2·half and 2·half + 1) · their scales` for one token's Q8K values `xq` of this
 * super-block, from the half's eight code vectors (chunk 2·half: l0 l1 low nibbles, u0 u1 high; then chunk
 * 2·half + 1). Integer arithmetic only: exact in any order.
 */
// @ts-ignore: decorator
@inline function halfQK45(
  isum: v128, xq: usize, half: i32, l0: v128, l1: v128, u0: v128, u1: v128, l2: v128, l3: v128, u2: v128, u3: v128,
  scv: v128,
): v128 {
  const xa = xq + (<usize>(2 * half) << 6), xb = xa + 64;
  const v0 = dot32U5(v128.load(xa), l0, v128.load(xa, 16), l1);
  const v1 = dot32U5(v128.load(xa, 32), u0, v128.load(xa, 48), u1);
  const v2 = dot32U5(v128.load(xb), l2, v128.load(xb, 16), l3);
  const v3 = dot32U5(v128.load(xb, 32), u2, v128.load(xb, 48), u3);
  return i32x4.add(isum, i32x4.mul(reduce4(v0, v1, v2, v3), scv));
}

/**
 * m_s·(Σx of sub-block s) for sub-blocks 4·`half` .. 4·`half`+3 of super-block b, one token (Q8K record `x`), as
 * i32x4 lanes: exact integers.
 */
// @ts-ignore: decorator
@inline function minLanesQK45(x: usize, b: i32, nb: i32, cols: i32, sm: v128, half: i32): v128 {
  const g = x + <usize>cols + (<usize>nb << 2) + (<usize>b << 6) + (<usize>half << 5);
  const a0 = v128.load(g), a1 = v128.load(g, 16);
  const p = i32x4.add(i32x4.shuffle(a0, a1, 0, 2, 4, 6), i32x4.shuffle(a0, a1, 1, 3, 5, 7));
  const m16 = i16x8.extend_high_i8x16_u(sm);
  return i32x4.mul(p, half == 0 ? i32x4.extend_low_i16x8_u(m16) : i32x4.extend_high_i16x8_u(m16));
}

/**
 * One token's half super-block of {@link dotQK45Tok4} in the order of llama.cpp's repacked Q4_K GEMM
 * (ggml_gemm_q4_K_8x8_q8_K): per pair of sub-blocks (64 values), the scaled integer sum and the min sum are each
 * fused into their own accumulator. `acc` holds [sum, mins] in lanes 0 and 1.
 */
// @ts-ignore: decorator
@inline function pairsQK45(acc: v128, p: v128, mins: v128, d: f32, dm: f32): v128 {
  let s = f32x4.extract_lane(acc, 0), m = f32x4.extract_lane(acc, 1);
  s = fma32(<f32>(i32x4.extract_lane(p, 0) + i32x4.extract_lane(p, 1)), d, s);
  m = fma32(<f32>(i32x4.extract_lane(mins, 0) + i32x4.extract_lane(mins, 1)), dm, m);
  s = fma32(<f32>(i32x4.extract_lane(p, 2) + i32x4.extract_lane(p, 3)), d, s);
  m = fma32(<f32>(i32x4.extract_lane(mins, 2) + i32x4.extract_lane(mins, 3)), dm, m);
  return f32x4.replace_lane(f32x4.replace_lane(acc, 0, s), 1, m);
}

/**
 * Σ m_s·(Σx of sub-block s) of super-block b for one token (Q8K record `x`, its 16-wide sums), the mins from
 * `sm` ({@link scalesMinsK4}): an exact integer.
 */
// @ts-ignore: decorator
@inline function minSumQK45(x: usize, b: i32, nb: i32, cols: i32, sm: v128): i32 {
  const g = x + <usize>cols + (<usize>nb << 2) + (<usize>b << 6);
  const a0 = v128.load(g), a1 = v128.load(g, 16), a2 = v128.load(g, 32), a3 = v128.load(g, 48);
  const p03 = i32x4.add(i32x4.shuffle(a0, a1, 0, 2, 4, 6), i32x4.shuffle(a0, a1, 1, 3, 5, 7));
  const p47 = i32x4.add(i32x4.shuffle(a2, a3, 0, 2, 4, 6), i32x4.shuffle(a2, a3, 1, 3, 5, 7));
  const m16 = i16x8.extend_high_i8x16_u(sm);
  return hsumI32(i32x4.add(
    i32x4.mul(p03, i32x4.extend_low_i16x8_u(m16)),
    i32x4.mul(p47, i32x4.extend_high_i16x8_u(m16)),
  ));
}

/**
 * Row · Q8K activations for Q4_K (one token: llama.cpp's repacked GEMV order). Codes are unpacked chunk by chunk
 * (fewer live vectors than {@link dotQK45Tok4}'s half super-blocks).
 */
// @ts-ignore: decorator
@inline function dotQK45(w: usize, x: usize, nb: i32, cols: i32): f32 {
  const zero = i8x16.splat(0);
  let sum: f32 = 0, mins: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const blk = w + <usize>b * 144;
    const qs = blk + 16;
    const xq = x + (<usize>b << 8);
    // Sub-block sums v[0..7] (i32x4 partial sums each), four at a time through reduce4.
    let isum = i32x4.splat(0);
    const sm = scalesMinsK4(blk + 4);
    const sc16 = i16x8.extend_low_i8x16_u(sm);
    for (let half = 0; half < 2; half++) {
      let v0 = zero, v1 = zero, v2 = zero, v3 = zero;
      for (let k = 0; k < 2; k++) {
        const j = 2 * half + k;
        const xa = xq + (<usize>j << 6);
        const lo = dot32U5(v128.load(xa), codeQK45(qs, j, false, false, false, zero), v128.load(xa, 16),
          codeQK45(qs, j, false, true, false, zero));
        const hi = dot32U5(v128.load(xa, 32), codeQK45(qs, j, true, false, false, zero), v128.load(xa, 48),
          codeQK45(qs, j, true, true, false, zero));
        if (k == 0) {
          v0 = lo;
          v1 = hi;
        } else {
          v2 = lo;
          v3 = hi;
        }
      }
      const scv = half == 0 ? i32x4.extend_low_i16x8_u(sc16) : i32x4.extend_high_i16x8_u(sc16);
      isum = i32x4.add(isum, i32x4.mul(reduce4(v0, v1, v2, v3), scv));
    }
    // llama.cpp repacks Q4_K on x86 (ggml_gemv/gemm_q4_K_8x8_q8_K): per super-block, the whole integer sum and
    // the whole min sum are each fused into their own f32 accumulator; the result is their difference.
    const dy = load<f32>(x + <usize>cols + (<usize>b << 2));
    sum = fma32(<f32>hsumI32(isum), f16ToF32(load<u16>(blk)) * dy, sum);
    mins = fma32(<f32>minSumQK45(x, b, nb, cols, sm), f16ToF32(load<u16>(blk, 2)) * dy, mins);
  }
  return sum - mins;
}

/**
 * Q4_K row · four tokens (Q8K records `xstride` apart), results `ystride` apart, in the order of llama.cpp's
 * repacked GEMM, which takes a prompt four rows at a time (the last nTok mod 4 go through the GEMV order of
 * {@link dotQK45}): each half super-block's codes are unpacked once for the four tokens.
 */
// @ts-ignore: decorator
@inline function dotQK45Tok4(w: usize, x: usize, xstride: usize, nb: i32, cols: i32, y: usize, ystride: usize): void {
  const zero = i8x16.splat(0);
  const x1 = x + xstride, x2 = x + 2 * xstride, x3 = x + 3 * xstride;
  // Lanes 0 and 1 of each: the token's sum and min-sum accumulators.
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  for (let b = 0; b < nb; b++) {
    const blk = w + <usize>b * 144;
    const qs = blk + 16;
    const sm = scalesMinsK4(blk + 4);
    const sc16 = i16x8.extend_low_i8x16_u(sm);
    const xo = <usize>b << 8;
    const dw = f16ToF32(load<u16>(blk)), dm = f16ToF32(load<u16>(blk, 2)), xd = <usize>cols + (<usize>b << 2);
    const y0 = load<f32>(x + xd), y1 = load<f32>(x1 + xd), y2 = load<f32>(x2 + xd), y3 = load<f32>(x3 + xd);
    for (let half = 0; half < 2; half++) {
      const j = 2 * half;
      const l0 = codeQK45(qs, j, false, false, false, zero), l1 = codeQK45(qs, j, false, true, false, zero);
      const u0 = codeQK45(qs, j, true, false, false, zero), u1 = codeQK45(qs, j, true, true, false, zero);
      const l2 = codeQK45(qs, j + 1, false, false, false, zero), l3 = codeQK45(qs, j + 1, false, true, false, zero);
      const u2 = codeQK45(qs, j + 1, true, false, false, zero), u3 = codeQK45(qs, j + 1, true, true, false, zero);
      const scv = half == 0 ? i32x4.extend_low_i16x8_u(sc16) : i32x4.extend_high_i16x8_u(sc16);
      const z = i32x4.splat(0);
      a0 = pairsQK45(a0, halfQK45(z, x + xo, half, l0, l1, u0, u1, l2, l3, u2, u3, scv), minLanesQK45(x, b, nb, cols, sm, half), dw * y0, dm * y0);
      a1 = pairsQK45(a1, halfQK45(z, x1 + xo, half, l0, l1, u0, u1, l2, l3, u2, u3, scv), minLanesQK45(x1, b, nb, cols, sm, half), dw * y1, dm * y1);
      a2 = pairsQK45(a2, halfQK45(z, x2 + xo, half, l0, l1, u0, u1, l2, l3, u2, u3, scv), minLanesQK45(x2, b, nb, cols, sm, half), dw * y2, dm * y2);
      a3 = pairsQK45(a3, halfQK45(z, x3 + xo, half, l0, l1, u0, u1, l2, l3, u2, u3, scv), minLanesQK45(x3, b, nb, cols, sm, half), dw * y3, dm * y3);
    }
  }
  store<f32>(y, f32x4.extract_lane(a0, 0) - f32x4.extract_lane(a0, 1));
  store<f32>(y + ystride, f32x4.extract_lane(a1, 0) - f32x4.extract_lane(a1, 1));
  store<f32>(y + 2 * ystride, f32x4.extract_lane(a2, 0) - f32x4.extract_lane(a2, 1));
  store<f32>(y + 3 * ystride, f32x4.extract_lane(a3, 0) - f32x4.extract_lane(a3, 1));
}

/**
 * Row · Q8K activations for Q5_K in the order of ggml's AVX2 `ggml_vec_dot_q5_K_q8_K` (llama.cpp's path on x86,
 * batch or not: Q5_K is not repacked there): per super-block eight i32 lanes — lane m sums sc_s·Σ code·x over the
 * values 4m..4m+3 (mod 32) of every sub-block s — fused into an eight-lane f32 accumulator with d_x·d_w; the mins
 * summed apart as (−d_x·dmin)·Σ m_s·Σx; `hsum_float_8(acc) + Σ`.
 */
// @ts-ignore: decorator
@inline function dotQ5_K(w: usize, x: usize, nb: i32, cols: i32): f32 {
  let lo = f32x4.splat(0), hi = f32x4.splat(0);
  let summs: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const blk = w + <usize>b * 176;
    const qs = blk + 48, xq = x + (<usize>b << 8);
    const h0 = v128.load(blk + 16), h1 = v128.load(blk + 32);
    const sm = scalesMinsK4(blk + 4);
    let sLo = i32x4.splat(0), sHi = i32x4.splat(0);
    const scales = <u64>i64x2.extract_lane(sm, 0); // the eight 6-bit sub-block scales, byte s for sub-block s
    for (let j = 0; j < 4; j++) {
      const xa = xq + (<usize>j << 6);
      // Scales in i16 lanes: pmaddwd widens the pair sums and applies the scale at once (see q6Chunk).
      const scA = i16x8.splat(<i16>((scales >> (<u64>(16 * j))) & 0xff));
      const scB = i16x8.splat(<i16>((scales >> (<u64>(16 * j + 8))) & 0xff));
      sLo = i32x4.add(sLo, i32x4.dot_i16x8_s(dot16(v128.load(xa), codeQK45(qs, j, false, false, true, h0)), scA));
      sHi = i32x4.add(sHi, i32x4.dot_i16x8_s(dot16(v128.load(xa, 16), codeQK45(qs, j, false, true, true, h1)), scA));
      sLo = i32x4.add(sLo, i32x4.dot_i16x8_s(dot16(v128.load(xa, 32), codeQK45(qs, j, true, false, true, h0)), scB));
      sHi = i32x4.add(sHi, i32x4.dot_i16x8_s(dot16(v128.load(xa, 48), codeQK45(qs, j, true, true, true, h1)), scB));
    }
    const dy = load<f32>(x + <usize>cols + (<usize>b << 2));
    summs = fma32(-dy * f16ToF32(load<u16>(blk, 2)), <f32>minSumQK45(x, b, nb, cols, sm), summs);
    const d = f32x4.splat(dy * f16ToF32(load<u16>(blk)));
    lo = fmadd(d, f32x4.convert_i32x4_s(sLo), lo);
    hi = fmadd(d, f32x4.convert_i32x4_s(sHi), hi);
  }
  return hsum8(lo, hi) + summs;
}

/** `Y = X·Wᵀ` for Q4_K/Q5_K: as {@link matmulQ32}, four tokens at a time ({@link dotQK45Tok4}). */
// @ts-ignore: decorator
@inline function matmulQK45(w: usize, x: usize, y: usize, rows: i32, cols: i32, nTok: i32, ith: i32, nth: i32, five: bool): void {
  const r0 = splitStart(rows, ith, nth), r1 = splitStart(rows, ith + 1, nth);
  const nb = cols >> 8, rb = <usize>nb * kBytes(five), xs = q8kStride(cols), ys = <usize>rows << 2;
  for (let t0 = 0; t0 < nTok; t0 += TOKEN_BLOCK) {
    const t1 = min(nTok, t0 + TOKEN_BLOCK);
    for (let r = r0; r < r1; r++) {
      const wr = w + <usize>r * rb;
      let t = t0;
      if (five) {
        for (; t < t1; t++) store<f32>(y + <usize>t * ys + (<usize>r << 2), dotQ5_K(wr, x + <usize>t * xs, nb, cols));
        continue;
      }
      for (; t + 4 <= t1; t += 4) dotQK45Tok4(wr, x + <usize>t * xs, xs, nb, cols, y + <usize>t * ys + (<usize>r << 2), ys);
      for (; t < t1; t++) store<f32>(y + <usize>t * ys + (<usize>r << 2), dotQK45(wr, x + <usize>t * xs, nb, cols));
    }
  }
}

/**
 * Q6_K {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}: value = d·sc·(code − 32), code = 4 low bits from ql | 2 high
 * bits from qh; one scale per 16 values. In 128-value chunk n, for l in 0..31: values l, l+32, l+64, l+96 take the
 * low nibble of ql[l], low of ql[l+32], high of ql[l], high of ql[l+32], and bits 0-1, 2-3, 4-5, 6-7 of qh[l].
 */

/**
 * The code vector of a Q6_K chunk for values `o`..`o`+15 of quarter `which` (0..3: l, l+32, l+64, l+96 above):
 * 4 bits from `ql` | 2 bits from `qh`, as unsigned 0..63.
 */
// @ts-ignore: decorator
@inline function codeQ6(ql: usize, qh: usize, o: usize, which: i32): v128 {
  const m30 = mask(M30);
  const hb = v128.load(qh + o);
  if (which == 0) return v128.or(v128.and(v128.load(ql + o), mask(LOW4)), v128.and(i16x8.shl(hb, 4), m30));
  if (which == 1) return v128.or(v128.and(v128.load(ql + o, 32), mask(LOW4)), v128.and(i16x8.shl(hb, 2), m30));
  if (which == 2) return v128.or(v128.and(i16x8.shr_u(v128.load(ql + o), 4), mask(LOW4)), v128.and(hb, m30));
  return v128.or(v128.and(i16x8.shr_u(v128.load(ql + o, 32), 4), mask(LOW4)), v128.and(i16x8.shr_u(hb, 2), m30));
}

/** Four signed 8-bit scales at `p` as i32x4. */
// @ts-ignore: decorator
@inline function scales4(p: usize): v128 {
  return i32x4.extend_low_i16x8_s(i16x8.extend_low_i8x16_s(v128.load32_zero(p)));
}

/**
 * The code offset of ggml's Q6_K lanes 4·`half` .. 4·`half`+3 (`q8sclsub`): lane m takes 32·(sc[2m]·Σx[2m] +
 * sc[2m+1]·Σx[2m+1]) of the 16-value sums `bsb` — values 32m..32m+31, not the values the lane's products cover;
 * only the total is meaningful, but the lanes are what the f32 accumulation rounds.
 */
// @ts-ignore: decorator
@inline function q6Offset(blk: usize, bsb: usize, half: i32): v128 {
  const o = <usize>half << 3;
  const p0 = i32x4.mul(v128.load(bsb + (o << 2)), scales4(blk + 192 + o));
  const p1 = i32x4.mul(v128.load(bsb + (o << 2), 16), scales4(blk + 196 + o));
  return i32x4.shl(i32x4.add(i32x4.shuffle(p0, p1, 0, 2, 4, 6), i32x4.shuffle(p0, p1, 1, 3, 5, 7)), 5);
}

/**
 * One half chunk of a Q6_K super-block's lanes: `a +` Σ_which sc·quads(x, codes), chunk n's four code vectors
 * `c0..c3` of this half and their scales at `sc` (two apart). Each scale multiplies the i16 pair sums in the
 * widening itself (`i32x4.dot_i16x8_s`, one pmaddwd as ggml's `_mm256_madd_epi16(scale, p16)`): the same lanes
 * as widening then an i32 multiply (two instructions more, one of them the slow pmulld).
 */
// @ts-ignore: decorator
@inline function q6Chunk(a: v128, xn: usize, c0: v128, c1: v128, c2: v128, c3: v128, sc: usize): v128 {
  a = i32x4.add(a, i32x4.dot_i16x8_s(dot16(v128.load(xn), c0), scale16(sc)));
  a = i32x4.add(a, i32x4.dot_i16x8_s(dot16(v128.load(xn, 32), c1), scale16(sc + 2)));
  a = i32x4.add(a, i32x4.dot_i16x8_s(dot16(v128.load(xn, 64), c2), scale16(sc + 4)));
  return i32x4.add(a, i32x4.dot_i16x8_s(dot16(v128.load(xn, 96), c3), scale16(sc + 6)));
}

/** The signed 8-bit scale at `p` in every i16 lane. */
// @ts-ignore: decorator
@inline function scale16(p: usize): v128 {
  return i16x8.extend_low_i8x16_s(v128.load8_splat(p));
}

/**
 * ggml's Q6_K lanes 4·`half` .. 4·`half`+3 of one super-block against one token (Q8K values `xq`, 16-value sums
 * `bsb`), as f32x4: lane m sums sc·code·x over the values l ≡ 4m..4m+3 (mod 32) of every quarter of both chunks,
 * minus {@link q6Offset}. Exact integers.
 */
// @ts-ignore: decorator
@inline function q6Half(blk: usize, xq: usize, bsb: usize, half: i32): v128 {
  const o = <usize>half << 4;
  let a = i32x4.splat(0);
  for (let n = 0; n < 2; n++) {
    const ql = blk + (<usize>n << 6), qh = blk + 128 + (<usize>n << 5);
    a = q6Chunk(a, xq + (<usize>n << 7) + o, codeQ6(ql, qh, o, 0), codeQ6(ql, qh, o, 1), codeQ6(ql, qh, o, 2),
      codeQ6(ql, qh, o, 3), blk + 192 + (<usize>n << 3) + <usize>half);
  }
  return f32x4.convert_i32x4_s(i32x4.sub(a, q6Offset(blk, bsb, half)));
}

/**
 * Row · Q8K activations for Q6_K in the order of ggml's AVX2 `ggml_vec_dot_q6_K_q8_K` (llama.cpp's path on x86 for
 * prompts and decode alike: no repacking or llamafile for Q6_K there): per super-block eight i32 lanes
 * ({@link q6Half}), fused into an eight-lane f32 accumulator with d_x·d_w, then `hsum_float_8`.
 */
// @ts-ignore: decorator
@inline function dotQ6_K(w: usize, x: usize, nb: i32, cols: i32): f32 {
  const xd = x + <usize>cols;
  const bs = xd + (<usize>nb << 2);
  let lo = f32x4.splat(0), hi = f32x4.splat(0);
  for (let b = 0; b < nb; b++) {
    const blk = w + <usize>b * 210;
    const xq = x + (<usize>b << 8), bsb = bs + (<usize>b << 6);
    const d = f32x4.splat(load<f32>(xd + (<usize>b << 2)) * f16ToF32(load<u16>(blk + 208)));
    lo = fmadd(d, q6Half(blk, xq, bsb, 0), lo);
    hi = fmadd(d, q6Half(blk, xq, bsb, 1), hi);
  }
  return hsum8(lo, hi);
}

/**
 * {@link dotQ6_K} of one row with four tokens (Q8K records `xstride` apart), results `ystride` apart: each half
 * chunk's codes are unpacked once for the four tokens; every token's sum takes exactly dotQ6_K's operations.
 */
// @ts-ignore: decorator
@inline function dotQ6_KTok4(w: usize, x: usize, xstride: usize, nb: i32, cols: i32, y: usize, ystride: usize): void {
  const x1 = x + xstride, x2 = x + 2 * xstride, x3 = x + 3 * xstride;
  const gOff = <usize>cols + (<usize>nb << 2);
  let l0 = f32x4.splat(0), l1 = l0, l2 = l0, l3 = l0, h0 = l0, h1 = l0, h2 = l0, h3 = l0;
  for (let b = 0; b < nb; b++) {
    const blk = w + <usize>b * 210;
    const dw = f16ToF32(load<u16>(blk + 208)), xd = <usize>cols + (<usize>b << 2), go = gOff + (<usize>b << 6);
    for (let half = 0; half < 2; half++) {
      const o = <usize>half << 4;
      let a0 = i32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
      for (let n = 0; n < 2; n++) {
        const ql = blk + (<usize>n << 6), qh = blk + 128 + (<usize>n << 5);
        const c0 = codeQ6(ql, qh, o, 0), c1 = codeQ6(ql, qh, o, 1), c2 = codeQ6(ql, qh, o, 2), c3 = codeQ6(ql, qh, o, 3);
        const sc = blk + 192 + (<usize>n << 3) + <usize>half, xo = (<usize>b << 8) + (<usize>n << 7) + o;
        a0 = q6Chunk(a0, x + xo, c0, c1, c2, c3, sc);
        a1 = q6Chunk(a1, x1 + xo, c0, c1, c2, c3, sc);
        a2 = q6Chunk(a2, x2 + xo, c0, c1, c2, c3, sc);
        a3 = q6Chunk(a3, x3 + xo, c0, c1, c2, c3, sc);
      }
      const q0 = f32x4.convert_i32x4_s(i32x4.sub(a0, q6Offset(blk, x + go, half)));
      const q1 = f32x4.convert_i32x4_s(i32x4.sub(a1, q6Offset(blk, x1 + go, half)));
      const q2 = f32x4.convert_i32x4_s(i32x4.sub(a2, q6Offset(blk, x2 + go, half)));
      const q3 = f32x4.convert_i32x4_s(i32x4.sub(a3, q6Offset(blk, x3 + go, half)));
      if (half == 0) {
        l0 = fmadd(f32x4.splat(load<f32>(x + xd) * dw), q0, l0);
        l1 = fmadd(f32x4.splat(load<f32>(x1 + xd) * dw), q1, l1);
        l2 = fmadd(f32x4.splat(load<f32>(x2 + xd) * dw), q2, l2);
        l3 = fmadd(f32x4.splat(load<f32>(x3 + xd) * dw), q3, l3);
      } else {
        h0 = fmadd(f32x4.splat(load<f32>(x + xd) * dw), q0, h0);
        h1 = fmadd(f32x4.splat(load<f32>(x1 + xd) * dw), q1, h1);
        h2 = fmadd(f32x4.splat(load<f32>(x2 + xd) * dw), q2, h2);
        h3 = fmadd(f32x4.splat(load<f32>(x3 + xd) * dw), q3, h3);
      }
    }
  }
  store<f32>(y, hsum8(l0, h0));
  store<f32>(y + ystride, hsum8(l1, h1));
  store<f32>(y + 2 * ystride, hsum8(l2, h2));
  store<f32>(y + 3 * ystride, hsum8(l3, h3));
}

// ---------------------------------------------------------------------------------------------------------------
// Exports: one per weight type, same loop. `x` is f32 rows (F32/F16/BF16, `cols` apart) or quantized
// activation records (`q8Stride`/`q8kStride` apart).

/**
 * F32/F16/BF16 weights: llama.cpp multiplies a batch with llamafile's GEMM (tinyBLAS order) when the row length is
 * a multiple of 8, and one token with ggml_vec_dot_f32/f16/bf16, so the two paths take different orders.
 */
// @ts-ignore: decorator
@inline function matmulFloat(kind: i32, w: usize, x: usize, y: usize, rows: i32, cols: i32, nTok: i32, ith: i32, nth: i32): void {
  const r0 = splitStart(rows, ith, nth), r1 = splitStart(rows, ith + 1, nth);
  const rb = <usize>cols << (kind == W_F32 ? 2 : 1), xs = <usize>cols << 2, ys = <usize>rows << 2;
  const gemm = nTok > 1 && (cols & 7) == 0;
  for (let t0 = 0; t0 < nTok; t0 += TOKEN_BLOCK) {
    const t1 = min(nTok, t0 + TOKEN_BLOCK);
    for (let r = r0; r < r1; r++) {
      const wr = w + <usize>r * rb;
      let t = t0;
      for (; gemm && t + 4 <= t1; t += 4) {
        dotFloatGemmTok4(kind, wr, x + <usize>t * xs, xs, cols, y + ((<usize>t * <usize>rows + <usize>r) << 2), ys);
      }
      for (; t < t1; t++) {
        const xt = x + <usize>t * xs;
        const v = gemm ? dotFloatGemm(kind, wr, xt, cols) : kind == W_BF16 ? dotBf16(wr, xt, cols) : dotFloatVec(kind, wr, xt, cols);
        store<f32>(y + ((<usize>t * <usize>rows + <usize>r) << 2), v);
      }
    }
  }
}

export function matmul_f32(w: usize, x: usize, y: usize, rows: i32, cols: i32, nTok: i32, ith: i32, nth: i32): void {
  matmulFloat(W_F32, w, x, y, rows, cols, nTok, ith, nth);
}

export function matmul_f16(w: usize, x: usize, y: usize, rows: i32, cols: i32, nTok: i32, ith: i32, nth: i32): void {
  matmulFloat(W_F16, w, x, y, rows, cols, nTok, ith, nth);
}

export function matmul_bf16(w: usize, x: usize, y: usize, rows: i32, cols: i32, nTok: i32, ith: i32, nth: i32): void {
  matmulFloat(W_BF16, w, x, y, rows, cols, nTok, ith, nth);
}

export function matmul_q4_0(w: usize, x: usize, y: usize, rows: i32, cols: i32, nTok: i32, ith: i32, nth: i32): void {
  matmulQ32(w, x, y, rows, cols, nTok, ith, nth, K_Q4_0, 18, false);
}

export function matmul_q4_1(w: usize, x: usize, y: usize, rows: i32, cols: i32, nTok: i32, ith: i32, nth: i32): void {
  matmulQ32(w, x, y, rows, cols, nTok, ith, nth, K_Q4_1, 20, true);
}

export function matmul_q5_0(w: usize, x: usize, y: usize, rows: i32, cols: i32, nTok: i32, ith: i32, nth: i32): void {
  matmulQ32(w, x, y, rows, cols, nTok, ith, nth, K_Q5_0, 22, false);
}

export function matmul_q5_1(w: usize, x: usize, y: usize, rows: i32, cols: i32, nTok: i32, ith: i32, nth: i32): void {
  matmulQ32(w, x, y, rows, cols, nTok, ith, nth, K_Q5_1, 24, true);
}

export function matmul_q8_0(w: usize, x: usize, y: usize, rows: i32, cols: i32, nTok: i32, ith: i32, nth: i32): void {
  matmulQ32(w, x, y, rows, cols, nTok, ith, nth, K_Q8_0, 34, false);
}

export function matmul_q4_k(w: usize, x: usize, y: usize, rows: i32, cols: i32, nTok: i32, ith: i32, nth: i32): void {
  matmulQK45(w, x, y, rows, cols, nTok, ith, nth, false);
}

export function matmul_q5_k(w: usize, x: usize, y: usize, rows: i32, cols: i32, nTok: i32, ith: i32, nth: i32): void {
  matmulQK45(w, x, y, rows, cols, nTok, ith, nth, true);
}

export function matmul_q6_k(w: usize, x: usize, y: usize, rows: i32, cols: i32, nTok: i32, ith: i32, nth: i32): void {
  const r0 = splitStart(rows, ith, nth), r1 = splitStart(rows, ith + 1, nth);
  const nb = cols >> 8, rb = <usize>nb * 210, xs = q8kStride(cols), ys = <usize>rows << 2;
  for (let t0 = 0; t0 < nTok; t0 += TOKEN_BLOCK) {
    const t1 = min(nTok, t0 + TOKEN_BLOCK);
    for (let r = r0; r < r1; r++) {
      const wr = w + <usize>r * rb;
      let t = t0;
      for (; t + 4 <= t1; t += 4) dotQ6_KTok4(wr, x + <usize>t * xs, xs, nb, cols, y + <usize>t * ys + (<usize>r << 2), ys);
      for (; t < t1; t++) store<f32>(y + <usize>t * ys + (<usize>r << 2), dotQ6_K(wr, x + <usize>t * xs, nb, cols));
    }
  }
}

