/**
 * SparQ selection kernels (sparq.md §2, GQA as §2.1), run before the indexed attention partial
 * kernel of shaders/attention.ts. Two dispatches per layer:
 * - `approx` (many workgroups per KV head): i1 = top-r of Σ_h |q_h| and τ_h, the approximate
 *   logits ŝ_h over one block of positions from r rows of Kt, and that block's softmax max/sum;
 * - `select` (one large workgroup per KV head): the softmax statistics of every head from the
 *   block ones, the score of each candidate position (ŝ itself when G = 1, Σ_h softmax(ŝ_h) when
 *   G > 1), the exact top-m by radix select held in registers (ties to the lower position, as the
 *   reference), the positions list and, with reallocation, α_h = Σ_{i2} softmax(ŝ_h).
 * @module
 */
import type { AttnShape } from "./attention.ts";
import { reduceWgsl, stepWgsl } from "./common.ts";

/** Threads per `approx` workgroup. */
export const APPROX_WG = 256;
/** Positions per `approx` workgroup (a few per thread: the top-r work is repeated per workgroup). */
export const APPROX_BLOCK = 2 * APPROX_WG;

const NEG = "-3.0e38";

/** Number of `approx` blocks for `n` positions (also the stride of the block statistics). */
export function approxBlocks(n: number): number {
  return Math.ceil(n / APPROX_BLOCK);
}

/**
 * WGSL of the approximate scores. Bindings: 0 q `[nHead][d]`, 1 Kt `[nKv][d][ctx]`, 2 step,
 * 3 ŝ logits `[nHead][ctx]`, 4 block statistics `[nHead][approxBlocks(ctx)]` (max, Σ exp(ŝ − max)).
 * Dispatch (approxBlocks(S), nKv). Every workgroup recomputes i1 and τ (d² comparisons in
 * workgroup memory: cheaper than a dispatch of its own).
 */
export function approxWgsl(s: AttnShape): string {
  const G = s.nHead / s.nKv, D = s.d, W = APPROX_WG, NB = approxBlocks(s.ctx);
  return `${stepWgsl(2)}
@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> kt: array<f32>;
@group(0) @binding(3) var<storage, read_write> slog: array<f32>;
@group(0) @binding(4) var<storage, read_write> bstat: array<vec2<f32>>;
${reduceWgsl(W)}
var<workgroup> aq: array<f32, ${D}>;
var<workgroup> rows: array<u32, ${D}>;
var<workgroup> qs: array<f32, ${G * D}>;
var<workgroup> tau: array<f32, ${G}>;
@compute @workgroup_size(${W})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let blk = wg.x; let kv = wg.y;
  let S = step.pos0 + 1u;
  let r = step.r;
  // i1: rank of each component of Σ_h |q_h| (ties to the lower index); rows[j] = start of Kt row i1[j].
  var v = 0.0;
  if (lid < ${D}u) {
    for (var g = 0u; g < ${G}u; g++) { v += abs(q[(kv * ${G}u + g) * ${D}u + lid]); }
    aq[lid] = v;
  }
  workgroupBarrier();
  var rk = ${D}u;
  if (lid < ${D}u) {
    rk = 0u;
    for (var j = 0u; j < ${D}u; j++) {
      let o = aq[j];
      if (o > v || (o == v && j < lid)) { rk++; }
    }
    if (rk < r) { rows[rk] = (kv * ${D}u + lid) * ${s.ctx}u; }
  }
  for (var g = 0u; g < ${G}u; g++) {
    var x = 0.0;
    if (lid < ${D}u) { x = q[(kv * ${G}u + g) * ${D}u + lid]; }
    let tot = wgSum(lid, abs(x));
    let sel = wgSum(lid, select(0.0, abs(x), rk < r));
    if (rk < r) { qs[g * ${D}u + rk] = x; }
    if (lid == 0u) { tau[g] = select(sqrt(${D}.0), sqrt(${D}.0 * sel / tot), tot > 0.0); }
  }
  workgroupBarrier();
  // ŝ for this block's positions, and each thread's running softmax max/sum per head.
  var m: array<f32, ${G}>;
  var l: array<f32, ${G}>;
  for (var g = 0u; g < ${G}u; g++) { m[g] = ${NEG}; }
  for (var p = 0u; p < ${APPROX_BLOCK / W}u; p++) {
    let t = blk * ${APPROX_BLOCK}u + p * ${W}u + lid;
    if (t < S) {
      // Explicit zeros: naga does not re-zero a var declared in a loop body.
      var acc = array<f32, ${G}>();
      var j = 0u;
      // Four Kt loads in flight per step.
      for (; j + 4u <= r; j += 4u) {
        let k0 = kt[rows[j] + t]; let k1 = kt[rows[j + 1u] + t];
        let k2 = kt[rows[j + 2u] + t]; let k3 = kt[rows[j + 3u] + t];
        for (var g = 0u; g < ${G}u; g++) {
          let o = g * ${D}u + j;
          acc[g] += (qs[o] * k0 + qs[o + 1u] * k1) + (qs[o + 2u] * k2 + qs[o + 3u] * k3);
        }
      }
      for (; j < r; j++) {
        let k0 = kt[rows[j] + t];
        for (var g = 0u; g < ${G}u; g++) { acc[g] += qs[g * ${D}u + j] * k0; }
      }
      for (var g = 0u; g < ${G}u; g++) {
        let sv = acc[g] / tau[g];
        slog[(kv * ${G}u + g) * ${s.ctx}u + t] = sv;
        let mn = max(m[g], sv);
        l[g] = l[g] * exp(m[g] - mn) + exp(sv - mn);
        m[g] = mn;
      }
    }
  }
  for (var g = 0u; g < ${G}u; g++) {
    let M = wgMax(lid, m[g]);
    let L = wgSum(lid, l[g] * exp(m[g] - M));
    if (lid == 0u) { bstat[(kv * ${G}u + g) * ${NB}u + blk] = vec2<f32>(M, L); }
  }
}`;
}

