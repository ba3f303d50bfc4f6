/**
 * Attention kernels. Dense attention (decode and causal prefill) is split over chunks of positions
 * (flash-decoding): `partial` computes per (token, head, chunk) the running max m, the sum l of
 * exp(s - m) and Σ exp(s - m)·V, and `combine` merges the chunks. SparQ (sparq.md §2, GQA as §2.1)
 * adds four kernels before the same two, which then run over the selected positions only:
 * `topr` (i1 from |q| summed over the group, τ per head), `approx` (ŝ logits from r rows of Kt),
 * `stats` (softmax max/sum of ŝ per head) and `select` (group score Σ_h softmax(ŝ_h), local window
 * forced, exact top-kk by a 4-pass 8-bit radix select on the float bits).
 * @module
 */
import { f32Lit, reduceWgsl, stepWgsl } from "./common.ts";

/** Shape constants shared by the attention kernels. */
export interface AttnShape {
  nHead: number;
  nKv: number;
  d: number;
  ctx: number;
}

/** Most position chunks per query (size of the partial buffer; ≤ ATTN_WG, see combineWgsl). */
export const MAX_CHUNKS = 64;
/** Threads per attention workgroup. */
export const ATTN_WG = 128;
/** Positions scored per block of the partial kernel (4 threads per K row); chunks are multiples of it. */
export const ATTN_BLOCK = ATTN_WG / 4;

const NEG = "-3.0e38";

/**
 * WGSL of the chunked attention pass. Bindings: 0 q `[nTok][nHead][d]`, 1 K cache, 2 V cache, 3 step,
 * 4 partial `[nTok][nHead][MAX_CHUNKS][d+2]`, 5 selected positions `[nKv][ctx]` (when `indexed`).
 * Dispatch (nChunk, nHead, nTok). Dense: token t sees positions 0..pos0+t; indexed: the kk listed ones.
 * A chunk is walked in blocks of ATTN_BLOCK positions: 4 neighbouring threads dot one K row (so a
 * warp reads 8 rows in 64-byte runs); ATTN_BLOCK threads turn the block's scores into weights
 * exp(s − m) in workgroup memory; then every thread folds them into the running softmax and adds
 * the block's V rows for its dimensions, with the ATTN_BLOCK loads written out one by one (all in
 * flight, in registers). No tree reductions: four barriers per block.
 */
