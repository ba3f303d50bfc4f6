/**
 * Matrix × activations for every weight type: `y[t][yOff + row0 + n] (+)= Σ_k W[n][k]·x[t][k] (+ b[n])`.
 * One workgroup computes 8 rows for a tile of up to `tile` tokens; 32 lanes share a row and
 * stride over its 32-element chunks, so each dequantized chunk is used for all tokens of the tile
 * (tile 1 = the decode matvec, tile 8 = prompt matmul). Also the embedding row lookup.
 * @module
 */
import { GgmlType } from "../../ggml_types.ts";
import { dot32Wgsl, load32Wgsl, quantBindingsWgsl } from "./quant.ts";
import { f32Lit, range, stepWgsl } from "./common.ts";
import { cacheDeclWgsl, type CacheElem, cacheEnableWgsl, cachePutWgsl, cacheRoundWgsl } from "./kv_cache.ts";
import { ACT_WGSL } from "./elementwise.ts";

/** Options of one matmul pipeline (all baked into the WGSL). */
export interface MatmulShape {
  type: GgmlType;
  /** Row length (input features). */
  cols: number;
  /** Rows in this weight buffer. */
  rows: number;
  /** Output index of this buffer's first row. */
  row0: number;
  /** Bias index of this buffer's first row. */
  biasRow0: number;
  /** Floats per token in x and in y. */
  xStride: number;
  yStride: number;
  /** Tokens per workgroup: 1 (the matvec), or 64 or 128 (the GEMM's square tile; see {@link gemmTile}). */
  tile: number;
  /** Add into y instead of overwriting it (residual connections). */
  accumulate: boolean;
  bias: boolean;
  /** Which step field holds the number of tokens. */
  tokens: "nTok" | "nOut";
  /** Matvec: the subgroup directive from `subgroupMode` (undefined: no subgroup operations). */
  subgroups?: string;
  /** Matvec overrides (benchmarks): threads per row set, rows per thread. */
  mvThreads?: number;
  mvRows?: number;
  /** Threads per workgroup of the Q4_0 vec/dp4a/dp4s matvecs (default 256; others always 256). */
  mvWg?: number;
  /**
   * Matvec lane mapping for Q4_0: one u32 of a block per lane ("word", default), a whole block
   * through `dot32` ("block"), or a whole block per lane as one 16-byte load with R rows' loads in
   * flight ({@link q4VecMatvecWgsl}): "dp4a" quantizes the activations to Q8_0 as llama.cpp and the
   * wasm backend do and uses integer dot products (WGSL language feature
   * packed_4x8_integer_dot_product; the model's default where the adapter has it), "vec" keeps
   * them f32 (nibbles to floats by bit tricks; slower than "word" on an H200). "dp4s" is "dp4a" with
   * the activations quantized once per workgroup into workgroup memory (see {@link q4VecMatvecWgsl}).
   */
  mvMode?: "vec" | "dp4a" | "dp4s" | "word" | "block";
  /**
   * Matvec with a second matrix of the same shape and type (bindings 6, 7: up): writes
   * act(W·x)·(W₂·x) (the gated FFN in one dispatch). Q4_0 vec and word modes only.
   */
  gated?: "swiglu" | "geglu";
  /**
   * Matvec with the RMSNorm of x fused in (binding 8: the norm weight): computes W·rmsnorm(x)·weight
   * as (W·(x∘weight))·rsqrt(mean(x²) + eps); each row set reads all of x, so it also sums x².
   * With `tokens: "nOut"`, x row outTok0 + t is read (the final norm of the last token).
   */
  rmsNorm?: { eps: number };
  /**
   * Decode qkv matvec with RoPE and the KV-cache append in its row store (Q4_0 vec/dp4a/dp4s kernels,
   * {@link ropeStoreWgsl}): the rows (q | k | v of one token) go to the q buffer and the caches instead of y.
   */
  rope?: RopeStore;
}

/**
 * Where the fused qkv store writes (see {@link ropeStoreWgsl}). Bindings: 9 the RoPE table `[ctx][ropeDims/2]`
 * of (cos, sin), 10 q `[nTok][nHead][d]`, 11 K cache `[nKv][ctx][d]`, 12 V cache, 13 Kt `[nKv][d][ctx]` (`kt`),
 * 14 V sum `[nKv][d]` (`vsum`; one token per step only: the sum is a plain read-add-write).
 */
export interface RopeStore {
  nHead: number;
  nKv: number;
  d: number;
  /** Leading dimensions of each head rotated, as adjacent pairs (llama's "normal" RoPE; NeoX is not fused). */
  ropeDims: number;
  ctx: number;
  kt: boolean;
  vsum: boolean;
  /** KV-cache element storage (default f32). */
  elem?: CacheElem;
}

/** Whether the qkv matvec of `s` can take the fused RoPE store (vec kernels, even rows per thread and row offsets). */
export function ropeFusable(s: MatmulShape, r: Omit<RopeStore, "kt" | "vsum">): boolean {
  return s.tile === 1 && vecMode(s) && !s.gated && matvecRowsPerThread(s) % 2 === 0 && s.row0 % 2 === 0 &&
    s.rows % 2 === 0 && r.d % 2 === 0 && r.ropeDims % 2 === 0 && r.ropeDims <= r.d;
}

/** Weight buffers split by rows are split at multiples of this (any row count works). */
export const MATVEC_ROWS = 16;

/**
 * Threads sharing one set of rows in the matvec: a power of two ≥ 64 (a subgroup never straddles two
 * sets), ≤ 256; dp4s (H200, weights from memory): 32 for ≥ 8192 rows of ≤ 8192 columns (run 7: 7B
 * qkv 16.0 µs vs 17.7 at 64), 128 for longer rows, else 64; gated with ≥ 8192 rows: 16 × 4 rows (run 9:
 * 7B gate·up 21.6 µs vs 25.7 at 64 × 4, 22.9 at 32 × 4, 23.0 at 16 × 8).
 */
