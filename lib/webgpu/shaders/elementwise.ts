/**
 * Row-wise and element-wise kernels: RMSNorm/LayerNorm, gated activations (with ggml's fp16 GELU
 * table emulated), RoPE fused with the KV-cache append, the running V sum, argmax and the random
 * KV fill used by benchmarks.
 * @module
 */
import { f32Lit, reduceWgsl, stepWgsl } from "./common.ts";
import { cacheDeclWgsl, type CacheElem, cacheEnableWgsl, cacheLoad, cachePutWgsl, cacheRoundWgsl } from "./kv_cache.ts";

/** Norm options. Bindings: 0 x, 1 y, 2 step, 3 weight, 4 bias (layer norm with bias). */
export interface NormShape {
  n: number;
  eps: number;
  kind: "rms" | "layer";
  bias: boolean;
  /** "nTok": every row; "nOut": rows outTok0.. of x into rows 0.. of y (final norm). */
  tokens: "nTok" | "nOut";
}

/** WGSL of a norm pipeline; one workgroup (256 threads) per token. */
export function normWgsl(s: NormShape): string {
  const src = s.tokens === "nOut" ? "(step.outTok0 + t)" : "t";
  return `${stepWgsl(2)}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
${s.bias ? "@group(0) @binding(4) var<storage, read> bias: array<f32>;" : ""}
${reduceWgsl(256)}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wg.x;
  if (t >= step.${s.tokens}) { return; }
  let xb = ${src} * ${s.n}u;
  let yb = t * ${s.n}u;
  ${
    s.kind === "layer"
      ? `var a = 0.0;
  for (var i = lid; i < ${s.n}u; i += 256u) { a += x[xb + i]; }
  let mean = wgSum(lid, a) / ${s.n}.0;
  var b = 0.0;
  for (var i = lid; i < ${s.n}u; i += 256u) { let d = x[xb + i] - mean; b += d * d; }
  let sc = 1.0 / sqrt(wgSum(lid, b) / ${s.n}.0 + ${f32Lit(s.eps)});
  for (var i = lid; i < ${s.n}u; i += 256u) {
    y[yb + i] = (x[xb + i] - mean) * sc * weight[i]${s.bias ? " + bias[i]" : ""};
  }`
      : `var a = 0.0;
  for (var i = lid; i < ${s.n}u; i += 256u) { let v = x[xb + i]; a += v * v; }
  let sc = 1.0 / sqrt(wgSum(lid, a) / ${s.n}.0 + ${f32Lit(s.eps)});
  for (var i = lid; i < ${s.n}u; i += 256u) { y[yb + i] = (x[xb + i] * sc) * weight[i]; }`
  }
}`;
}

/** WGSL of `gelu(x)` (ggml's GELU, tanh form, through its fp16 table: input and result rounded to f16) and `silu(x)`. */
export const ACT_WGSL = `fn toF16(x: f32) -> f32 {
  let a = abs(x);
  if (a == 0.0) { return x; }
  let e = max(i32((bitcast<u32>(a) >> 23u) & 255u) - 127, -14);
  let sp = exp2(f32(e - 10));
  return round(x / sp) * sp;
}
fn gelu(x: f32) -> f32 {
  if (x <= -10.0) { return 0.0; }
  if (x >= 10.0) { return x; }
  let h = toF16(x);
  return toF16(0.5 * h * (1.0 + tanh(0.7978845608028654 * h * (1.0 + 0.044715 * h * h))));
}
fn silu(x: f32) -> f32 { return x / (1.0 + exp(-x)); }`;
const GELU = ACT_WGSL;

/**
 * WGSL of the FFN activation over `[nTok][n]`: swiglu `a = silu(a)·b`, geglu `a = gelu(a)·b`,
 * gelu `a = gelu(a)`. Bindings: 0 a (in/out), 1 b (gated kinds), 2 step.
 */
export function actWgsl(kind: "swiglu" | "geglu" | "gelu", n: number): string {
  const expr = kind === "swiglu" ? "silu(a[i]) * b[i]" : kind === "geglu" ? "gelu(a[i]) * b[i]" : "gelu(a[i])";
  return `${stepWgsl(2)}
@group(0) @binding(0) var<storage, read_write> a: array<f32>;
${kind === "gelu" ? "" : "@group(0) @binding(1) var<storage, read> b: array<f32>;"}
${GELU}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * 65535u * 256u;
  if (i >= step.nTok * ${n}u) { return; }
  a[i] = ${expr};
}`;
}