export function partialWgsl(s: AttnShape, indexed: boolean): string {
  const G = s.nHead / s.nKv, D = s.d, W = ATTN_WG, P = ATTN_BLOCK;
  const slots = Math.ceil(D / W);
  return `${stepWgsl(3)}
@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> kc: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> vc: array<f32>;
@group(0) @binding(4) var<storage, read_write> part: array<f32>;
${indexed ? "@group(0) @binding(5) var<storage, read> idx: array<u32>;" : ""}
var<workgroup> qs: array<vec4<f32>, ${D / 4}>;
var<workgroup> sp: array<f32, ${W}>;
var<workgroup> ss: array<f32, ${P}>;
var<workgroup> es: array<f32, ${P}>;
var<workgroup> pp: array<u32, ${P}>;
@compute @workgroup_size(${W})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = wg.x; let h = wg.y; let t = wg.z;
  let kv = h / ${G}u;
  let n = ${indexed ? "step.kk" : "step.pos0 + t + 1u"};
  let start = c * step.chunk;
  let end = min(start + step.chunk, n);
  let qb = (t * ${s.nHead}u + h) * ${D}u;
  for (var i = lid; i < ${D / 4}u; i += ${W}u) {
    qs[i] = vec4<f32>(q[qb + 4u * i], q[qb + 4u * i + 1u], q[qb + 4u * i + 2u], q[qb + 4u * i + 3u]);
  }
  workgroupBarrier();
  let r = lid % 4u;
  let vb = kv * ${s.ctx}u;
  var m = ${NEG};
  var l = 0.0;
  var acc: array<f32, ${slots}>;
  for (var b = start; b < end; b += ${P}u) {
    // Scores: position b + lid/4, a quarter of the row's vec4s per thread.
    let j = b + lid / 4u;
    var p = 0u;
    var a = 0.0;
    if (j < end) {
      p = ${indexed ? `idx[kv * ${s.ctx}u + j]` : "j"};
      let kb = (vb + p) * ${D / 4}u;
      for (var i = r; i < ${D / 4}u; i += 4u) { a += dot(qs[i], kc[kb + i]); }
    }
    sp[lid] = a;
    if (r == 0u) { pp[lid / 4u] = p; }
    workgroupBarrier();
    if (lid < ${P}u) {
      let sc = (sp[4u * lid] + sp[4u * lid + 1u] + sp[4u * lid + 2u] + sp[4u * lid + 3u]) * ${f32Lit(1 / Math.sqrt(D))};
      ss[lid] = select(${NEG}, sc, b + lid < end);
    }
    workgroupBarrier();
    var mb = ${NEG};
    for (var k = 0u; k < ${P}u; k++) { mb = max(mb, ss[k]); }
    let mNew = max(m, mb);
    if (lid < ${P}u) { es[lid] = exp(ss[lid] - mNew); }
    workgroupBarrier();
    let corr = exp(m - mNew);
    var el = 0.0;
    for (var k = 0u; k < ${P}u; k++) { el += es[k]; }
    l = l * corr + el;
    for (var u = 0u; u < ${slots}u; u++) {
      let dim = lid + ${W}u * u;
      if (dim < ${D}u) {
        // Positions past the end have weight 0 and read row pp = 0 (any valid row): no branch.
        ${[...Array(P).keys()].map((k) => `let v${k} = vc[(vb + pp[${k}u]) * ${D}u + dim];`).join("\n        ")}
        var y = 0.0;
        ${[...Array(P).keys()].map((k) => `y += es[${k}u] * v${k};`).join("\n        ")}
        acc[u] = acc[u] * corr + y;
      }
    }
    m = mNew;
    workgroupBarrier();
  }
  let o = ((t * ${s.nHead}u + h) * ${MAX_CHUNKS}u + c) * ${D + 2}u;
  if (lid == 0u) { part[o] = m; part[o + 1u] = l; }
  for (var u = 0u; u < ${slots}u; u++) {
    let dim = lid + ${W}u * u;
    if (dim < ${D}u) { part[o + 2u + dim] = acc[u]; }
  }
}`;
}

/**
 * WGSL merging the chunks into `out[t][h][:]`: thread c < nChunk turns chunk c's max into its
 * weight exp(m_c − M) (workgroup memory), then every thread sums its dimensions over the chunks.
 * With SparQ reallocation, also α = Σ_{i2} softmax(ŝ) and y = α·y + (1−α)·v̄. Bindings: 0 partial,
 * 1 out, 2 step; reallocation: 3 ŝ logits `[nHead][ctx]`, 4 stats `[nHead]` (max, sum), 5 selected
 * positions, 6 vsum `[nKv][d]`. Dispatch (nHead, nTok).
 */
export function combineWgsl(s: AttnShape, reallocate: boolean): string {
  const G = s.nHead / s.nKv, D = s.d, W = ATTN_WG;
  return `${stepWgsl(2)}
@group(0) @binding(0) var<storage, read> part: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${
    reallocate
      ? `@group(0) @binding(3) var<storage, read> slog: array<f32>;
@group(0) @binding(4) var<storage, read> stats: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read> idx: array<u32>;
@group(0) @binding(6) var<storage, read> vsum: array<f32>;`
      : ""
  }
${reduceWgsl(W)}
var<workgroup> cm: array<f32, ${MAX_CHUNKS}>;
var<workgroup> cw: array<f32, ${MAX_CHUNKS}>;
var<workgroup> cl: array<f32, ${MAX_CHUNKS}>;
@compute @workgroup_size(${W})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wg.x; let t = wg.y;
  let pb = (t * ${s.nHead}u + h) * ${MAX_CHUNKS}u;
  let nc = step.nChunk;
  if (lid < nc) { cm[lid] = part[(pb + lid) * ${D + 2}u]; }
  workgroupBarrier();
  var M = ${NEG};
  for (var c = 0u; c < nc; c++) { M = max(M, cm[c]); }
  if (lid < nc) {
    let w = exp(cm[lid] - M);
    cw[lid] = w;
    cl[lid] = part[(pb + lid) * ${D + 2}u + 1u] * w;
  }
  workgroupBarrier();
  var L = 0.0;
  for (var c = 0u; c < nc; c++) { L += cl[c]; }
  ${
    reallocate
      ? `let kv = h / ${G}u;
  let st = stats[h];
  var a = 0.0;
  for (var j = lid; j < step.kk; j += ${W}u) { a += exp(slog[h * ${s.ctx}u + idx[kv * ${s.ctx}u + j]] - st.x) / st.y; }
  let alpha = wgSum(lid, a);
  let S = f32(step.pos0 + 1u);`
      : ""
  }
  for (var dim = lid; dim < ${D}u; dim += ${W}u) {
    var y = 0.0;
    for (var c = 0u; c < nc; c++) { y += part[(pb + c) * ${D + 2}u + 2u + dim] * cw[c]; }
    y = y / L;
    ${reallocate ? `y = alpha * y + (1.0 - alpha) * (vsum[kv * ${D}u + dim] / S);` : ""}
    out[(t * ${s.nHead}u + h) * ${D}u + dim] = y;
  }
}`;
}