export function matvecThreads(s: MatmulShape): number {
  if (s.mvThreads) return s.mvThreads;
  if (s.mvMode === "dp4s") return s.cols > 8192 ? 128 : s.rows >= 8192 ? (s.gated ? 16 : 32) : 64;
  if (vecMode(s)) return s.cols > 8192 ? 2 * VEC_THREADS : VEC_THREADS;
  const n = s.cols / 32;
  let t = 64;
  while (t < 256 && t < n) t *= 2;
  return t;
}

/** Rows per thread in the matvec used when the shape sets none (H200, 7B decode: 4 beat 8 by ~5%). */
export const MATVEC_ROWS_PER_THREAD = 4;

/**
 * Rows per thread in the matvec (each lane's activations are used for that many rows); dp4s: 4 when gated or
 * for < 8192 rows of ≤ 8192 columns (run 9: 7B attn_output 64 × 4 7.6 µs vs 8.0 at 64 × 8), else 8.
 */
export function matvecRowsPerThread(s: MatmulShape): number {
  if (s.mvRows) return s.mvRows;
  if (s.mvMode === "dp4s") return s.gated || (s.rows < 8192 && s.cols <= 8192) ? 4 : 8;
  return vecMode(s) ? VEC_ROWS : Math.max(1, MATVEC_ROWS_PER_THREAD / (s.gated ? 2 : 1));
}

/**
 * Threads per workgroup of the matvec of `s` (a power of two, 64…1024, for the Q4_0 vec kernels; else 256). The
 * gated dp4s matvec with ≥ 8192 rows takes 128: its 16 × 4 row sets make 172 workgroups of 256 threads for a 7B
 * gate·up, 1.3 per SM of an H200, while 344 of 128 spread evenly (run 17: 21.6 → 18.8 µs alone, 7B decode +2%).
 */
export function matvecWg(s: MatmulShape): number {
  if (!vecMode(s)) return 256;
  if (s.mvWg) return s.mvWg;
  return s.mvMode === "dp4s" && s.gated && s.rows >= 8192 && !s.mvThreads ? 128 : 256;
}

/** Whether the matvec of `s` maps one u32 of a Q4_0 block per lane (see {@link matvecWgsl}). */
export function wordMode(s: MatmulShape): boolean {
  return s.type === GgmlType.Q4_0 && s.mvMode !== "block" && !vecMode(s);
}

/** Whether the matvec of `s` is the Q4_0 vec kernel ({@link q4VecMatvecWgsl}). */
export function vecMode(s: MatmulShape): boolean {
  return s.type === GgmlType.Q4_0 && (s.mvMode === "vec" || s.mvMode === "dp4a" || s.mvMode === "dp4s");
}

/**
 * Threads per row set of the vec/dp4a kernel when the shape sets none (twice that for rows longer
 * than 8192). H200 run 6 (GPU timestamps): 64 and 8 rows beat 32, 128 (rows of 4096) and 4 rows.
 */
export const VEC_THREADS = 64;
/** Rows per thread of the vec/dp4a kernel when the shape sets none (also with a second matrix: 16 loads in flight). */
export const VEC_ROWS = 8;

/** Rows computed by one workgroup of the kernel of `s` (matvec when `tile` is 1). */
export function groupRows(s: MatmulShape): number {
  return s.tile === 1 ? (matvecWg(s) / matvecThreads(s)) * matvecRowsPerThread(s) : s.tile;
}

/** WGSL of `q4w(blk, j, xl, xh)`: word j of Q4_0 block blk dotted with its 8 activations (lo, hi nibbles). */
function q4WordWgsl(cols: number, rows: number, n: "" | "2"): string {
  return `fn q4w${n}(blk: u32, j: u32, xl: vec4<f32>, xh: vec4<f32>) -> f32 {
  let q = wq${n}[blk][j];
  let sc = unpack2x16float(w${n}[${rows * (cols / 32) * 4}u + blk / 2u]);
  let lo = vec4<f32>(f32(q & 15u), f32((q >> 8u) & 15u), f32((q >> 16u) & 15u), f32((q >> 24u) & 15u));
  let hi = vec4<f32>(f32((q >> 4u) & 15u), f32((q >> 12u) & 15u), f32((q >> 20u) & 15u), f32(q >> 28u));
  return select(sc.x, sc.y, (blk & 1u) == 1u) * (dot(lo - 8.0, xl) + dot(hi - 8.0, xh));
}`;
}

/**
 * WGSL of the decode matvec (token wg.y). A workgroup of 256 threads holds 256/T sets of T threads;
 * each set computes R rows: thread i of a set walks chunks i, i+T, … and dots each chunk's
 * activations (loaded once) with the R rows' quantized chunks, so for Q4_0 the set reads T·16
 * contiguous bytes per row per step and every thread has R independent loads in flight. The R
 * partial sums of the set are reduced with subgroupAdd and workgroup memory (or workgroup memory
 * alone without subgroups). Bindings as {@link matmulWgsl}.
 */
