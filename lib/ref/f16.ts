/**
 * Scalar references for f16 / bf16 conversions with ggml's rounding (round to nearest even).
 * @module
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** f16 bits → number (exact). */
export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** number → f16 bits, rounding the f32 value to nearest even. */
export function f32ToF16(x: number): number {
  f32[0] = x;
  const v = f32[0];
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (Number.isNaN(a)) return 0x7e00;
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -14) return sign | roundEven(a / 2 ** -24);
  const e = Math.floor(Math.log2(a));
  const ex = a < 2 ** e ? e - 1 : a >= 2 ** (e + 1) ? e + 1 : e;
  const m = roundEven((a / 2 ** ex - 1) * 1024);
  return sign | (((ex + 15) << 10) + m);
}

/** x rounded to the nearest f16 value. */
export function roundF16(x: number): number {
  return f16ToF32(f32ToF16(x));
}

/** x rounded to the nearest bf16 value (ggml's `GGML_FP32_TO_BF16`). */
export function roundBf16(x: number): number {
  f32[0] = x;
  const u = u32[0];
  u32[0] = (((u + (0x7fff + ((u >>> 16) & 1))) >>> 16) << 16) >>> 0;
  return f32[0];
}

/** bf16 bits → number. */
export function bf16ToF32(h: number): number {
  u32[0] = (h << 16) >>> 0;
  return f32[0];
}

/** Round half to even. */
export function roundEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
