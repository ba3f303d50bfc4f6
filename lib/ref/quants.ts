/**
 * Scalar reference decoding of every supported ggml weight type, written from ggml's block structs
 * (`ggml-common.h`) and `dequantize_row_*` (`ggml-quants.c`). One block decoder per type gives the integer codes
 * and scales; dequantization and the reference dot products (lib/ref/matmul.ts) are built on it.
 * @module
 */
import { GgmlType, ggmlTypeInfo, ggmlTypeName } from "../ggml_types.ts";
import { bf16ToF32, f16ToF32 } from "./f16.ts";

/** One decoded block: `value[i] = d · sc[group(i)] · q[i] − dmin · m[group(i)]` (+ `m0` for Q4_1/Q5_1). */
export interface Block {
  /** Integer code of each value (signed, offset already removed for symmetric types). */
  q: Int32Array;
  /** Super-block scale (block scale for 32-wide types). */
  d: number;
  /** Min of Q4_1/Q5_1 (added to every value), 0 otherwise. */
  m0: number;
  /** K-quants: super-block min scale. */
  dmin: number;
  /** K-quants: integer scale per group. */
  sc: Int32Array;
  /** Q4_K/Q5_K: integer min per group. */
  mins: Int32Array;
  /** Values per scale group (32 for Q4_K/Q5_K, 16 for Q6_K, block size otherwise). */
  group: number;
}

const u16 = (b: Uint8Array, o: number) => b[o] | (b[o + 1] << 8);
const h = (b: Uint8Array, o: number) => f16ToF32(u16(b, o));
const i8 = (v: number) => (v << 24) >> 24;

/** Q4_K/Q5_K 6-bit scale and min `j` (ggml's `get_scale_min_k4`). */
function scaleMinK4(b: Uint8Array, o: number, j: number): [number, number] {
  if (j < 4) return [b[o + j] & 63, b[o + j + 4] & 63];
  return [(b[o + j + 4] & 0xf) | ((b[o + j - 4] >> 6) << 4), (b[o + j + 4] >> 4) | ((b[o + j] >> 6) << 4)];
}

