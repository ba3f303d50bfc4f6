/**
 * Deterministic random test data: a seeded PRNG and random valid weight rows of every supported type (random
 * codes, small finite f16 scales), for the kernel tests and benchmarks.
 * @module
 */
import { GgmlType, ggmlTypeInfo } from "../ggml_types.ts";
import { f32ToF16 } from "./f16.ts";

/** mulberry32: a small seeded PRNG returning floats in [0, 1), so failures reproduce. */
export function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Offsets of the f16 scale fields in a block of `type` (random bytes there could be inf/NaN). */
const F16_FIELDS: Partial<Record<GgmlType, number[]>> = {
  [GgmlType.Q4_0]: [0],
  [GgmlType.Q4_1]: [0, 2],
  [GgmlType.Q5_0]: [0],
  [GgmlType.Q5_1]: [0, 2],
  [GgmlType.Q8_0]: [0],
  [GgmlType.Q4_K]: [0, 2],
  [GgmlType.Q5_K]: [0, 2],
  [GgmlType.Q6_K]: [208],
};

/** Random valid weight bytes: `rows × cols` values of `type`. */
export function randomWeights(type: GgmlType, rows: number, cols: number, r: () => number): Uint8Array {
  const info = ggmlTypeInfo(type)!;
  const n = rows * cols;
  if (type === GgmlType.F32) return new Uint8Array(Float32Array.from({ length: n }, () => r() * 2 - 1).buffer);
  if (type === GgmlType.F16 || type === GgmlType.BF16) {
    const f = new Float32Array(1), u = new Uint32Array(f.buffer);
    return new Uint8Array(
      Uint16Array.from({ length: n }, () => {
        f[0] = r() * 2 - 1;
        return type === GgmlType.F16 ? f32ToF16(f[0]) : u[0] >>> 16;
      }).buffer,
    );
  }
  const b = Uint8Array.from({ length: (n / info.blockSize) * info.blockBytes }, () => Math.floor(r() * 256));
  for (let o = 0; o < b.length; o += info.blockBytes) {
    for (const f of F16_FIELDS[type]!) {
      const h = f32ToF16((r() * 0.02 + 0.001) * (r() < 0.5 ? -1 : 1));
      b[o + f] = h & 0xff;
      b[o + f + 1] = h >> 8;
    }
  }
  return b;
}