/** RoPE + KV append options. */
export interface RopeShape {
  nHead: number;
  nKv: number;
  d: number;
  ropeDims: number;
  neox: boolean;
  ctx: number;
  /** Floats per token in the qkv buffer (q, then k, then v). */
  qkvStride: number;
  /** Whether the feature-major K copy is written. */
  kt: boolean;
  /** Whether the batch's V rows are added to the running V sum (SparQ). */
  vsum: boolean;
  /** KV-cache element storage (default f32). */
  elem?: CacheElem;
}

/**
 * WGSL of RoPE on q and k fused with the cache append. Bindings: 0 qkv, 1 q (out, `[nTok][nHead][d]`),
 * 2 K cache `[nKv][ctx][d]`, 3 V cache, 4 step, 5 rope table `[ctx][ropeDims/2]` of (cos, sin), 6 Kt
 * `[nKv][d][ctx]` (when `kt`), 7 V sum `[nKv][d]` (when `vsum`). Dispatch (nTok, nHead + nKv): one workgroup
 * per token and head; the token-0 workgroup of each KV head adds the whole batch's V rows to the sum.
 */
export function ropeWgsl(s: RopeShape): string {
  const half = s.ropeDims / 2;
  const pair = s.neox ? `let i0 = j; let i1 = j + ${half}u;` : `let i0 = 2u * j; let i1 = 2u * j + 1u;`;
  const e = s.elem;
  return `${cacheEnableWgsl(e)}${stepWgsl(4)}
@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read_write> q: array<f32>;
${cacheDeclWgsl(e, 2, "kc", "store")}
${cacheDeclWgsl(e, 3, "vc", "store")}
@group(0) @binding(5) var<storage, read> rope: array<vec2<f32>>;
${s.kt ? cacheDeclWgsl(e, 6, "kt", "store") : ""}
${s.vsum ? "@group(0) @binding(7) var<storage, read_write> vsum: array<f32>;" : ""}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wg.x;
  let h = wg.y;
  let pos = step.pos0 + t;
  let src = t * ${s.qkvStride}u;
  // Rotated pairs of head h: q for h < nHead, else k of KV head h - nHead.
  for (var j = lid; j < ${half}u; j += 64u) {
    ${pair}
    let cs = rope[pos * ${half}u + j];
    let x0 = qkv[src + h * ${s.d}u + i0];
    let x1 = qkv[src + h * ${s.d}u + i1];
    let y0 = x0 * cs.x - x1 * cs.y;
    let y1 = x0 * cs.y + x1 * cs.x;
    if (h < ${s.nHead}u) {
      q[(t * ${s.nHead}u + h) * ${s.d}u + i0] = y0;
      q[(t * ${s.nHead}u + h) * ${s.d}u + i1] = y1;
    } else {
      let kv = h - ${s.nHead}u;
      ${cachePutWgsl(e, "kc", `(kv * ${s.ctx}u + pos) * ${s.d}u + i0`, "y0")}
      ${cachePutWgsl(e, "kc", `(kv * ${s.ctx}u + pos) * ${s.d}u + i1`, "y1")}
      ${
    s.kt
      ? `${cachePutWgsl(e, "kt", `(kv * ${s.d}u + i0) * ${s.ctx}u + pos`, "y0")} ${
        cachePutWgsl(e, "kt", `(kv * ${s.d}u + i1) * ${s.ctx}u + pos`, "y1")
      }`
      : ""
  }
    }
  }
  // Dimensions past ropeDims pass through.
  for (var i = ${s.ropeDims}u + lid; i < ${s.d}u; i += 64u) {
    {
      let x = qkv[src + h * ${s.d}u + i];
      if (h < ${s.nHead}u) {
        q[(t * ${s.nHead}u + h) * ${s.d}u + i] = x;
      } else {
        let kv = h - ${s.nHead}u;
        ${cachePutWgsl(e, "kc", `(kv * ${s.ctx}u + pos) * ${s.d}u + i`, "x")}
        ${s.kt ? cachePutWgsl(e, "kt", `(kv * ${s.d}u + i) * ${s.ctx}u + pos`, "x") : ""}
      }
    }
  }
  // The workgroups of the K heads also copy the V row of their KV head.
  if (h >= ${s.nHead}u) {
    let kv = h - ${s.nHead}u;
    for (var i = lid; i < ${s.d}u; i += 64u) {
      ${
    cachePutWgsl(
      e,
      "vc",
      `(kv * ${s.ctx}u + pos) * ${s.d}u + i`,
      `qkv[src + ${(s.nHead + s.nKv) * s.d}u + kv * ${s.d}u + i]`,
    )
  }
    }
    ${
    s.vsum
      ? `if (t == 0u) {
      for (var i = lid; i < ${s.d}u; i += 64u) {
        var a = vsum[kv * ${s.d}u + i];
        for (var u = 0u; u < step.nTok; u++) { a += ${
        cacheRoundWgsl(e, `qkv[u * ${s.qkvStride}u + ${(s.nHead + s.nKv) * s.d}u + kv * ${s.d}u + i]`)
      }; }
        vsum[kv * ${s.d}u + i] = a;
      }
    }`
      : ""
  }
  }
}`;
}