/** Decodes the block of `type` at byte `o` of `b`. */
export function decodeBlock(type: GgmlType, b: Uint8Array, o: number): Block {
  const one = new Int32Array([1]);
  const blk = (q: Int32Array, d: number, m0 = 0): Block => ({
    q,
    d,
    m0,
    dmin: 0,
    sc: one,
    mins: new Int32Array(1),
    group: q.length,
  });
  switch (type) {
    case GgmlType.Q4_0:
    case GgmlType.Q4_1: {
      const off = type === GgmlType.Q4_0 ? 2 : 4;
      const q = new Int32Array(32);
      for (let j = 0; j < 16; j++) {
        q[j] = b[o + off + j] & 0xf;
        q[j + 16] = b[o + off + j] >> 4;
      }
      if (type === GgmlType.Q4_0) return blk(q.map((v) => v - 8), h(b, o));
      return blk(q, h(b, o), h(b, o + 2));
    }
    case GgmlType.Q5_0:
    case GgmlType.Q5_1: {
      const off = type === GgmlType.Q5_0 ? 2 : 4;
      const qh = (b[o + off] | (b[o + off + 1] << 8) | (b[o + off + 2] << 16) | (b[o + off + 3] << 24)) >>> 0;
      const q = new Int32Array(32);
      for (let j = 0; j < 16; j++) {
        const x = b[o + off + 4 + j];
        q[j] = (x & 0xf) | (((qh >>> j) << 4) & 0x10);
        q[j + 16] = (x >> 4) | ((qh >>> (j + 12)) & 0x10);
      }
      if (type === GgmlType.Q5_0) return blk(q.map((v) => v - 16), h(b, o));
      return blk(q, h(b, o), h(b, o + 2));
    }
    case GgmlType.Q8_0: {
      const q = new Int32Array(32);
      for (let j = 0; j < 32; j++) q[j] = i8(b[o + 2 + j]);
      return blk(q, h(b, o));
    }
    case GgmlType.Q4_K:
    case GgmlType.Q5_K: {
      const five = type === GgmlType.Q5_K;
      const qs = o + (five ? 48 : 16);
      const q = new Int32Array(256), sc = new Int32Array(8), mins = new Int32Array(8);
      for (let j = 0; j < 4; j++) {
        [sc[2 * j], mins[2 * j]] = scaleMinK4(b, o + 4, 2 * j);
        [sc[2 * j + 1], mins[2 * j + 1]] = scaleMinK4(b, o + 4, 2 * j + 1);
        for (let l = 0; l < 32; l++) {
          const x = b[qs + 32 * j + l];
          const hb = five ? b[o + 16 + l] : 0;
          q[64 * j + l] = (x & 0xf) + (hb & (1 << (2 * j)) ? 16 : 0);
          q[64 * j + 32 + l] = (x >> 4) + (hb & (2 << (2 * j)) ? 16 : 0);
        }
      }
      return { q, d: h(b, o), m0: 0, dmin: h(b, o + 2), sc, mins, group: 32 };
    }
    case GgmlType.Q6_K: {
      const q = new Int32Array(256), sc = new Int32Array(16);
      for (let g = 0; g < 16; g++) sc[g] = i8(b[o + 192 + g]);
      for (let n = 0; n < 2; n++) {
        const ql = o + 64 * n, qh = o + 128 + 32 * n;
        for (let l = 0; l < 32; l++) {
          const a = b[ql + l], c = b[ql + l + 32], x = b[qh + l];
          q[128 * n + l] = ((a & 0xf) | ((x & 3) << 4)) - 32;
          q[128 * n + l + 32] = ((c & 0xf) | (((x >> 2) & 3) << 4)) - 32;
          q[128 * n + l + 64] = ((a >> 4) | (((x >> 4) & 3) << 4)) - 32;
          q[128 * n + l + 96] = ((c >> 4) | (((x >> 6) & 3) << 4)) - 32;
        }
      }
      return { q, d: h(b, o + 208), m0: 0, dmin: 0, sc, mins: new Int32Array(16), group: 16 };
    }
    default:
      throw new Error(`no reference decoder for ${ggmlTypeName(type)}`);
  }
}

/** Dequantizes `n` values of `type` from `b` (starting at a block boundary) as ggml's `dequantize_row_*`. */
export function dequantizeRef(type: GgmlType, b: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (type === GgmlType.F32) return new Float32Array(b.slice(0, 4 * n).buffer);
  if (type === GgmlType.F16 || type === GgmlType.BF16) {
    for (let i = 0; i < n; i++) {
      const v = dv.getUint16(2 * i, true);
      out[i] = type === GgmlType.F16 ? f16ToF32(v) : bf16ToF32(v);
    }
    return out;
  }
  const info = ggmlTypeInfo(type)!;
  const f = Math.fround;
  for (let k = 0; k * info.blockSize < n; k++) {
    const blk = decodeBlock(type, b, k * info.blockBytes);
    for (let i = 0; i < info.blockSize; i++) {
      const g = Math.floor(i / blk.group);
      let v: number;
      if (blk.dmin || type === GgmlType.Q4_K || type === GgmlType.Q5_K) {
        // ggml: d1 = d·sc, m1 = dmin·m in f32, then d1·q − m1.
        v = f(f(f(blk.d * blk.sc[g]) * blk.q[i]) - f(blk.dmin * blk.mins[g]));
      } else if (type === GgmlType.Q6_K) v = f(f(blk.d * blk.sc[g]) * blk.q[i]);
      else if (type === GgmlType.Q4_1 || type === GgmlType.Q5_1) v = f(f(blk.q[i] * blk.d) + blk.m0);
      else v = f(blk.q[i] * blk.d); // no "+ 0": ggml keeps −0 for a zero code with a negative scale
      out[k * info.blockSize + i] = v;
    }
  }
  return out;
}
