// deno-fmt-ignore-file -- AssemblyScript (decorators, `<T>x` casts): deno fmt would drop `@inline`.
/**
 * Single-precision sine and cosine computed as glibc's `sinf`/`cosf` compute them on x86-64 (the Arm
 * optimized-routines algorithm, in the FMA variant glibc selects on an FMA machine), so that RoPE angles equal
 * llama.cpp's bit for bit: the argument is widened to f64, reduced modulo π/2 (one multiply-subtract below 120,
 * a 4/π table with 64-bit integer products above), and a short f64 polynomial in r² is rounded to f32. The f64
 * multiply-adds are fused in the relaxed-SIMD build (f64x2.relaxed_madd) as GCC fuses them there; the plain-SIMD
 * build rounds them separately and may differ in the last bit.
 */

/** a·b + c in f64, fused in the relaxed-SIMD build. */
// @ts-ignore: decorator
@inline function fma64(a: f64, b: f64, c: f64): f64 {
  if (ASC_FEATURE_RELAXED_SIMD) return f64x2.extract_lane(f64x2.relaxed_madd(f64x2.splat(a), f64x2.splat(b), f64x2.splat(c)), 0);
  return a * b + c;
}

// Polynomial coefficients (the cosine ones negated for quadrants 2 and 3), 2/π · 2^24 and π/2.
const HPI_INV: f64 = reinterpret<f64>(0x41645F306DC9C883);
const HPI: f64 = reinterpret<f64>(0x3FF921FB54442D18);
const C1: f64 = reinterpret<f64>(0xBFDFFFFFFD0C621C);
const C2: f64 = reinterpret<f64>(0x3FA55553E1068F19);
const C3: f64 = reinterpret<f64>(0xBF56C087E89A359D);
const C4: f64 = reinterpret<f64>(0x3EF99343027BF8C3);
const S1: f64 = reinterpret<f64>(0xBFC555545995A603);
const S2: f64 = reinterpret<f64>(0x3F81107605230BC4);
const S3: f64 = reinterpret<f64>(0xBF2994EB3774CF24);
/** 2π · 2^-64: turns the 62-bit fixed-point remainder of the large reduction into radians. */
const PI63: f64 = reinterpret<f64>(0x3C1921FB54442D18);
/** 4/π to 192 bits, eight new bits per entry. */
const INV_PIO4: StaticArray<u32> = [
  0xa2, 0xa2f9, 0xa2f983, 0xa2f9836e, 0xf9836e4e, 0x836e4e44, 0x6e4e4415, 0x4e441529,
  0x441529fc, 0x1529fc27, 0x29fc2757, 0xfc2757d1, 0x2757d1f5, 0x57d1f534, 0xd1f534dd, 0xf534ddc0,
  0x34ddc0db, 0xddc0db62, 0xc0db6295, 0xdb629599, 0x6295993c, 0x95993c43, 0x993c4390, 0x3c439041,
];

/** Top 12 bits of the f32 encoding, sign cleared (exponent and the first mantissa bit). */
// @ts-ignore: decorator
@inline function abstop12(y: f32): u32 {
  return (reinterpret<u32>(y) >> 20) & 0x7ff;
}

/** sin(x) for even `n`, cos(x) for odd (negated when `neg`), x in [−π/4, π/4], x2 = x². */
// @ts-ignore: decorator
@inline function poly(x: f64, x2: f64, n: i32, neg: bool): f32 {
  if ((n & 1) == 0) {
    const x3 = x * x2;
    const s1 = fma64(x2, S3, S2);
    const x7 = x3 * x2;
    const s = fma64(x3, S1, x);
    return <f32>fma64(x7, s1, s);
  }
  const sg: f64 = neg ? -1 : 1;
  const x4 = x2 * x2;
  const c2 = fma64(x2, sg * C4, sg * C3);
  const c1 = fma64(x2, sg * C1, sg);
  const x6 = x4 * x2;
  const c = fma64(x4, sg * C2, c1);
  return <f32>fma64(x6, c2, c);
}

/** sin(y) (`cosine` 0) or cos(y) (`cosine` 1), bit for bit glibc's `sinf`/`cosf` on an x86-64 FMA machine. */
export function sincosf(y: f32, cosine: i32): f32 {
  let x = <f64>y;
  const top = abstop12(y);
  if (top < 0x3f4) {
    // |y| < π/4: no reduction (below 2^-12 the answer is y, or 1).
    if (top < 0x398) return cosine ? 1 : y;
    return poly(x, x * x, cosine, false);
  }
  let n: i32, quadrant: i32;
  if (top < 0x42f) {
    // |y| < 120: one multiply-subtract; 2/π is prescaled by 2^24 so the quadrant lands in bits 24..31.
    n = (<i32>(x * HPI_INV) + 0x800000) >> 24;
    x = fma64(-<f64>n, HPI, x);
    quadrant = n;
  } else if (top < 0x7f8) {
    // 32 × 96-bit product with 4/π, from the table entry the exponent selects.
    const xi = reinterpret<u32>(y);
    const arr = (xi >> 26) & 15;
    const shift = (xi >> 23) & 7;
    const m = ((xi & 0xffffff) | 0x800000) << shift;
    let r0 = <u64>(m * unchecked(INV_PIO4[arr]));
    const r1 = <u64>m * <u64>unchecked(INV_PIO4[arr + 4]);
    const r2 = <u64>m * <u64>unchecked(INV_PIO4[arr + 8]);
    r0 = (r2 >> 32) | (r0 << 32);
    r0 += r1;
    const q = (r0 + (<u64>1 << 61)) >> 62;
    r0 -= q << 62;
    x = <f64><i64>r0 * PI63;
    n = <i32>q;
    quadrant = n + <i32>(xi >> 31);
  } else {
    return (y - y) / (y - y);
  }
  const s: f64 = (quadrant & 3) == 1 || (quadrant & 3) == 2 ? -1 : 1;
  return poly(x * s, x * x, n ^ cosine, (quadrant & 2) != 0);
}

/** glibc's `sinf` (see {@link sincosf}). */
export function sinf_glibc(y: f32): f32 {
  return sincosf(y, 0);
}

/** glibc's `cosf` (see {@link sincosf}). */
export function cosf_glibc(y: f32): f32 {
  return sincosf(y, 1);
}