function matvecWgsl(s: MatmulShape): string {
  if (vecMode(s)) return q4VecMatvecWgsl(s);
  if (s.rope) throw new Error("matvecWgsl: the fused RoPE store needs a Q4_0 vec kernel");
  const T = matvecThreads(s), R = matvecRowsPerThread(s), G = 256 / T;
  const nChunk = s.cols / 32;
  const sg = s.subgroups !== undefined;
  const rs = range(R);
  // Accumulators: a0..a(R-1) for W, b0..b(R-1) for W₂ (gated); K sums reduced per thread.
  const accs = [...rs.map((r) => `a${r}`), ...(s.gated ? rs.map((r) => `b${r}`) : []), ...(s.rmsNorm ? ["nx"] : [])];
  const K = accs.length;
  const nxIdx = K - 1;
  const reduce = sg
    ? `let sgs = max(sgSize, 1u);
  ${accs.map((a, i) => `let s${i} = subgroupAdd(${a});`).join("\n  ")}
  if (sgLane == 0u) {
    ${accs.map((_, i) => `part[(lid / sgs) * ${K}u + ${i}u] = s${i};`).join("\n    ")}
  }
  workgroupBarrier();
  if (lid < ${G * R}u) {
    let rset = lid / ${R}u;
    let r = lid % ${R}u;
    let nsg = ${T}u / sgs;
    var v = 0.0;
    var v2 = 0.0;
    var nxt = 0.0;
    for (var j = 0u; j < nsg; j++) {
      v += part[(rset * nsg + j) * ${K}u + r];
      ${s.gated ? `v2 += part[(rset * nsg + j) * ${K}u + ${R}u + r];` : ""}
      ${s.rmsNorm ? `nxt += part[(rset * nsg + j) * ${K}u + ${nxIdx}u];` : ""}
    }`
    : `${accs.map((a, i) => `part[${i * 256}u + lid] = ${a};`).join("\n  ")}
  workgroupBarrier();
  for (var h = ${T / 2}u; h > 0u; h >>= 1u) {
    if (tid < h) {
      ${accs.map((_, i) => `part[${i * 256}u + lid] += part[${i * 256}u + lid + h];`).join("\n      ")}
    }
    workgroupBarrier();
  }
  if (lid < ${G * R}u) {
    let rset = lid / ${R}u;
    let r = lid % ${R}u;
    var v = part[r * 256u + rset * ${T}u];
    ${s.gated ? `var v2 = part[(${R}u + r) * 256u + rset * ${T}u];` : ""}
    ${s.rmsNorm ? `let nxt = part[${nxIdx * 256}u + rset * ${T}u];` : ""}`;
  return `${sg ? s.subgroups : ""}
${stepWgsl(3)}
@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
${s.bias ? "@group(0) @binding(4) var<storage, read> bias: array<f32>;" : ""}
${s.rmsNorm ? "@group(0) @binding(8) var<storage, read> nw: array<vec4<f32>>;" : ""}
${quantBindingsWgsl(s.type)}
${wordMode(s) ? q4WordWgsl(s.cols, s.rows, "") : dot32Wgsl(s.type, s.cols, s.rows)}
${
    s.gated
      ? `@group(0) @binding(6) var<storage, read> w2: array<u32>;
@group(0) @binding(7) var<storage, read> wq2: array<vec4<u32>>;
${q4WordWgsl(s.cols, s.rows, "2")}
${ACT_WGSL}`
      : ""
  }
var<workgroup> part: array<f32, ${256 * K}>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32${
    sg ? ", @builtin(subgroup_size) sgSize: u32, @builtin(subgroup_invocation_id) sgLane: u32" : ""
  }) {
  let t = wg.y;
  if (t >= step.${s.tokens}) { return; }
  let tid = lid % ${T}u;
  let rb = wg.x * ${G * R}u + (lid / ${T}u) * ${R}u;
  ${rs.map((r) => `let r${r} = min(rb + ${r}u, ${s.rows - 1}u);`).join("\n  ")}
  ${accs.map((a) => `var ${a} = 0.0;`).join("\n  ")}
  let xb = ((${s.rmsNorm && s.tokens === "nOut" ? "step.outTok0 + t" : "t"}) * ${s.xStride}u) / 4u;
  ${
    wordMode(s)
      ? `let j = tid % 4u;
  for (var c = tid / 4u; c < ${nChunk}u; c += ${T / 4}u) {
    ${
        s.rmsNorm
          ? `let x0 = x[xb + c * 8u + j];
    let x1 = x[xb + c * 8u + 4u + j];
    nx += dot(x0, x0) + dot(x1, x1);
    let xl = x0 * nw[c * 8u + j];
    let xh = x1 * nw[c * 8u + 4u + j];`
          : `let xl = x[xb + c * 8u + j];
    let xh = x[xb + c * 8u + 4u + j];`
      }
    ${rs.map((r) => `a${r} += q4w(r${r} * ${nChunk}u + c, j, xl, xh);`).join("\n    ")}
    ${s.gated ? rs.map((r) => `b${r} += q4w2(r${r} * ${nChunk}u + c, j, xl, xh);`).join("\n    ") : ""}
  }`
      : `var xv: array<vec4<f32>, 8>;
  for (var c = tid; c < ${nChunk}u; c += ${T}u) {
    for (var i = 0u; i < 8u; i++) { xv[i] = x[xb + c * 8u + i]; }
    ${s.rmsNorm ? `for (var i = 0u; i < 8u; i++) { nx += dot(xv[i], xv[i]); xv[i] *= nw[c * 8u + i]; }` : ""}
    ${rs.map((r) => `a${r} += dot32(r${r}, c, &xv);`).join("\n    ")}
  }`
  }
  ${reduce}
    let row = wg.x * ${G * R}u + lid;
    if (row < ${s.rows}u) {
      ${matvecStoreWgsl(s)}
    }
  }
}`;
}

/** WGSL of the matvec's output bindings: y, or the fused RoPE store's buffers. */
function outBindingsWgsl(s: MatmulShape): string {
  const r = s.rope;
  if (!r) return "@group(0) @binding(2) var<storage, read_write> y: array<f32>;";
  return `@group(0) @binding(9) var<storage, read> rope: array<vec2<f32>>;
@group(0) @binding(10) var<storage, read_write> qo: array<f32>;
${cacheDeclWgsl(r.elem, 11, "kc", "store")}
${cacheDeclWgsl(r.elem, 12, "vc", "store")}
${r.kt ? cacheDeclWgsl(r.elem, 13, "kt", "store") : ""}
${r.vsum ? "@group(0) @binding(14) var<storage, read_write> vsum: array<f32>;" : ""}`;
}