/**
 * WGSL of SparQ step 1a: per KV group, i1 = top-r of Σ_h |q_h| (ties to the lower index), the
 * gathered q components `qsel[h][j] = q_h[i1[j]]` and τ_h = sqrt(d·Σ_{i1}|q_h| / Σ|q_h|).
 * Bindings: 0 q, 1 i1 `[nKv][d]`, 2 step, 3 qsel `[nHead][d]`, 4 tau `[nHead]`. Dispatch (nKv); d ≤ 256.
 */
export function toprWgsl(s: AttnShape): string {
  const G = s.nHead / s.nKv, D = s.d;
  return `${stepWgsl(2)}
@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read_write> i1: array<u32>;
@group(0) @binding(3) var<storage, read_write> qsel: array<f32>;
@group(0) @binding(4) var<storage, read_write> tau: array<f32>;
${reduceWgsl(256)}
var<workgroup> a: array<f32, ${D}>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) i: u32) {
  let kv = wg.x;
  var v = 0.0;
  if (i < ${D}u) {
    for (var g = 0u; g < ${G}u; g++) { v += abs(q[(kv * ${G}u + g) * ${D}u + i]); }
    a[i] = v;
  }
  workgroupBarrier();
  var rk = ${D}u;
  if (i < ${D}u) {
    rk = 0u;
    for (var j = 0u; j < ${D}u; j++) {
      let o = a[j];
      if (o > v || (o == v && j < i)) { rk++; }
    }
    if (rk < step.r) { i1[kv * ${D}u + rk] = i; }
  }
  for (var g = 0u; g < ${G}u; g++) {
    let h = kv * ${G}u + g;
    var x = 0.0;
    if (i < ${D}u) { x = q[h * ${D}u + i]; }
    let tot = wgSum(i, abs(x));
    let sel = wgSum(i, select(0.0, abs(x), rk < step.r));
    if (rk < step.r) { qsel[h * ${D}u + rk] = x; }
    if (i == 0u) { tau[h] = select(sqrt(${D}.0), sqrt(${D}.0 * sel / tot), tot > 0.0); }
  }
}`;
}

/**
 * WGSL of SparQ step 1b: ŝ logits `slog[h][t] = Σ_j qsel[h][j]·Kt[i1[j]][t] / τ_h` for t < S, r
 * contiguous rows of Kt per KV head shared by its group. Bindings: 0 qsel, 1 Kt, 2 i1, 3 step,
 * 4 slog, 5 tau. Dispatch (ceil(S/64), nKv).
 */
export function approxWgsl(s: AttnShape): string {
  const G = s.nHead / s.nKv, D = s.d;
  return `${stepWgsl(3)}
@group(0) @binding(0) var<storage, read> qsel: array<f32>;
@group(0) @binding(1) var<storage, read> kt: array<f32>;
@group(0) @binding(2) var<storage, read> i1: array<u32>;
@group(0) @binding(4) var<storage, read_write> slog: array<f32>;
@group(0) @binding(5) var<storage, read> tau: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let kv = wg.y;
  let t = wg.x * 64u + lid;
  if (t > step.pos0) { return; }
  var acc: array<f32, ${G}>;
  for (var j = 0u; j < step.r; j++) {
    let k = kt[(kv * ${D}u + i1[kv * ${D}u + j]) * ${s.ctx}u + t];
    for (var g = 0u; g < ${G}u; g++) { acc[g] += qsel[(kv * ${G}u + g) * ${D}u + j] * k; }
  }
  for (var g = 0u; g < ${G}u; g++) {
    let h = kv * ${G}u + g;
    slog[h * ${s.ctx}u + t] = acc[g] / tau[h];
  }
}`;
}

