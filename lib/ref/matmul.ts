/**
 * Scalar references for the matrix products: activation quantization exactly as `asm/quantize.ts` (ggml's
 * Q8_0/Q8_1 and Q8_K), and per-row dot products following ggml's `vec_dot_*` (integer sums per block, then
 * scales). Sums are in f64; `dotRef` also returns Σ|terms| so tests can bound float-order differences.
 * @module
 */
import { GgmlType, ggmlTypeInfo } from "../ggml_types.ts";
import { bf16ToF32, f16ToF32, roundBf16, roundEven, roundF16 } from "./f16.ts";
import { type Block, decodeBlock } from "./quants.ts";

const f = Math.fround;

/** One token's Q8 (32-wide) activations: codes, f16-rounded scales, Q8_1's `s = f16(d·Σq)`, and Σq. */
export interface Q8Act {
  qs: Int8Array;
  d: Float32Array;
  s: Float32Array;
  sum: Int32Array;
}

/** One token's Q8_K (256-wide) activations: codes, f32 scales, Σq per 16. */
export interface Q8KAct {
  qs: Int8Array;
  d: Float32Array;
  bsums: Int32Array;
}

/** ggml's `quantize_row_q8_0`/`q8_1` (AVX2 rounding: ties to even). */
export function quantizeQ8Ref(x: Float32Array): Q8Act {
  const nb = x.length / 32;
  const a: Q8Act = {
    qs: new Int8Array(x.length),
    d: new Float32Array(nb),
    s: new Float32Array(nb),
    sum: new Int32Array(nb),
  };
  for (let b = 0; b < nb; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[32 * b + j]));
    const d = f(amax / 127);
    const id = amax ? f(127 / amax) : 0;
    let sum = 0;
    for (let j = 0; j < 32; j++) {
      const q = roundEven(f(x[32 * b + j] * id));
      a.qs[32 * b + j] = q;
      sum += q;
    }
    a.d[b] = roundF16(d);
    a.s[b] = roundF16(f(d * sum));
    a.sum[b] = sum;
  }
  return a;
}

/** ggml's `quantize_row_q8_K_ref`. */
export function quantizeQ8KRef(x: Float32Array): Q8KAct {
  const nb = x.length / 256;
  const a: Q8KAct = { qs: new Int8Array(x.length), d: new Float32Array(nb), bsums: new Int32Array(x.length / 16) };
  for (let b = 0; b < nb; b++) {
    let amax = 0, max = 0;
    for (let j = 0; j < 256; j++) {
      const v = x[256 * b + j];
      if (Math.abs(v) > amax) {
        amax = Math.abs(v);
        max = v;
      }
    }
    if (!amax) continue;
    const iscale = f(-127 / max);
    for (let j = 0; j < 256; j++) {
      const q = Math.min(127, roundEven(f(iscale * x[256 * b + j])));
      a.qs[256 * b + j] = q;
      a.bsums[16 * b + (j >> 4)] += q;
    }
    a.d[b] = f(1 / iscale);
  }
  return a;
}

/** Activations prepared for weights of `type`. */
export type ActRef = { kind: "f32"; x: Float32Array } | { kind: "q8"; a: Q8Act } | { kind: "q8k"; a: Q8KAct };

/** Prepares one token's activations `x` for weights of `type` (as `lib/kernels.ts` does in wasm). */
export function prepareActRef(type: GgmlType, x: Float32Array): ActRef {
  switch (type) {
    case GgmlType.F32:
      return { kind: "f32", x };
    case GgmlType.F16:
      return { kind: "f32", x: x.map(roundF16) };
    case GgmlType.BF16:
      return { kind: "f32", x: x.map(roundBf16) };
    case GgmlType.Q4_K:
    case GgmlType.Q5_K:
    case GgmlType.Q6_K:
      return { kind: "q8k", a: quantizeQ8KRef(x) };
    default:
      return { kind: "q8", a: quantizeQ8Ref(x) };
  }
}

/** The blocks of one weight row of a block type (decode once, use for many tokens). */
export function decodeRowRef(type: GgmlType, row: Uint8Array, cols: number): Block[] {
  const info = ggmlTypeInfo(type)!;
  return Array.from({ length: cols / info.blockSize }, (_, b) => decodeBlock(type, row, b * info.blockBytes));
}