/**
 * WGSL of the bindings of the Q4_0 vec/dp4a/dp4s matvecs (as {@link matmulWgsl}): w and its vec4 view wq, x,
 * the outputs, bias, norm weight, and with `gated` the second matrix and the activation.
 */
function q4VecBindingsWgsl(s: MatmulShape): string {
  return `@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
${outBindingsWgsl(s)}
@group(0) @binding(5) var<storage, read> wq: array<vec4<u32>>;
${s.bias ? "@group(0) @binding(4) var<storage, read> bias: array<f32>;" : ""}
${s.rmsNorm ? "@group(0) @binding(8) var<storage, read> nw: array<vec4<f32>>;" : ""}
${
    s.gated
      ? `@group(0) @binding(6) var<storage, read> w2: array<u32>;
@group(0) @binding(7) var<storage, read> wq2: array<vec4<u32>>;
${ACT_WGSL}`
      : ""
  }`;
}

/**
 * WGSL storing the even row `row` and row + 1 of token `t` of the qkv matvec from their sums `v`, `v1`
 * (`nxt` = Σx² with the fused norm) with RoPE and the cache append fused (what ropeWgsl does after the
 * matvec, in the same f32 operations): the norm scale and bias, then for a q or k head the pair rotated by
 * the angle of position pos0 + t (dimensions past ropeDims pass through) and written to q or to the K cache
 * (and Kt), for a v head the two values written to the V cache (and added to the V sum).
 */
function ropeStoreWgsl(s: MatmulShape): string {
  const r = s.rope!;
  const half = r.ropeDims / 2;
  return `${
    s.rmsNorm
      ? `let sc = inverseSqrt(nxt / ${s.cols}.0 + ${f32Lit(s.rmsNorm.eps)});
      v *= sc;
      v1 *= sc;`
      : ""
  }
      ${
    s.bias
      ? `v += bias[${s.biasRow0}u + row];
      v1 += bias[${s.biasRow0}u + row + 1u];`
      : ""
  }
      let o = ${s.row0}u + row;
      let h = o / ${r.d}u;
      let i0 = o % ${r.d}u;
      let pos = step.pos0 + t;
      var y0 = v;
      var y1 = v1;
      if (i0 < ${r.ropeDims}u && h < ${r.nHead + r.nKv}u) {
        let cs = rope[pos * ${half}u + i0 / 2u];
        y0 = v * cs.x - v1 * cs.y;
        y1 = v * cs.y + v1 * cs.x;
      }
      if (h < ${r.nHead}u) {
        let ix = (t * ${r.nHead}u + h) * ${r.d}u + i0;
        qo[ix] = y0;
        qo[ix + 1u] = y1;
      } else if (h < ${r.nHead + r.nKv}u) {
        let kv = h - ${r.nHead}u;
        let ix = (kv * ${r.ctx}u + pos) * ${r.d}u + i0;
        ${cachePutWgsl(r.elem, "kc", "ix", "y0")}
        ${cachePutWgsl(r.elem, "kc", "ix + 1u", "y1")}
        ${
    r.kt
      ? `${cachePutWgsl(r.elem, "kt", `(kv * ${r.d}u + i0) * ${r.ctx}u + pos`, "y0")}
        ${cachePutWgsl(r.elem, "kt", `(kv * ${r.d}u + i0 + 1u) * ${r.ctx}u + pos`, "y1")}`
      : ""
  }
      } else {
        let kv = h - ${r.nHead + r.nKv}u;
        let ix = (kv * ${r.ctx}u + pos) * ${r.d}u + i0;
        ${cachePutWgsl(r.elem, "vc", "ix", "v")}
        ${cachePutWgsl(r.elem, "vc", "ix + 1u", "v1")}
        ${
    r.vsum
      ? `vsum[kv * ${r.d}u + i0] += ${cacheRoundWgsl(r.elem, "v")};
        vsum[kv * ${r.d}u + i0 + 1u] += ${cacheRoundWgsl(r.elem, "v1")};`
      : ""
  }
      }`;
}

/**
 * WGSL storing row `row` of token `t` of a matvec from its sums `v` (and `v2`, gated; `nxt` = Σx², fused norm):
 * the RMSNorm scale, bias, gated activation, then `y` written or accumulated.
 */
function matvecStoreWgsl(s: MatmulShape): string {
  const norm = s.rmsNorm
    ? `let sc = inverseSqrt(nxt / ${s.cols}.0 + ${f32Lit(s.rmsNorm.eps)});
      v *= sc;
      ${s.gated ? "v2 *= sc;" : ""}`
    : "";
  return `${norm}
      ${s.bias ? `v += bias[${s.biasRow0}u + row];` : ""}
      ${s.gated ? `v = ${s.gated === "swiglu" ? "silu" : "gelu"}(v) * v2;` : ""}
      let o = t * ${s.yStride}u + ${s.row0}u + row;
      ${s.accumulate ? "y[o] += v;" : "y[o] = v;"}`;
}

/**
 * WGSL of `q4v(q, L, H)`: one u32 of a Q4_0 block dotted with its 8 activations, prescaled (see
 * {@link q4VecMatvecWgsl}). Nibble n at bit p ≤ 16 of a word, or-ed into the mantissa of 1.0, is
 * the float 1 + n·2^(p−23); minus c_p = 1 + 8·2^(p−23) it is exactly (n − 8)·2^(p−23) (both in
 * [1, 2): the subtraction is exact), and x·2^(23−p) undoes the power of two. The nibbles at bits
 * 20, 24, 28 are read from q >> 12. So a nibble costs an and-or (one LOP3), a subtraction and a
 * multiply-add, instead of a shift, an and and an integer-to-float conversion (a quarter-rate
 * instruction on NVIDIA: it capped the word kernel near 1-2 TB/s on an H200).
 */