/**
 * WGSL of the selection. Bindings: 0 ŝ logits, 1 block statistics, 2 step, 3 selected positions
 * `[nKv][ctx]` (kk of them, unordered), 4 α `[nHead]` (with reallocation). Dispatch (nKv) of `wg`
 * threads (≥ 256). Candidates are the positions before the forced ones (current token + localK
 * previous); m = kk − forced of them are taken. Scores become order-preserving u32 keys (0 = not a
 * candidate), ctx/wg per thread in registers; a 4 × 8-bit radix select finds the m-th largest key
 * T, and when more positions tie at T than are needed, a second radix select on the inverted
 * positions finds the last position P taken: the set is {key > T} ∪ {key = T, t ≤ P} ∪ forced.
 */
export function selectWgsl(s: AttnShape, wg: number, reallocate: boolean): string {
  const G = s.nHead / s.nKv, W = wg, NPT = Math.ceil(s.ctx / W), NB = approxBlocks(s.ctx);
  if (W < 256) throw new Error(`selectWgsl: workgroup of ${W} < 256 threads`);
  return `${stepWgsl(2)}
@group(0) @binding(0) var<storage, read> slog: array<f32>;
@group(0) @binding(1) var<storage, read> bstat: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> idx: array<u32>;
${reallocate ? "@group(0) @binding(4) var<storage, read_write> alpha: array<f32>;" : ""}
${reduceWgsl(W)}
var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> suf: array<u32, 256>;
var<workgroup> pick: vec3<u32>;
var<workgroup> cnt: atomic<u32>;
var<workgroup> st: array<vec2<f32>, ${G}>;
// Order-preserving map of f32 to u32 (as the reference's f32Key); never 0 for a number.
fn fkey(x: f32) -> u32 {
  let u = bitcast<u32>(x);
  return select(u | 0x80000000u, ~u, (u >> 31u) == 1u);
}
// The need-th largest of the non-zero keys (need ≤ their count): (key T, how many equal to T to
// take, how many equal T). One byte per pass: histogram, suffix sums, the bin where need falls.
fn radix(keys: ptr<function, array<u32, ${NPT}>>, lid: u32, need0: u32) -> vec3<u32> {
  var prefix = 0u;
  var mask = 0u;
  var need = need0;
  var eq = 0u;
  for (var ps = 0u; ps < 4u; ps++) {
    let sh = 24u - 8u * ps;
    if (lid < 256u) { atomicStore(&hist[lid], 0u); }
    workgroupBarrier();
    for (var i = 0u; i < ${NPT}u; i++) {
      let v = (*keys)[i];
      if (v != 0u && (v & mask) == prefix) { atomicAdd(&hist[(v >> sh) & 255u], 1u); }
    }
    workgroupBarrier();
    if (lid < 256u) { suf[lid] = atomicLoad(&hist[lid]); }
    workgroupBarrier();
    for (var o = 1u; o < 256u; o <<= 1u) {
      var add = 0u;
      if (lid + o < 256u) { add = suf[lid + o]; }
      workgroupBarrier();
      if (lid < 256u) { suf[lid] += add; }
      workgroupBarrier();
    }
    if (lid < 256u) {
      var above = 0u;
      if (lid < 255u) { above = suf[lid + 1u]; }
      if (suf[lid] >= need && above < need) { pick = vec3<u32>(lid, above, suf[lid] - above); }
    }
    let pk = workgroupUniformLoad(&pick);
    prefix |= pk.x << sh;
    mask |= 255u << sh;
    need -= pk.y;
    eq = pk.z;
  }
  return vec3<u32>(prefix, need, eq);
}
@compute @workgroup_size(${W})
fn main(@builtin(workgroup_id) wgid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let kv = wgid.x;
  let S = step.pos0 + 1u;
  let forced = step.localK + 1u;
  let nCand = S - forced;
  let m = step.kk - forced;
  // Softmax max and 1/sum of ŝ per head, merged from the approx blocks (a block per thread).
  let nb = (S + ${APPROX_BLOCK - 1}u) / ${APPROX_BLOCK}u;
  for (var j = 0u; j < ${G}u; j++) {
    let b0 = (kv * ${G}u + j) * ${NB}u;
    var mt = ${NEG};
    var lt = 0.0;
    for (var b = lid; b < nb; b += ${W}u) {
      let x = bstat[b0 + b];
      let mn = max(mt, x.x);
      lt = lt * exp(mt - mn) + x.y * exp(x.x - mn);
      mt = mn;
    }
    let M = wgMax(lid, mt);
    let L = wgSum(lid, lt * exp(mt - M));
    if (lid == 0u) { st[j] = vec2<f32>(M, 1.0 / L); }
  }
  workgroupBarrier();
  var keys: array<u32, ${NPT}>;
  for (var i = 0u; i < ${NPT}u; i++) {
    let t = lid + i * ${W}u;
    if (t < nCand) {
      ${
    G === 1 ? `keys[i] = fkey(slog[kv * ${s.ctx}u + t]);` : `var g = 0.0;
      for (var j = 0u; j < ${G}u; j++) {
        let x = st[j];
        g += exp(slog[(kv * ${G}u + j) * ${s.ctx}u + t] - x.x) * x.y;
      }
      keys[i] = fkey(g);`
  }
    }
  }
  var T = 0u;
  var P = 0xffffffffu;
  if (m > 0u && m < nCand) {
    let r1 = radix(&keys, lid, m);
    T = r1.x;
    if (r1.z > r1.y) {
      // Ties at T: the r1.y lowest positions among them (largest inverted position).
      var inv: array<u32, ${NPT}>;
      for (var i = 0u; i < ${NPT}u; i++) { inv[i] = select(0u, ~(lid + i * ${W}u), keys[i] == T); }
      P = ~radix(&inv, lid, r1.y).x;
    }
  }
  if (lid == 0u) { atomicStore(&cnt, 0u); }
  workgroupBarrier();
  ${reallocate ? `var a: array<f32, ${G}>;` : ""}
  for (var i = 0u; i < ${NPT}u; i++) {
    let t = lid + i * ${W}u;
    let key = keys[i];
    if (t < S && (t >= nCand || (m > 0u && (key > T || (key == T && t <= P))))) {
      idx[kv * ${s.ctx}u + atomicAdd(&cnt, 1u)] = t;
      ${
    reallocate
      ? `for (var j = 0u; j < ${G}u; j++) {
        let x = st[j];
        a[j] += exp(slog[(kv * ${G}u + j) * ${s.ctx}u + t] - x.x) * x.y;
      }`
      : ""
  }
    }
  }
  ${
    reallocate
      ? `for (var j = 0u; j < ${G}u; j++) {
    let tot = wgSum(lid, a[j]);
    if (lid == 0u) { alpha[kv * ${G}u + j] = tot; }
  }`
      : ""
  }
}`;
}
