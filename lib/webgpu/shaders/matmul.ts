/**
 * Matrix × activations for every weight type: `y[t][yOff + row0 + n] (+)= Σ_k W[n][k]·x[t][k] (+ b[n])`.
 * One workgroup computes 8 rows for a tile of up to `tile` tokens; 32 lanes share a row and
 * stride over its 32-element chunks, so each dequantized chunk is used for all tokens of the tile
 * (tile 1 = the decode matvec, tile 8 = prompt matmul). Also the embedding row lookup.
 * @module
 */
import type { GgmlType } from "../../ggml_types.ts";
import { dot32Wgsl, load32Wgsl, quantBindingsWgsl } from "./quant.ts";
import { stepWgsl } from "./common.ts";

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
}

/** Rows computed by one matmul workgroup (tiled prompt kernel). */
export const MATMUL_ROWS = 8;
/** Rows computed by one matvec workgroup: each 32-lane group does two rows with the same activations. */
export const MATVEC_ROWS = 16;

/** Rows per workgroup of the kernel for `tile` tokens. */
export function rowsPerGroup(tile: number): number {
  return tile === 1 ? MATVEC_ROWS : MATMUL_ROWS;
}

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

/**
 * WGSL of the matvec (token wg.y): 32 lanes per pair of rows, each lane loads a chunk's activations
 * once and dots them with both rows' quantized chunks. Bindings as {@link matmulWgsl}.
 */
function matvecWgsl(s: MatmulShape): string {
  return `${stepWgsl(3)}
@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
${s.bias ? "@group(0) @binding(4) var<storage, read> bias: array<f32>;" : ""}
${quantBindingsWgsl(s.type)}
${dot32Wgsl(s.type, s.cols, s.rows)}
var<workgroup> part: array<vec2<f32>, 256>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wg.y;
  if (t >= step.${s.tokens}) { return; }
  let lane = lid % 32u;
  let r0 = wg.x * ${MATVEC_ROWS}u + (lid / 32u) * 2u;
  let r1 = min(r0 + 1u, ${s.rows - 1}u);
  var acc = vec2<f32>(0.0);
  if (r0 < ${s.rows}u) {
    var xv: array<vec4<f32>, 8>;
    for (var c = lane; c < ${s.cols / 32}u; c += 32u) {
      for (var i = 0u; i < 8u; i++) { xv[i] = x[(t * ${s.xStride}u) / 4u + c * 8u + i]; }
      acc += vec2<f32>(dot32(r0, c, &xv), dot32(r1, c, &xv));
    }
  }
  part[lid] = acc;
  workgroupBarrier();
  for (var s = 16u; s > 0u; s >>= 1u) {
    if (lane < s) { part[lid] += part[lid + s]; }
    workgroupBarrier();
  }
  if (lane == 0u) {
    for (var r = 0u; r < 2u; r++) {
      let row = r0 + r;
      if (row < ${s.rows}u) {
        var v = part[lid][r];
        ${s.bias ? `v += bias[${s.biasRow0}u + row];` : ""}
        let o = t * ${s.yStride}u + ${s.row0}u + row;
        ${s.accumulate ? "y[o] += v;" : "y[o] = v;"}
      }
    }
  }
}`;
}

/** WGSL of a matmul pipeline. Bindings: 0 w, 1 x, 2 y, 3 step, 4 bias (when `bias`), 5 w again (`usesVecView`). */
export function matmulWgsl(s: MatmulShape): string {
  if (s.tile === 1) return matvecWgsl(s);
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