const Q4V_WGSL = `const Q4M = 0x3f800000u;
fn q4f(v: u32) -> f32 { return bitcast<f32>(v | Q4M); }
fn q4v(q: u32, L: vec4<f32>, H: vec4<f32>) -> f32 {
  let s = q >> 12u;
  let l = vec4<f32>(q4f(q & 0xfu), q4f(q & 0xf00u), q4f(q & 0xf0000u), q4f(s & 0xf000u)) - Q4CL;
  let h = vec4<f32>(q4f(q & 0xf0u), q4f(q & 0xf000u), q4f(s & 0xf00u), q4f(s & 0xf0000u)) - Q4CH;
  return dot(l, L) + dot(h, H);
}
// c_p for the lanes of l (bits 0, 8, 16, 12) and h (4, 12, 8, 16); XL, XH: the matching 2^(23−p).
const Q4CL = vec4<f32>(${1 + 8 * 2 ** -23}, ${1 + 8 * 2 ** -15}, ${1 + 8 * 2 ** -7}, ${1 + 8 * 2 ** -11});
const Q4CH = vec4<f32>(${1 + 8 * 2 ** -19}, ${1 + 8 * 2 ** -11}, ${1 + 8 * 2 ** -15}, ${1 + 8 * 2 ** -7});
const XL = vec4<f32>(${2 ** 23}.0, ${2 ** 15}.0, ${2 ** 7}.0, ${2 ** 11}.0);
const XH = vec4<f32>(${2 ** 19}.0, ${2 ** 11}.0, ${2 ** 15}.0, ${2 ** 7}.0);`;

/** WGSL of `q4i(q, xl, xh)`: Σ n·x over one u32 of a Q4_0 block (nibbles n, unsigned) and its Q8 activations. */
const Q4I_WGSL = `fn q4i(q: u32, xl: u32, xh: u32) -> i32 {
  return dot4I8Packed(q & 0x0f0f0f0fu, xl) + dot4I8Packed((q >> 4u) & 0x0f0f0f0fu, xh);
}`;

/**
 * WGSL of the Q4_0 decode matvec ("vec" mode; token wg.y). A workgroup of WG threads (256 unless `mvWg`) holds
 * G = WG/T sets of T threads; each set computes R rows (R of W and R of W₂ when gated). Thread i
 * of a set walks blocks c = i, i+T, …: it loads the block's 32 activations once (prescaled for
 * `q4v`, times the norm weight when fused), then the block's 16 quant bytes of each of its rows as
 * one vec4<u32> each (all R loads issued before the math: R·16 bytes in flight per thread; a warp
 * reads 512 contiguous bytes per row) and its f16 scale. The partial sums meet once in workgroup
 * memory: every thread sums 8 interleaved slices of one (set, sum), then one thread per row adds
 * the 8 (two barriers in all). Bindings as {@link matmulWgsl}.
 */
function q4VecMatvecWgsl(s: MatmulShape): string {
  if (s.mvMode === "dp4s") return q4SharedMatvecWgsl(s);
  const T = matvecThreads(s), R = matvecRowsPerThread(s), WG = matvecWg(s), G = WG / T;
  if (T < 8 || T > WG || T & (T - 1)) throw new Error(`q4VecMatvecWgsl: ${T} threads per row set`);
  const nb = s.cols / 32;
  const rs = range(R);
  const sums = [...rs.map((r) => `a${r}`), ...(s.gated ? rs.map((r) => `b${r}`) : []), ...(s.rmsNorm ? ["nx"] : [])];
  const K = sums.length;
  const sOff = s.rows * nb * 4; // u32 index of the scales (see repackQ4_0)
  const mats = s.gated ? ["", "2"] : [""];
  const loads = mats.flatMap((m) =>
    rs.map((r) =>
      `let q${m}_${r} = wq${m}[r${r} + c];
    let d${m}_${r} = unpack2x16float(w${m}[${sOff}u + (r${r} + c) / 2u]);`
    )
  );
  const i8 = s.mvMode === "dp4a";
  const math = mats.flatMap((m) =>
    rs.map((r) => {
      const d = `select(d${m}_${r}.x, d${m}_${r}.y, ((r${r} + c) & 1u) == 1u)`, q = `q${m}_${r}`;
      return i8
        ? `${
          m ? "b" : "a"
        }${r} += ${d} * dx * f32(q4i(${q}.x, xq0, xq4) + q4i(${q}.y, xq1, xq5) + q4i(${q}.z, xq2, xq6) + q4i(${q}.w, xq3, xq7) - xs8);`
        : `${
          m ? "b" : "a"
        }${r} += ${d} * (q4v(${q}.x, L0, H0) + q4v(${q}.y, L1, H1) + q4v(${q}.z, L2, H2) + q4v(${q}.w, L3, H3));`;
    })
  );
  // dp4a: the block's activations as Q8_0 (ggml's quantize_row_q8_0: d = amax/127, q = round(x·127/amax),
  // ties to even), but d kept f32 (ggml rounds it to f16): the fused RMSNorm quantizes x∘w before the
  // norm's scale, and only an f32 d makes the quantized values the same as the unfused kernels'.
  // xs8 = 8·Σq undoes the nibbles' offset.
  const prep = i8
    ? `let am = max(max(max(abs(x0), abs(x1)), max(abs(x2), abs(x3))), max(max(abs(x4), abs(x5)), max(abs(x6), abs(x7))));
    let amax = max(max(am.x, am.y), max(am.z, am.w));
    let inv = select(0.0, 127.0 / amax, amax != 0.0);
    let dx = amax / 127.0;
    ${[0, 1, 2, 3, 4, 5, 6, 7].map((i) => `let xq${i} = pack4xI8(vec4<i32>(round(x${i} * inv)));`).join("\n    ")}
    let xs8 = 8 * (${[0, 1, 2, 3, 4, 5, 6, 7].map((i) => `dot4I8Packed(xq${i}, 0x01010101u)`).join(" + ")});`
    : [0, 1, 2, 3].map((i) => `let L${i} = x${i} * XL;\n    let H${i} = x${i + 4} * XH;`).join("\n    ");
  const xRow = s.rmsNorm && s.tokens === "nOut" ? "step.outTok0 + t" : "t";
  return `${stepWgsl(3)}
${q4VecBindingsWgsl(s)}
${i8 ? Q4I_WGSL : Q4V_WGSL}
var<workgroup> part: array<f32, ${WG * K}>;
var<workgroup> part8: array<f32, ${G * K * 8}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wg.y;
  if (t >= step.${s.tokens}) { return; }
  let tid = lid % ${T}u;
  let rb = wg.x * ${G * R}u + (lid / ${T}u) * ${R}u;
  ${rs.map((r) => `let r${r} = min(rb + ${r}u, ${s.rows - 1}u) * ${nb}u;`).join("\n  ")}
  ${sums.map((a) => `var ${a} = 0.0;`).join("\n  ")}
  let xb = (${xRow}) * ${s.xStride / 4}u;
  for (var c = tid; c < ${nb}u; c += ${T}u) {
    ${[0, 1, 2, 3, 4, 5, 6, 7].map((i) => `var x${i} = x[xb + c * 8u + ${i}u];`).join("\n    ")}
    ${
    s.rmsNorm
      ? `nx += dot(x0, x0) + dot(x1, x1) + dot(x2, x2) + dot(x3, x3) + dot(x4, x4) + dot(x5, x5) + dot(x6, x6) + dot(x7, x7);
    ${[0, 1, 2, 3, 4, 5, 6, 7].map((i) => `x${i} *= nw[c * 8u + ${i}u];`).join("\n    ")}`
      : ""
  }
    ${prep}
    ${loads.join("\n    ")}
    ${math.join("\n    ")}
  }
  ${q4ReduceWgsl(s, sums, false)}
}`;
}

