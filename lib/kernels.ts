/**
 * Typed wrappers over the WebAssembly kernels: what the forward pass calls. Pointers are byte offsets into the
 * shard's memory; vectors are f32 unless stated; `n`/`cols` count values.
 *
 * Activations of matrix products are prepared like llama.cpp does (so logits match it to ~1e-2 and not ~0.5):
 * quantized to Q8_0/Q8_1 blocks for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 weights, Q8_K for K-quants, rounded to f16/bf16 for
 * F16/BF16 weights, then integer (or float) dot products per block. The prepared activations live in the shard's
 * scratch area (`Shard.scratch`): size shards with `actScratchBytes` of the largest batch in mind.
 *
 * Small elementwise jobs run on the calling thread only (`Shard.call`): waking the workers costs more than the
 * work. Results never depend on the thread count.
 * @module
 */
import { GgmlType, ggmlTypeInfo, ggmlTypeName, requireSupportedType } from "./ggml_types.ts";
import { SparqError } from "./errors.ts";
import type { Shard } from "./wasm_runtime.ts";

/** Elementwise jobs smaller than this many values run on the calling thread only. */
const SMALL = 1 << 15;
/** Row shares per thread of a matrix product (claimed dynamically, see lib/thread_pool.ts). */
const SHARES_PER_THREAD = 8;

/** How a weight type's matrix product prepares its activations, and the kernel suffix. */
interface MatmulPlan {
  kernel: string;
  act: "f32" | "f16" | "bf16" | "q8" | "q8k";
}

const PLANS: Partial<Record<GgmlType, MatmulPlan>> = {
  [GgmlType.F32]: { kernel: "matmul_f32", act: "f32" },
  [GgmlType.F16]: { kernel: "matmul_f16", act: "f16" },
  [GgmlType.BF16]: { kernel: "matmul_bf16", act: "bf16" },
  [GgmlType.Q4_0]: { kernel: "matmul_q4_0", act: "q8" },
  [GgmlType.Q4_1]: { kernel: "matmul_q4_1", act: "q8" },
  [GgmlType.Q5_0]: { kernel: "matmul_q5_0", act: "q8" },
  [GgmlType.Q5_1]: { kernel: "matmul_q5_1", act: "q8" },
  [GgmlType.Q8_0]: { kernel: "matmul_q8_0", act: "q8" },
  [GgmlType.Q4_K]: { kernel: "matmul_q4_k", act: "q8k" },
  [GgmlType.Q5_K]: { kernel: "matmul_q5_k", act: "q8k" },
  [GgmlType.Q6_K]: { kernel: "matmul_q6_k", act: "q8k" },
};

/** Bytes per token of Q8 activations (mirrors `q8Stride` in asm/common/act.ts). */
export function q8Stride(cols: number): number {
  return (cols + 12 * (cols >> 5) + 15) & ~15;
}

/** Bytes per token of Q8_K activations (mirrors `q8kStride` in asm/common/act.ts). */
export function q8kStride(cols: number): number {
  return (cols + 4 * (cols >> 8) + 4 * (cols >> 4) + 15) & ~15;
}

/** Scratch bytes `matmul` needs for `nTok` tokens of `cols` values with weights of `type`. */
export function actScratchBytes(type: GgmlType, cols: number, nTok: number): number {
  const plan = PLANS[type];
  if (!plan || plan.act === "f32") return 0;
  if (plan.act === "q8") return q8Stride(cols) * nTok;
  if (plan.act === "q8k") return q8kStride(cols) * nTok;
  return 4 * cols * nTok;
}

/** Runs a parallel kernel on every thread, or on this thread alone when `work` values are few. */
function exec(shard: Shard, kernel: string, args: number[], work: number): void {
  if (work < SMALL) shard.call(kernel, [...args, 0, 1]);
  else shard.run(kernel, args);
}

/** `y[rows] = W[rows×cols]·x[cols]` (W in the ggml row layout of `type`). */
export function matvec(
  shard: Shard,
  type: GgmlType,
  w: number,
  rows: number,
  cols: number,
  x: number,
  y: number,
): void {
  matmul(shard, type, w, rows, cols, x, 1, y);
}

/** `Y[nTok][rows] = X[nTok][cols]·Wᵀ` (prompt batches). Each token's result equals `matvec` bit for bit. */
export function matmul(
  shard: Shard,
  type: GgmlType,
  w: number,
  rows: number,
  cols: number,
  x: number,
  nTok: number,
  y: number,
): void {
  requireSupportedType(type, "matmul");
  const plan = PLANS[type]!;
  const block = ggmlTypeInfo(type)!.blockSize;
  if (cols % block !== 0) {
    throw new SparqError(`matmul: ${cols} columns are not a multiple of the ${ggmlTypeName(type)} block (${block})`);
  }
  let act = x;
  if (plan.act !== "f32") {
    act = shard.scratch(actScratchBytes(type, cols, nTok));
    const n = cols * nTok;
    switch (plan.act) {
      case "f16":
        exec(shard, "round_f16", [x, act, n], n);
        break;
      case "bf16":
        exec(shard, "round_bf16", [x, act, n], n);
        break;
      case "q8":
        exec(shard, "quantize_q8", [x, act, cols, nTok], n);
        break;
      case "q8k":
        exec(shard, "quantize_q8k", [x, act, cols, nTok], n);
        break;
    }
  }
  // Several shares per thread (of ≥ 16 rows): a thread that is descheduled leaves fewer rows to the others.
  const shares = shard.threads === 1 ? 1 : Math.max(1, Math.min(SHARES_PER_THREAD * shard.threads, rows >> 4));
  shard.run(plan.kernel, [w, act, y, rows, cols, nTok], shares);
}

