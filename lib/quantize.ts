/**
 * Reference quantizers: f32 → Q8_0, Q4_0, F16, BF16, bit-exact with ggml's
 * `quantize_row_q8_0_ref`, `quantize_row_q4_0_ref`, `ggml_fp32_to_fp16_row` and
 * `ggml_fp32_to_bf16_row_ref` (what `llama-quantize` uses without an importance matrix).
 * Every intermediate is rounded to float32 with `Math.fround`, as the C code computes in float.
 * @module
 */
import { GgmlType, ggmlTypeName } from "./ggml_types.ts";

const QK = 32;
const f32 = Math.fround;

/** Scratch for f32 → f16 conversion; Float16Array stores round to nearest, ties to even, like F16C. */
const h16 = new Float16Array(1);
const h16bits = new Uint16Array(h16.buffer);

/** IEEE half bits of `x` (round to nearest even). */
export function fp32ToFp16Bits(x: number): number {
  h16[0] = x;
  return h16bits[0];
}

/** Value of IEEE half bits. */
export function fp16BitsToFp32(h: number): number {
  h16bits[0] = h;
  return h16[0];
}

const cvt = new Float32Array(1);
const cvtBits = new Uint32Array(cvt.buffer);

/** bfloat16 bits of `x`: round to nearest even, NaN kept quiet (ggml's GGML_FP32_TO_BF16). */
export function fp32ToBf16Bits(x: number): number {
  cvt[0] = x;
  const u = cvtBits[0];
  if ((u & 0x7fffffff) > 0x7f800000) return (u >>> 16) | 64;
  return ((u + (0x7fff + ((u >>> 16) & 1))) >>> 16) & 0xffff;
}

/** Q8_0: per block of 32, d = max|x| / 127 (stored f16), q = round(x / d). */
export function quantizeQ8_0(src: Float32Array, dst: Uint8Array = new Uint8Array((src.length / QK) * 34)): Uint8Array {
  checkBlocks(src.length, "Q8_0");
  const view = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
  const q = new Int8Array(dst.buffer, dst.byteOffset, dst.byteLength);
  for (let b = 0, o = 0; b < src.length; b += QK, o += 34) {
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(src[b + j]));
    const d = f32(amax / 127);
    const id = d ? f32(1 / d) : 0;
    view.setUint16(o, fp32ToFp16Bits(d), true);
    // C's roundf rounds halves away from zero; Math.round rounds them up, hence the sign split.
    for (let j = 0; j < QK; j++) {
      const x = f32(src[b + j] * id);
      q[o + 2 + j] = x < 0 ? -Math.round(-x) : Math.round(x);
    }
  }
  return dst;
}

/** Q4_0: per block of 32, d = (value of largest magnitude) / -8 (f16), q = min(15, trunc(x/d + 8.5)). */
export function quantizeQ4_0(src: Float32Array, dst: Uint8Array = new Uint8Array((src.length / QK) * 18)): Uint8Array {
  checkBlocks(src.length, "Q4_0");
  const view = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
  for (let b = 0, o = 0; b < src.length; b += QK, o += 18) {
    let amax = 0, max = 0;
    for (let j = 0; j < QK; j++) {
      const v = src[b + j];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = f32(max / -8);
    const id = d ? f32(1 / d) : 0;
    view.setUint16(o, fp32ToFp16Bits(d), true);
    for (let j = 0; j < QK / 2; j++) {
      // (int8_t) truncates toward zero; x·id + 8.5 is ≥ 0.5 here, so truncation is floor.
      const x0 = Math.trunc(f32(f32(src[b + j] * id) + 8.5));
      const x1 = Math.trunc(f32(f32(src[b + QK / 2 + j] * id) + 8.5));
      dst[o + 2 + j] = Math.min(15, x0) | (Math.min(15, x1) << 4);
    }
  }
  return dst;
}

/** f32 → F16 bytes (little-endian halves). */
export function convertF16(src: Float32Array, dst: Uint8Array = new Uint8Array(src.length * 2)): Uint8Array {
  new Float16Array(dst.buffer, dst.byteOffset, src.length).set(src);
  return dst;
}

/** f32 → BF16 bytes (little-endian). */
export function convertBf16(src: Float32Array, dst: Uint8Array = new Uint8Array(src.length * 2)): Uint8Array {
  const out = new Uint16Array(dst.buffer, dst.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) out[i] = fp32ToBf16Bits(src[i]);
  return dst;
}

/** Types {@link quantizeTo} can produce. */
export const QUANTIZE_TYPES: readonly GgmlType[] = [
  GgmlType.F32,
  GgmlType.F16,
  GgmlType.BF16,
  GgmlType.Q8_0,
  GgmlType.Q4_0,
];

/** Encodes f32 values as `type` (F32 is a byte view copy). Throws for other types. */
export function quantizeTo(type: GgmlType, src: Float32Array): Uint8Array {
  switch (type) {
    case GgmlType.F32:
      return new Uint8Array(src.slice().buffer);
    case GgmlType.F16:
      return convertF16(src);
    case GgmlType.BF16:
      return convertBf16(src);
    case GgmlType.Q8_0:
      return quantizeQ8_0(src);
    case GgmlType.Q4_0:
      return quantizeQ4_0(src);
  }
  throw new Error(`quantizeTo: no quantizer for ${ggmlTypeName(type)}`);
}

function checkBlocks(n: number, name: string): void {
  if (n % QK !== 0) throw new Error(`${name}: ${n} values is not a multiple of the block size ${QK}`);
}