/**
 * WGSL of the end of the Q4_0 vec/dp4a/dp4s matvecs: the per-thread `sums` (R row sums, R of W₂ when
 * gated, then nx when the norm is fused) meet in workgroup memory (`part`, `part8`): every thread
 * sums 8 interleaved slices of one (set, sum), then one thread per row adds the 8 and writes y (two
 * barriers in all). `nxAll`: each thread's nx covers part of the whole row for the whole workgroup
 * (dp4s), so the norm's sum adds every set's slices, not just the row's own set's.
 */
function q4ReduceWgsl(s: MatmulShape, sums: string[], nxAll: boolean): string {
  const T = matvecThreads(s), R = matvecRowsPerThread(s), WG = matvecWg(s), G = WG / T, K = sums.length;
  return `${sums.map((a, i) => `part[${i * WG}u + lid] = ${a};`).join("\n  ")}
  workgroupBarrier();
  // part8[(g·K + k)·8 + j] = Σ_i part[k·WG + g·T + j + 8i]: slice j of sum k of set g.
  for (var e = lid; e < ${G * K * 8}u; e += ${WG}u) {
    let g = e / ${K * 8}u;
    let k = (e / 8u) % ${K}u;
    let base = k * ${WG}u + g * ${T}u + e % 8u;
    var v = 0.0;
    for (var i = 0u; i < ${T}u; i += 8u) { v += part[base + i]; }
    part8[e] = v;
  }
  workgroupBarrier();
  // One thread per row, or per row pair (2e, 2e + 1) with the fused RoPE store.
  if (lid < ${s.rope ? G * R / 2 : G * R}u) {
    let e = ${s.rope ? "2u * lid" : "lid"};
    let g = e / ${R}u;
    let r = e % ${R}u;
    let row = wg.x * ${G * R}u + e;
    let p = g * ${K * 8}u;
    var v = 0.0;
    ${s.gated ? "var v2 = 0.0;" : ""}
    ${s.rope ? "var v1 = 0.0;" : ""}
    ${s.rmsNorm ? "var nxt = 0.0;" : ""}
    for (var j = 0u; j < 8u; j++) {
      v += part8[p + r * 8u + j];
      ${s.gated ? `v2 += part8[p + (${R}u + r) * 8u + j];` : ""}
      ${s.rope ? "v1 += part8[p + (r + 1u) * 8u + j];" : ""}
      ${
    s.rmsNorm
      ? nxAll
        ? `for (var g2 = 0u; g2 < ${G}u; g2++) { nxt += part8[g2 * ${K * 8}u + ${(K - 1) * 8}u + j]; }`
        : `nxt += part8[p + ${(K - 1) * 8}u + j];`
      : ""
  }
    }
    if (row < ${s.rows}u) {
      ${s.rope ? ropeStoreWgsl(s) : matvecStoreWgsl(s)}
    }
  }`;
}

/**
 * WGSL of the Q4_0 "dp4s" decode matvec: {@link q4VecMatvecWgsl}'s dp4a kernel with the activations
 * quantized to Q8_0 once per workgroup instead of once per row set and block. The first block's
 * weight loads of every row are issued first; then the workgroup loads x (and the norm weight),
 * quantizes it block by block (one block per thread) into workgroup memory — quants as two
 * vec4<u32> planes, so neighbouring threads read neighbouring 16 bytes, and (d, 8·Σq) — and sums
 * x² for the fused norm; after one barrier the threads dot their blocks as before, reading the
 * activations from workgroup memory. Each x element is then read from L2 once per workgroup
 * (G = WG/T times less often) and quantized once.
 */
