/**
 * The f64 reference of a Q4_0 matrix × vector, for the GPU matvec benchmarks' error column, and the shape of the
 * matvec they time.
 * @module
 */
import { f16ToF32 } from "../lib/ref/f16.ts";
import { GgmlType } from "../lib/ggml_types.ts";
import type { MatmulShape } from "../lib/webgpu/shaders/matmul.ts";

/** y[r] = Σ_blocks d·Σ (q − 8)·x over `rows` Q4_0 rows of `cols` values stored as GGUF blocks in `src`. */
export function q4_0Reference(src: Uint8Array, rows: number, cols: number, x: ArrayLike<number>): Float64Array {
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let acc = 0;
    for (let c = 0; c < cols / 32; c++) {
      const o = (r * cols / 32 + c) * 18;
      const d = f16ToF32(src[o] | (src[o + 1] << 8));
      let a = 0;
      for (let j = 0; j < 16; j++) {
        const q = src[o + 2 + j];
        a += ((q & 15) - 8) * x[c * 32 + j] + ((q >> 4) - 8) * x[c * 32 + 16 + j];
      }
      acc += d * a;
    }
    y[r] = acc;
  }
  return y;
}

/** The GPU decode matvec of `rows` Q4_0 rows of `cols` values (one token, y = W·x), with `variant`'s fields. */
export function q4_0MatvecShape(rows: number, cols: number, variant: Partial<MatmulShape>): MatmulShape {
  return {
    type: GgmlType.Q4_0,
    cols,
    rows,
    row0: 0,
    biasRow0: 0,
    xStride: cols,
    yStride: rows,
    tile: 1,
    accumulate: false,
    bias: false,
    tokens: "nTok",
    ...variant,
  };
}