/** WGSL of the softmax statistics (max, Σ exp) of ŝ per head. Bindings: 0 slog, 1 stats, 2 step. Dispatch (nHead). */
export function statsWgsl(s: AttnShape): string {
  return `${stepWgsl(2)}
@group(0) @binding(0) var<storage, read> slog: array<f32>;
@group(0) @binding(1) var<storage, read_write> stats: array<vec2<f32>>;
${reduceWgsl(256)}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wg.x;
  let n = step.pos0 + 1u;
  var m = ${NEG};
  for (var t = lid; t < n; t += 256u) { m = max(m, slog[h * ${s.ctx}u + t]); }
  m = wgMax(lid, m);
  var l = 0.0;
  for (var t = lid; t < n; t += 256u) { l += exp(slog[h * ${s.ctx}u + t] - m); }
  l = wgSum(lid, l);
  if (lid == 0u) { stats[h] = vec2<f32>(m, l); }
}`;
}

/**
 * WGSL of SparQ step 2a: group score g[t] = Σ_h softmax(ŝ_h)[t] with the current token and the
 * `localK` previous ones forced to the maximum, then the exact top-kk positions (unordered; ties
 * broken arbitrarily) by radix select on the float bits (g ≥ 0, so bit order is value order).
 * Bindings: 0 slog, 1 stats, 2 g scratch `[nKv][ctx]` u32, 3 step, 4 idx `[nKv][ctx]`. Dispatch (nKv).
 */
export function selectWgsl(s: AttnShape): string {
  const G = s.nHead / s.nKv;
  return `${stepWgsl(3)}
@group(0) @binding(0) var<storage, read> slog: array<f32>;
@group(0) @binding(1) var<storage, read> stats: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> gs: array<u32>;
@group(0) @binding(4) var<storage, read_write> idx: array<u32>;
var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> suf: array<u32, 256>;
var<workgroup> pick: vec2<u32>;
var<workgroup> cnt: array<atomic<u32>, 2>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let kv = wg.x;
  let S = step.pos0 + 1u;
  let base = kv * ${s.ctx}u;
  for (var t = lid; t < S; t += 256u) {
    var g = 0.0;
    for (var j = 0u; j < ${G}u; j++) {
      let h = kv * ${G}u + j;
      let st = stats[h];
      g += exp(slog[h * ${s.ctx}u + t] - st.x) / st.y;
    }
    if (t + step.localK + 1u >= S) { g = 3.0e38; }
    gs[base + t] = bitcast<u32>(g);
  }
  storageBarrier();
  workgroupBarrier();
  var prefix = 0u;
  var mask = 0u;
  var need = step.kk;
  for (var ps = 0u; ps < 4u; ps++) {
    let sh = 24u - 8u * ps;
    atomicStore(&hist[lid], 0u);
    workgroupBarrier();
    for (var t = lid; t < S; t += 256u) {
      let v = gs[base + t];
      if ((v & mask) == prefix) { atomicAdd(&hist[(v >> sh) & 255u], 1u); }
    }
    workgroupBarrier();
    suf[lid] = atomicLoad(&hist[lid]);
    workgroupBarrier();
    for (var o = 1u; o < 256u; o <<= 1u) {
      var add = 0u;
      if (lid + o < 256u) { add = suf[lid + o]; }
      workgroupBarrier();
      suf[lid] += add;
      workgroupBarrier();
    }
    var above = 0u;
    if (lid < 255u) { above = suf[lid + 1u]; }
    if (suf[lid] >= need && above < need) { pick = vec2<u32>(lid, above); }
    workgroupBarrier();
    let pk = pick;
    prefix |= pk.x << sh;
    mask |= 255u << sh;
    need -= pk.y;
    workgroupBarrier();
  }
  if (lid < 2u) { atomicStore(&cnt[lid], 0u); }
  workgroupBarrier();
  let greater = step.kk - need;
  for (var t = lid; t < S; t += 256u) {
    let v = gs[base + t];
    if (v > prefix) {
      idx[base + atomicAdd(&cnt[0], 1u)] = t;
    } else if (v == prefix) {
      let k = atomicAdd(&cnt[1], 1u);
      if (k < need) { idx[base + greater + k] = t; }
    }
  }
}`;
}