function q4SharedMatvecWgsl(s: MatmulShape): string {
  const T = matvecThreads(s), R = matvecRowsPerThread(s), WG = matvecWg(s), G = WG / T;
  if (T < 8 || T > WG || T & (T - 1)) throw new Error(`q4SharedMatvecWgsl: ${T} threads per row set`);
  const nb = s.cols / 32;
  const rs = range(R);
  const sums = [...rs.map((r) => `a${r}`), ...(s.gated ? rs.map((r) => `b${r}`) : []), ...(s.rmsNorm ? ["nx"] : [])];
  const K = sums.length;
  const sOff = s.rows * nb * 4; // u32 index of the scales (see repackQ4_0)
  const mats = s.gated ? ["", "2"] : [""];
  const loads = (decl: string) =>
    mats.flatMap((m) =>
      rs.map((r) =>
        `${decl} q${m}_${r} = wq${m}[r${r} + c];
    ${decl} d${m}_${r} = unpack2x16float(w${m}[${sOff}u + (r${r} + c) / 2u]);`
      )
    ).join("\n    ");
  const math = mats.flatMap((m) =>
    rs.map((r) => {
      const d = `select(d${m}_${r}.x, d${m}_${r}.y, ((r${r} + c) & 1u) == 1u)`, q = `q${m}_${r}`;
      return `${m ? "b" : "a"}${r} += ${d} * xd.x * (f32(q4i(${q}.x, xa.x, xb.x) + q4i(${q}.y, xa.y, xb.y) + ` +
        `q4i(${q}.z, xa.z, xb.z) + q4i(${q}.w, xa.w, xb.w)) - xd.y);`;
    })
  ).join("\n    ");
  const xRow = s.rmsNorm && s.tokens === "nOut" ? "step.outTok0 + t" : "t";
  const i8 = [0, 1, 2, 3, 4, 5, 6, 7];
  return `${stepWgsl(3)}
${q4VecBindingsWgsl(s)}
${Q4I_WGSL}
var<workgroup> part: array<f32, ${WG * K}>;
var<workgroup> part8: array<f32, ${G * K * 8}>;
// Block b of x as Q8_0: quants 0-15 (xqa), 16-31 (xqb), (d, 8·Σq) (xqd).
var<workgroup> xqa: array<vec4<u32>, ${nb}>;
var<workgroup> xqb: array<vec4<u32>, ${nb}>;
var<workgroup> xqd: array<vec2<f32>, ${nb}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wg.y;
  if (t >= step.${s.tokens}) { return; }
  let tid = lid % ${T}u;
  let rb = wg.x * ${G * R}u + (lid / ${T}u) * ${R}u;
  ${rs.map((r) => `let r${r} = min(rb + ${r}u, ${s.rows - 1}u) * ${nb}u;`).join("\n  ")}
  ${sums.map((a) => `var ${a} = 0.0;`).join("\n  ")}
  // The first block's weights, in flight while x is quantized.
  var c = min(tid, ${nb - 1}u);
  ${loads("var")}
  let xb0 = (${xRow}) * ${s.xStride / 4}u;
  for (var b = lid; b < ${nb}u; b += ${WG}u) {
    ${i8.map((i) => `var x${i} = x[xb0 + b * 8u + ${i}u];`).join("\n    ")}
    ${
    s.rmsNorm
      ? `nx += ${i8.map((i) => `dot(x${i}, x${i})`).join(" + ")};
    ${i8.map((i) => `x${i} *= nw[b * 8u + ${i}u];`).join("\n    ")}`
      : ""
  }
    // ggml's quantize_row_q8_0 (d = amax/127, q = round(x·127/amax)), d kept f32 as in q4VecMatvecWgsl.
    let am = max(max(max(abs(x0), abs(x1)), max(abs(x2), abs(x3))), max(max(abs(x4), abs(x5)), max(abs(x6), abs(x7))));
    let amax = max(max(am.x, am.y), max(am.z, am.w));
    let inv = select(0.0, 127.0 / amax, amax != 0.0);
    ${i8.map((i) => `let xq${i} = pack4xI8(vec4<i32>(round(x${i} * inv)));`).join("\n    ")}
    xqa[b] = vec4<u32>(xq0, xq1, xq2, xq3);
    xqb[b] = vec4<u32>(xq4, xq5, xq6, xq7);
    xqd[b] = vec2<f32>(amax / 127.0, f32(8 * (${i8.map((i) => `dot4I8Packed(xq${i}, 0x01010101u)`).join(" + ")})));
  }
  workgroupBarrier();
  c = tid;
  loop {
    if (c >= ${nb}u) { break; }
    let xa = xqa[c];
    let xb = xqb[c];
    let xd = xqd[c];
    ${math}
    c += ${T}u;
    if (c >= ${nb}u) { break; }
    ${loads("")}
  }
  ${q4ReduceWgsl(s, sums, true)}
}`;
}

/**
 * WGSL of a matmul pipeline. Bindings: 0 w, 1 x, 2 y, 3 step, 4 bias (when `bias`), 5 w again (`usesVecView`),
 * 6 and 7 the second matrix (`gated`), 8 the norm weight (`rmsNorm`).
 */
export function matmulWgsl(s: MatmulShape): string {
  if (s.tile === 1) return cacheEnableWgsl(s.rope?.elem) + matvecWgsl(s);
  if (s.gated || s.rmsNorm || s.rope) {
    throw new Error("matmulWgsl: gated, rmsNorm and rope are matvec (tile 1) options");
  }
  if (s.tile !== 64 && s.tile !== 128) throw new Error(`matmulWgsl: GEMM tile ${s.tile} (64 or 128)`);
  return gemmWgsl(s);
}

