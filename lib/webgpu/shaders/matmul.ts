/**
 * Matrix × activations for every weight type: `y[t][yOff + row0 + n] (+)= Σ_k W[n][k]·x[t][k] (+ b[n])`.
 * One workgroup computes 8 rows for a tile of up to `tile` tokens; 32 lanes share a row and
 * stride over its 32-element chunks, so each dequantized chunk is used for all tokens of the tile
 * (tile 1 = the decode matvec, tile 8 = prompt matmul). Also the embedding row lookup.
 * @module
 */
import { GgmlType } from "../../ggml_types.ts";
import { dot32Wgsl, load32Wgsl, quantBindingsWgsl } from "./quant.ts";
import { f32Lit, stepWgsl } from "./common.ts";
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
  /** Tokens per workgroup. */
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
  /** Matvec lane mapping for Q4_0: one u32 of a block per lane ("word", default) or a whole block ("block"). */
  mvMode?: "word" | "block";
  /**
   * Matvec with a second matrix of the same shape and type (bindings 6, 7: up): writes
   * act(W·x)·(W₂·x) (the gated FFN in one dispatch). Q4_0 word mode only.
   */
  gated?: "swiglu" | "geglu";
  /**
   * Matvec with the RMSNorm of x fused in (binding 8: the norm weight): computes W·rmsnorm(x)·weight
   * as (W·(x∘weight))·rsqrt(mean(x²) + eps); each row set reads all of x, so it also sums x².
   * With `tokens: "nOut"`, x row outTok0 + t is read (the final norm of the last token).
   */
  rmsNorm?: { eps: number };
}

/** Rows computed by one matmul workgroup (tiled prompt kernel). */
export const MATMUL_ROWS = 8;
/** Weight buffers split by rows are split at multiples of this (any row count works). */
export const MATVEC_ROWS = 16;

/** A tile of tokens: each chunk is dequantized once and used for every token of the tile. */
function tiledLoop(s: MatmulShape): string {
  return `var v: array<f32, 32>;
    for (var c = lane; c < ${s.cols / 32}u; c += 32u) {
      load32(row, c, &v);
      for (var t = 0u; t < nt; t++) {
        let xb = ((t0 + t) * ${s.xStride}u + c * 32u) / 4u;
        var a = 0.0;
        for (var i = 0u; i < 8u; i++) {
          a += dot(vec4<f32>(v[4u * i], v[4u * i + 1u], v[4u * i + 2u], v[4u * i + 3u]), x[xb + i]);
        }
        acc[t] += a;
      }
    }`;
}

/** Threads sharing one set of rows in the matvec: a power of two ≥ 64 (a subgroup never straddles two sets), ≤ 256. */
export function matvecThreads(s: MatmulShape): number {
  if (s.mvThreads) return s.mvThreads;
  const n = s.cols / 32;
  let t = 64;
  while (t < 256 && t < n) t *= 2;
  return t;
}

/** Rows per thread in the matvec used when the shape sets none (H200, 7B decode: 4 beat 8 by ~5%). */
export const MATVEC_ROWS_PER_THREAD = 4;

/** Rows per thread in the matvec (each lane's activations are used for that many rows). */
export function matvecRowsPerThread(s: MatmulShape): number {
  return s.mvRows ?? MATVEC_ROWS_PER_THREAD;
}

/** Whether the matvec of `s` maps one u32 of a Q4_0 block per lane (see {@link matvecWgsl}). */
export function wordMode(s: MatmulShape): boolean {
  return s.type === GgmlType.Q4_0 && s.mvMode !== "block";
}

/** Rows computed by one workgroup of the kernel of `s` (matvec when `tile` is 1). */
export function groupRows(s: MatmulShape): number {
  return s.tile === 1 ? (256 / matvecThreads(s)) * matvecRowsPerThread(s) : MATMUL_ROWS;
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
  const T = matvecThreads(s), R = matvecRowsPerThread(s), G = 256 / T;
  const nChunk = s.cols / 32;
  const sg = s.subgroups !== undefined;
  const rs = [...Array(R).keys()];
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
      ${
    s.rmsNorm
      ? `let sc = inverseSqrt(nxt / ${s.cols}.0 + ${f32Lit(s.rmsNorm.eps)});
      v *= sc;
      ${s.gated ? "v2 *= sc;" : ""}`
      : ""
  }
      ${s.bias ? `v += bias[${s.biasRow0}u + row];` : ""}
      ${s.gated ? `v = ${s.gated === "swiglu" ? "silu" : "gelu"}(v) * v2;` : ""}
      let o = t * ${s.yStride}u + ${s.row0}u + row;
      ${s.accumulate ? "y[o] += v;" : "y[o] = v;"}
    }
  }
}`;
}

/**
 * WGSL of a matmul pipeline. Bindings: 0 w, 1 x, 2 y, 3 step, 4 bias (when `bias`), 5 w again (`usesVecView`),
 * 6 and 7 the second matrix (`gated`), 8 the norm weight (`rmsNorm`).
 */
export function matmulWgsl(s: MatmulShape): string {
  if (s.tile === 1) return matvecWgsl(s);
  if (s.gated || s.rmsNorm) throw new Error("matmulWgsl: gated and rmsNorm are matvec (tile 1) options");
  const T = s.tile;
  return `${stepWgsl(3)}
@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
${s.bias ? "@group(0) @binding(4) var<storage, read> bias: array<f32>;" : ""}
${quantBindingsWgsl(s.type)}
${load32Wgsl(s.type, s.cols, s.rows)}
var<workgroup> part: array<f32, ${256 * T}>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let lane = lid % 32u;
  let row = wg.x * ${MATMUL_ROWS}u + lid / 32u;
  let t0 = wg.y * ${T}u;
  let nt = min(${T}u, step.${s.tokens} - t0);
  var acc: array<f32, ${T}>;
  if (row < ${s.rows}u) {
    ${tiledLoop(s)}
  }
  for (var t = 0u; t < ${T}u; t++) { part[lid * ${T}u + t] = acc[t]; }
  workgroupBarrier();
  for (var s = 16u; s > 0u; s >>= 1u) {
    if (lane < s) {
      for (var t = 0u; t < ${T}u; t++) { part[lid * ${T}u + t] += part[(lid + s) * ${T}u + t]; }
    }
    workgroupBarrier();
  }
  if (lane == 0u && row < ${s.rows}u) {
    for (var t = 0u; t < nt; t++) {
      var r = part[lid * ${T}u + t];
      ${s.bias ? `r += bias[${s.biasRow0}u + row];` : ""}
      let o = (t0 + t) * ${s.yStride}u + ${s.row0}u + row;
      ${s.accumulate ? "y[o] += r;" : "y[o] = r;"}
    }
  }
}`;
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