/**
 * Dot product of one weight row (`row` bytes of `cols` values of `type`, or its decoded blocks) with prepared
 * activations.
 */
export function dotRef(
  type: GgmlType,
  row: Uint8Array | Block[],
  cols: number,
  act: ActRef,
): { value: number; mag: number } {
  let value = 0, mag = 0;
  const add = (t: number) => {
    value += t;
    mag += Math.abs(t);
  };
  if (act.kind === "f32") {
    if (!(row instanceof Uint8Array)) throw new Error("dotRef: float rows are passed as bytes");
    const dv = new DataView(row.buffer, row.byteOffset, row.byteLength);
    for (let i = 0; i < cols; i++) {
      const w = type === GgmlType.F32
        ? dv.getFloat32(4 * i, true)
        : type === GgmlType.F16
        ? f16ToF32(dv.getUint16(2 * i, true))
        : bf16ToF32(dv.getUint16(2 * i, true));
      add(w * act.x[i]);
    }
    return { value, mag };
  }
  const info = ggmlTypeInfo(type)!;
  const blocks = row instanceof Uint8Array ? decodeRowRef(type, row, cols) : row;
  for (let b = 0; b < cols / info.blockSize; b++) {
    const blk = blocks[b];
    const o = b * info.blockSize;
    if (act.kind === "q8") {
      const a = act.a;
      // One term per four elements: the kernels accumulate ggml's eight lanes of four-element sums, so the
      // magnitude their rounding sees is the sum of those terms' sizes.
      for (let g = 0; g < 32; g += 4) {
        let isum = 0;
        for (let j = g; j < g + 4; j++) isum += blk.q[j] * a.qs[o + j];
        add(blk.d * a.d[b] * isum);
      }
      if (type === GgmlType.Q4_1 || type === GgmlType.Q5_1) add(blk.m0 * a.s[b]);
    } else if (type === GgmlType.Q6_K) {
      // ggml's eight lanes (asm/matmul.ts q6Half): lane m = Σ sc·code·x over values ≡ 4m..4m+3 (mod 32), minus
      // 32·Σ sc·x over values 32m..32m+31. One term per lane: the lanes, not the total, are what the kernel rounds.
      const a = act.a;
      for (let m = 0; m < 8; m++) {
        let lane = 0;
        for (let e = 0; e < 256; e++) {
          if (((e & 31) >> 2) === m) lane += blk.sc[e >> 4] * (blk.q[e] + 32) * a.qs[o + e];
        }
        for (let e = 32 * m; e < 32 * m + 32; e++) lane -= 32 * blk.sc[e >> 4] * a.qs[o + e];
        add(blk.d * a.d[b] * lane);
      }
    } else if (type === GgmlType.Q5_K) {
      // ggml_vec_dot_q5_K_q8_K's eight lanes (asm/matmul.ts dotQ5_K): lane m = Σ_s sc_s·Σ code·x over the values
      // 4m..4m+3 (mod 32) of each sub-block s; the mins are one more term.
      const a = act.a;
      let msum = 0;
      for (let m = 0; m < 8; m++) {
        let lane = 0;
        for (let e = 0; e < 256; e++) if (((e & 31) >> 2) === m) lane += blk.sc[e >> 5] * blk.q[e] * a.qs[o + e];
        add(blk.d * a.d[b] * lane);
      }
      for (let g = 0; g < 8; g++) msum += blk.mins[g] * (a.bsums[o / 16 + 2 * g] + a.bsums[o / 16 + 2 * g + 1]);
      if (msum) add(-blk.dmin * a.d[b] * msum);
    } else {
      const a = act.a;
      let isum = 0, msum = 0;
      for (let g = 0; g < info.blockSize / blk.group; g++) {
        let s = 0;
        for (let j = 0; j < blk.group; j++) s += blk.q[g * blk.group + j] * a.qs[o + g * blk.group + j];
        isum += blk.sc[g] * s;
        let bs = 0;
        for (let k = 0; k < blk.group / 16; k++) bs += a.bsums[o / 16 + (g * blk.group) / 16 + k];
        msum += blk.mins[g] * bs;
      }
      add(blk.d * a.d[b] * isum);
      if (msum) add(-blk.dmin * a.d[b] * msum);
    }
  }
  return { value, mag };
}