/**
 * WGSL of the prompt-batch GEMM: a workgroup of 256 threads computes a T × T tile of rows × tokens
 * (T = `s.tile`, 64 or 128; see {@link gemmTile}), each thread P × P quads of 4 rows × 4 tokens (P =
 * T/64; a thread's quads are 16 apart, so neighbouring threads read neighbouring words). Per
 * 32-column block, T threads dequantize one row's block each (`load32`, any weight type) and all
 * threads load the tile's activations, both transposed into workgroup memory (T·256 bytes); then
 * every thread runs 32 steps of its outer products, 2P vec4 reads per 16P² multiply-adds. Rows and
 * tokens past the end read the last valid one and are not written. Dispatch (⌈rows/T⌉, ⌈tokens/T⌉).
 */
function gemmWgsl(s: MatmulShape): string {
  const T = s.tile, Q = T / 4, P = T / 64, nb = s.cols / 32, xq = s.xStride / 4;
  const X = (T * 32) / 256; // activations per thread per block
  return `${stepWgsl(3)}
@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
${s.bias ? "@group(0) @binding(4) var<storage, read> bias: array<f32>;" : ""}
${quantBindingsWgsl(s.type)}
${load32Wgsl(s.type, s.cols, s.rows)}
// Block k of the tile, transposed: ws[k][row / 4][row % 4], xs[k][token / 4][token % 4].
var<workgroup> ws: array<vec4<f32>, ${32 * Q}>;
var<workgroup> xs: array<vec4<f32>, ${32 * Q}>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r0 = wg.x * ${T}u;
  let t0 = wg.y * ${T}u;
  let nt = step.${s.tokens};
  let tr = lid % 16u;
  let tt = lid / 16u;
  // The row this thread dequantizes (lid < T), and the token and part of a block it loads.
  let lr = min(r0 + lid, ${s.rows - 1}u);
  let tok = lid / ${256 / T}u;
  let lt = min(t0 + tok, nt - 1u);
  let lk = (lid % ${256 / T}u) * ${X}u;
  var acc: array<vec4<f32>, ${4 * P * P}>;
  var v: array<f32, 32>;
  for (var c = 0u; c < ${nb}u; c++) {
    if (lid < ${T}u) {
      load32(lr, c, &v);
      for (var k = 0u; k < 32u; k++) { ws[k * ${Q}u + lid / 4u][lid % 4u] = v[k]; }
    }
    let xb = lt * ${xq}u + c * 8u + lk / 4u;
    let xo = lk * ${Q}u + tok / 4u;
    let xl = tok % 4u;
    ${
    range(X / 4).map((i) =>
      `let x${i} = x[xb + ${i}u];
    ${range(4).map((e) => `xs[xo + ${(4 * i + e) * Q}u][xl] = x${i}.${"xyzw"[e]};`).join(" ")}`
    ).join("\n    ")
  }
    workgroupBarrier();
    for (var k = 0u; k < 32u; k++) {
      ${range(P).map((p) => `let a${p} = ws[k * ${Q}u + tr + ${16 * p}u];`).join(" ")}
      ${range(P).map((p) => `let b${p} = xs[k * ${Q}u + tt + ${16 * p}u];`).join(" ")}
      ${
    range(P).flatMap((pt) =>
      range(4).flatMap((j) => range(P).map((pr) => `acc[${(pt * 4 + j) * P + pr}] += a${pr} * b${pt}.${"xyzw"[j]};`))
    ).join("\n      ")
  }
    }
    workgroupBarrier();
  }
  // acc[(pt·4 + j)·P + pr][i]: row r0 + 4·(tr + 16·pr) + i, token t0 + 4·(tt + 16·pt) + j. Written out with
  // constant indices: a loop over them would index acc dynamically and move it out of registers (7× slower).
  ${
    range(P).flatMap((pt) =>
      range(4).map((jj) =>
        `if (t0 + ${4 * 16 * pt + jj}u + 4u * tt < nt) {
    let o = (t0 + ${4 * 16 * pt + jj}u + 4u * tt) * ${s.yStride}u + ${s.row0}u;
    ${
          range(P).flatMap((pr) =>
            range(4).map((ii) => {
              const row = `r0 + ${64 * pr + ii}u + 4u * tr`;
              const val = `acc[${(pt * 4 + jj) * P + pr}].${"xyzw"[ii]}${
                s.bias ? ` + bias[${s.biasRow0}u + ${row}]` : ""
              }`;
              return `if (${row} < ${s.rows}u) { y[o + ${row}] ${s.accumulate ? "+=" : "="} ${val}; }`;
            })
          ).join("\n    ")
        }
  }`
      )
    ).join("\n  ")
  }
}`;
}

/** The GEMM tile for a device: 128 × 128 where a workgroup may hold 32 KiB, else 64 × 64 (16 KiB, the default). */
export function gemmTile(maxWorkgroupStorage: number): number {
  return maxWorkgroupStorage >= 32768 ? 128 : 64;
}

/**
 * WGSL of the embedding lookup: `out[t][:] = scale · W[tokens[t] - row0][:]` for the tokens whose
 * row lies in this weight buffer. Bindings: 0 w, 1 tokens (u32), 2 out, 3 step. One workgroup per token.
 */
export function getRowsWgsl(type: GgmlType, cols: number, rows: number, row0: number, scale: string): string {
  return `${stepWgsl(3)}
@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
${quantBindingsWgsl(type)}
${load32Wgsl(type, cols, rows)}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wg.x;
  if (t >= step.nTok) { return; }
  let id = tokens[t];
  if (id < ${row0}u || id >= ${row0 + rows}u) { return; }
  var v: array<f32, 32>;
  for (var c = lid; c < ${cols / 32}u; c += 64u) {
    load32(id - ${row0}u, c, &v);
    for (var i = 0u; i < 32u; i++) { out[t * ${cols}u + c * 32u + i] = v[i] * ${scale}; }
  }
}`;
}