/** Dequantizes `rows` rows of `cols` values of `type` at `src` into f32 at `dst`. */
export function dequantize(shard: Shard, type: GgmlType, src: number, rows: number, cols: number, dst: number): void {
  requireSupportedType(type, "dequantize");
  exec(shard, `dequant_${ggmlTypeName(type).toLowerCase()}`, [src, dst, rows, cols], rows * cols);
}

/** Embedding lookup: row `row` of the `type` table at `table` (rows of `cols` values) → f32 `out[cols]`. */
export function embedRow(shard: Shard, type: GgmlType, table: number, row: number, cols: number, out: number): void {
  requireSupportedType(type, "token embedding");
  const info = ggmlTypeInfo(type)!;
  const rowBytes = (cols / info.blockSize) * info.blockBytes;
  shard.call(`dequant_${info.name.toLowerCase()}`, [table + row * rowBytes, out, 1, cols, 0, 1]);
}

/** RMSNorm of `nRows` rows of `n`: `out = x / sqrt(mean(x²) + eps) · w` (`w` = 0: no weight). */
export function rmsnorm(shard: Shard, out: number, x: number, w: number, n: number, eps: number, nRows = 1): void {
  exec(shard, "rmsnorm", [out, x, w, n, eps, nRows], n * nRows);
}

/** LayerNorm of `nRows` rows of `n`: `out = (x − mean)/sqrt(var + eps) · w + b` (`w`, `b` = 0: none). */
export function layernorm(
  shard: Shard,
  out: number,
  x: number,
  w: number,
  b: number,
  n: number,
  eps: number,
  nRows = 1,
): void {
  exec(shard, "layernorm", [out, x, w, b, n, eps, nRows], n * nRows);
}

/**
 * RoPE in place on `x[nTok][nHeads][headDim]`, token t at position `pos0 + t`; only the first `ropeDims` dims of
 * each head rotate. `neox`: pairs `(i, i + ropeDims/2)` instead of `(2i, 2i+1)`. `freqFactors`: pointer to
 * `ropeDims/2` f32 divisors of the angles (Llama 3 `rope_freqs`), 0 for none.
 */
export function rope(
  shard: Shard,
  x: number,
  nTok: number,
  nHeads: number,
  headDim: number,
  ropeDims: number,
  pos0: number,
  base: number,
  neox: boolean,
  freqFactors = 0,
): void {
  const args = [x, nTok, nHeads, headDim, ropeDims, pos0, base, neox ? 1 : 0, freqFactors];
  exec(shard, "rope", args, nTok * nHeads * ropeDims * 8);
}

/** Softmax in place over each of `nRows` rows of `n` values. */
export function softmax(shard: Shard, x: number, n: number, nRows = 1): void {
  exec(shard, "softmax", [x, n, nRows], n * nRows * 4);
}

/** `out = silu(x)` over `n` values. */
export function silu(shard: Shard, out: number, x: number, n: number): void {
  exec(shard, "silu", [out, x, n], n * 4);
}

/**
 * `out = gelu(x)` (tanh approximation). `f16Table`: replicate ggml's CPU GELU, which rounds input and output to
 * f16 through a lookup table (use it to match llama.cpp logits to ~1e-3); otherwise exact f32.
 */
export function gelu(shard: Shard, out: number, x: number, n: number, f16Table = false): void {
  exec(shard, f16Table ? "gelu_f16" : "gelu", [out, x, n], n * 4);
}

/** SwiGLU: `out = silu(gate) · up` over `n` values in rows of `rowLen` (default one row), as ggml computes it. */
export function swiglu(shard: Shard, out: number, gate: number, up: number, n: number, rowLen = n): void {
  exec(shard, "swiglu", [out, gate, up, n, rowLen], n * 4);
}

/** GeGLU: `out = gelu(gate) · up` (`f16Table` as in `gelu`). */
export function geglu(shard: Shard, out: number, gate: number, up: number, n: number, f16Table = false): void {
  exec(shard, "geglu", [out, gate, up, n, f16Table ? 1 : 0], n * 4);
}

/** `out = a + b` (residual add). */
export function add(shard: Shard, out: number, a: number, b: number, n: number): void {
  exec(shard, "add", [out, a, b, n], n);
}

/** `out = x · s`. */
export function scale(shard: Shard, out: number, x: number, s: number, n: number): void {
  exec(shard, "scale", [out, x, s, n], n);
}

/** `x[r] += bias` for `nRows` rows of `n` values. */
export function addBias(shard: Shard, x: number, bias: number, n: number, nRows = 1): void {
  exec(shard, "add_bias", [x, bias, n, nRows], n * nRows);
}

/** Index of the largest of `n` values (first on ties). */
export function argmax(shard: Shard, x: number, n: number): number {
  return shard.call("argmax", [x, n]);
}

/** f32 → f16 bits (round to nearest even) of `n` values (F16 KV cache). */
export function f32ToF16(shard: Shard, x: number, out: number, n: number): void {
  exec(shard, "f32_to_f16", [x, out, n], n);
}

/** f16 bits → f32 of `n` values. */
export function f16ToF32(shard: Shard, x: number, out: number, n: number): void {
  exec(shard, "f16_to_f32", [x, out, n], n);
}