/**
 * WGSL adding the batch's V rows to the running V sum `[nKv][d]` (read back from the cache, so it
 * runs after the append). Bindings: 0 V cache, 1 vsum, 2 step.
 */
export function vsumWgsl(nKv: number, d: number, ctx: number, elem?: CacheElem): string {
  return `${cacheEnableWgsl(elem)}${stepWgsl(2)}
${cacheDeclWgsl(elem, 0, "vc", "scalar")}
@group(0) @binding(1) var<storage, read_write> vsum: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let e = gid.x;
  if (e >= ${nKv * d}u) { return; }
  let kv = e / ${d}u;
  let i = e % ${d}u;
  var s = vsum[e];
  for (var t = 0u; t < step.nTok; t++) { s += ${
    cacheLoad(elem, "vc", `(kv * ${ctx}u + step.pos0 + t) * ${d}u + i`, 1)
  }; }
  vsum[e] = s;
}`;
}

/**
 * WGSL of the argmax of logits row `nOut-1` (`n` entries): writes the index to `tokens[0]` (the
 * next step's input) and `result[0]`. Bindings: 0 logits, 1 tokens, 2 result, 3 step. One workgroup.
 */
export function argmaxWgsl(n: number): string {
  return `${stepWgsl(3)}
@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> tokens: array<u32>;
@group(0) @binding(2) var<storage, read_write> result: array<u32>;
var<workgroup> bv: array<f32, 256>;
var<workgroup> bi: array<u32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  let base = (step.nOut - 1u) * ${n}u;
  var best = -3.4e38;
  var bidx = 0u;
  for (var i = lid; i < ${n}u; i += 256u) {
    let v = logits[base + i];
    if (v > best) { best = v; bidx = i; }
  }
  bv[lid] = best; bi[lid] = bidx;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (lid < s) {
      let v = bv[lid + s]; let j = bi[lid + s];
      if (v > bv[lid] || (v == bv[lid] && j < bi[lid])) { bv[lid] = v; bi[lid] = j; }
    }
    workgroupBarrier();
  }
  if (lid == 0u) { tokens[0] = bi[0]; result[0] = bi[0]; }
}`;
}

/**
 * WGSL filling positions `[0, fillLen)` of K, V (and Kt) with uniform random values in [-1, 1)
 * from a counter hash (benchmarks: long contexts without a prefill). Bindings: 0 K, 1 V, 2 step,
 * 3 Kt (when `kt`). One thread per (kv, pos, i).
 */
export function fillWgsl(nKv: number, d: number, ctx: number, kt: boolean, elem?: CacheElem): string {
  return `${cacheEnableWgsl(elem)}${stepWgsl(2)}
${cacheDeclWgsl(elem, 0, "kc", "store")}
${cacheDeclWgsl(elem, 1, "vc", "store")}
${kt ? cacheDeclWgsl(elem, 3, "kt", "store") : ""}
fn hash(x: u32) -> u32 {
  var h = x * 747796405u + 2891336453u;
  h = ((h >> ((h >> 28u) + 4u)) ^ h) * 277803737u;
  return (h >> 22u) ^ h;
}
fn rnd(x: u32) -> f32 { return f32(hash(x) >> 8u) / 8388608.0 - 1.0; }
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let e = gid.x + gid.y * 65535u * 256u;
  if (e >= ${nKv}u * step.fillLen * ${d}u) { return; }
  let i = e % ${d}u;
  let pos = (e / ${d}u) % step.fillLen;
  let kv = e / (${d}u * step.fillLen);
  let o = (kv * ${ctx}u + pos) * ${d}u + i;
  let k = rnd(e * 2u + step.seed);
  ${cachePutWgsl(elem, "kc", "o", "k")}
  ${cachePutWgsl(elem, "vc", "o", "rnd(e * 2u + 1u + step.seed)")}
  ${kt ? cachePutWgsl(elem, "kt", `(kv * ${d}u + i) * ${ctx}u + pos`, "k") : ""}
}`;
}
