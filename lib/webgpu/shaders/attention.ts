/**
 * Attention kernels. Dense attention (decode and causal prefill) is split over chunks of positions
 * (flash-decoding): `partial` computes per (token, head, chunk) the running max m, the sum l of
 * exp(s - m) and Σ exp(s - m)·V, and `combine` merges the chunks. SparQ runs its selection kernels
 * (shaders/sparq.ts) before the same two, which then run over the selected positions only.
 * @module
 */
import { f32Lit, range, stepWgsl } from "./common.ts";
import { cacheDeclWgsl, type CacheElem, cacheEnableWgsl, cacheFnsWgsl, cacheLoad } from "./kv_cache.ts";

/** Shape constants shared by the attention kernels. */
export interface AttnShape {
  nHead: number;
  nKv: number;
  d: number;
  ctx: number;
  /** KV-cache element storage (default f32; see kv_cache.ts). */
  elem?: CacheElem;
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
 * flight, in registers). No tree reductions: four barriers per block. Indexed (SparQ), and dense
 * unless `densePrefetch` is false (d ≤ 128 and a multiple of 16): the positions, K and V loads of a
 * block are all issued before its first barrier (see `prefetchBlock`).
 *
 * With `fuse` (SparQ decode, one token): the last workgroup of each head merges the chunks (see
 * `fusedCombine`); extra bindings 6 out `[nHead][d]`, 7 aux (α bits `[nHead]`, then done-counters
 * `[nHead]`), 8 vsum (with reallocation).
 */
export function partialWgsl(
  s: AttnShape,
  indexed: boolean,
  fuse?: { reallocate: boolean },
  densePrefetch = true,
): string {
  const G = s.nHead / s.nKv, D = s.d, W = ATTN_WG, P = ATTN_BLOCK;
  const slots = Math.ceil(D / W);
  const pre = (indexed || densePrefetch) && D <= W && D % 16 === 0;
  const pairs = pairedV(s, pre);
  // Fused: part is written (and read back by the last workgroup) through atomics, which go to the
  // device-coherent cache level.
  const put = (i: string, x: string) => fuse ? `atomicStore(&part[${i}], bitcast<u32>(${x}))` : `part[${i}] = ${x}`;
  return `${cacheEnableWgsl(s.elem)}${stepWgsl(3)}
@group(0) @binding(0) var<storage, read> q: array<f32>;
${cacheDeclWgsl(s.elem, 1, "kc", "vec4")}
${cacheDeclWgsl(s.elem, 2, "vc", pairs ? "vec2" : "scalar")}
@group(0) @binding(4) var<storage, read_write> part: array<${fuse ? "atomic<u32>" : "f32"}>;
${indexed ? "@group(0) @binding(5) var<storage, read> idx: array<u32>;" : ""}
${
    fuse
      ? `@group(0) @binding(6) var<storage, read_write> out: array<f32>;
@group(0) @binding(7) var<storage, read_write> aux: array<atomic<u32>>;
${fuse.reallocate ? `@group(0) @binding(8) var<storage, read> vsum: array<f32>;` : ""}
var<workgroup> lastWg: u32;
var<workgroup> cm: array<f32, ${MAX_CHUNKS}>;
var<workgroup> cw: array<f32, ${MAX_CHUNKS}>;
var<workgroup> cl: array<f32, ${MAX_CHUNKS}>;`
      : ""
  }
${cacheFnsWgsl(s.elem)}var<workgroup> qs: array<vec4<f32>, ${D / 4}>;
var<workgroup> sp: array<f32, ${W}>;
var<workgroup> ss: array<f32, ${P}>;
var<workgroup> es: array<f32, ${P}>;
var<workgroup> pp: array<u32, ${P}>;${pairs ? `\nvar<workgroup> hv: array<vec2<f32>, ${W}>;` : ""}
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
  ${pre ? "" : "workgroupBarrier();"}
  let r = lid % 4u;
  let vb = kv * ${s.ctx}u;
  var m = ${NEG};
  var l = 0.0;
  var acc: array<f32, ${slots}>;${pairs ? "\n  var acc2 = vec2<f32>(0.0);" : ""}
  for (var b = start; b < end; b += ${P}u) {
${pre ? prefetchBlock(s, indexed, pairs) : denseBlock(s, indexed)}
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
    ${
    pairs
      ? `{
      var y = vec2<f32>(0.0);
      ${range(P / pairs.groups).map((k) => `y += es[pg * ${P / pairs.groups}u + ${k}u] * v${k};`).join("\n      ")}
      acc2 = acc2 * corr + y;
    }`
      : pre
      ? `if (lid < ${D}u) {
      var y = 0.0;
      ${range(P).map((k) => `y += es[${k}u] * v${k};`).join("\n      ")}
      acc[0] = acc[0] * corr + y;
    }`
      : `for (var u = 0u; u < ${slots}u; u++) {
      let dim = lid + ${W}u * u;
      if (dim < ${D}u) {
        // Positions past the end have weight 0 and read row pp = 0 (any valid row): no branch.
        ${
        range(P).map((k) => `let v${k} = ${cacheLoad(s.elem, "vc", `(vb + pp[${k}u]) * ${D}u + dim`, 1)};`).join(
          "\n        ",
        )
      }
        var y = 0.0;
        ${range(P).map((k) => `y += es[${k}u] * v${k};`).join("\n        ")}
        acc[u] = acc[u] * corr + y;
      }
    }`
  }
    m = mNew;
    workgroupBarrier();
  }
  let o = ((t * ${s.nHead}u + h) * ${MAX_CHUNKS}u + c) * ${D + 2}u;
  if (lid == 0u) { ${put("o", "m")}; ${put("o + 1u", "l")}; }
  ${
    pairs
      ? `// The position groups' sums of each pair of dimensions meet in workgroup memory.
  hv[lid] = acc2;
  workgroupBarrier();
  if (lid < ${D / 2}u) {
    var y = hv[lid];
    for (var g = 1u; g < ${pairs.groups}u; g++) { y += hv[g * ${D / 2}u + lid]; }
    ${put("o + 2u + 2u * lid", "y.x")};
    ${put("o + 3u + 2u * lid", "y.y")};
  }`
      : `for (var u = 0u; u < ${slots}u; u++) {
    let dim = lid + ${W}u * u;
    if (dim < ${D}u) { ${put("o + 2u + dim", "acc[u]")}; }
  }`
  }
${fuse ? fusedCombine(s, fuse.reallocate) : ""}}`;
}

/** Scores of one block (dense or indexed): position b + lid/4, a quarter of the row's vec4s per thread. */
function denseBlock(s: AttnShape, indexed: boolean): string {
  const D = s.d;
  return `    let j = b + lid / 4u;
    var p = 0u;
    var a = 0.0;
    if (j < end) {
      p = ${indexed ? `idx[kv * ${s.ctx}u + j]` : "j"};
      let kb = (vb + p) * ${D / 4}u;
      for (var i = r; i < ${D / 4}u; i += 4u) { a += dot(qs[i], ${cacheLoad(s.elem, "kc", "kb + i", 4)}); }
    }
    sp[lid] = a;
    if (r == 0u) { pp[lid / 4u] = p; }`;
}

/**
 * With an f16 cache, the V rows of a block are read two dimensions per thread (one 4-byte load) for a group of its
 * positions: D/2 threads per group, W/(D/2) groups, whose sums meet at the end of the chunk. Undefined where the
 * shape does not divide so, or the cache is f32 (one dimension of every position per thread).
 */
function pairedV(s: AttnShape, pre: boolean): { groups: number } | undefined {
  const D = s.d, W = ATTN_WG, P = ATTN_BLOCK;
  if (!pre || (s.elem ?? "f32") === "f32" || W % (D / 2) !== 0 || P % (W / (D / 2)) !== 0) return undefined;
  return { groups: W / (D / 2) };
}

/**
 * Scores of one block of positions (listed when `indexed`) with every load issued up front (the
 * SparQ partial is latency-bound; dense decode waits one memory round trip per block instead of
 * two): each thread reads the block's positions itself (the same words across the workgroup), then
 * its quarter of a K row and its dimension of the block's V rows (past the end: the last row, with
 * weight 0; with `pairs`, two dimensions of a group of them), before the barrier that publishes q on
 * the first block.
 */
function prefetchBlock(s: AttnShape, indexed: boolean, pairs?: { groups: number }): string {
  const D = s.d, P = ATTN_BLOCK;
  const at = (j: string) => indexed ? `idx[ib + min(${j}, end - 1u)]` : `min(${j}, end - 1u)`;
  const vLoads = pairs
    ? `let dp = lid % ${D / 2}u;
    let pg = lid / ${D / 2}u;
    ${
      range(P / pairs.groups).map((k) =>
        `let v${k} = ${
          cacheLoad(s.elem, "vc", `(vb + ${at(`b + pg * ${P / pairs.groups}u + ${k}u`)}) * ${D / 2}u + dp`, 2)
        };`
      ).join("\n    ")
    }`
    : `let dim = min(lid, ${D - 1}u);
    ${
      range(P).map((k) => `let v${k} = ${cacheLoad(s.elem, "vc", `(vb + ${at(`b + ${k}u`)}) * ${D}u + dim`, 1)};`).join(
        "\n    ",
      )
    }`;
  return `    let ib = kv * ${s.ctx}u;
    let p = ${at("b + lid / 4u")};
    let kb = (vb + p) * ${D / 4}u + r;
    ${range(D / 16).map((i) => `let k${i} = ${cacheLoad(s.elem, "kc", `kb + ${4 * i}u`, 4)};`).join(" ")}
    ${vLoads}
    if (b == start) { workgroupBarrier(); }
    sp[lid] = ${range(D / 16).map((i) => `dot(qs[r + ${4 * i}u], k${i})`).join(" + ")};`;
}

/**
 * WGSL merging the `nc` chunks of one head (chunk k's record at `(pb + k)·(D + 2)`: max score, softmax sum, then
 * D weighted values; `load` reads one f32 of `part`): cw[k] = exp(max_k − M) and L = Σ sum_k·cw[k].
 */
function chunkWeightsWgsl(D: number, load: (i: string) => string): string {
  return `if (lid < nc) { cm[lid] = ${load(`(pb + lid) * ${D + 2}u`)}; }
  workgroupBarrier();
  var M = ${NEG};
  for (var k = 0u; k < nc; k++) { M = max(M, cm[k]); }
  if (lid < nc) {
    let w = exp(cm[lid] - M);
    cw[lid] = w;
    cl[lid] = ${load(`(pb + lid) * ${D + 2}u + 1u`)} * w;
  }
  workgroupBarrier();
  var L = 0.0;
  for (var k = 0u; k < nc; k++) { L += cl[k]; }`;
}

/**
 * WGSL tail of the fused SparQ partial kernel (one token): each workgroup counts itself done for
 * its head (aux[nHead + h], after a device-scope barrier that publishes its part), and the last
 * one merges the head's chunks as `combineWgsl` does, resets the counter, and writes out. aux holds
 * α (f32 bits, from the select kernel) in its first nHead words.
 */
function fusedCombine(s: AttnShape, reallocate: boolean): string {
  const G = s.nHead / s.nKv, D = s.d, W = ATTN_WG;
  const ld = (i: string) => `bitcast<f32>(atomicLoad(&part[${i}]))`;
  return `  storageBarrier();
  if (lid == 0u) { lastWg = select(0u, 1u, atomicAdd(&aux[${s.nHead}u + h], 1u) == step.nChunk - 1u); }
  if (workgroupUniformLoad(&lastWg) == 0u) { return; }
  storageBarrier();
  if (lid == 0u) { atomicStore(&aux[${s.nHead}u + h], 0u); }
  let pb = h * ${MAX_CHUNKS}u;
  let nc = step.nChunk;
  ${chunkWeightsWgsl(D, ld)}
  for (var dim = lid; dim < ${D}u; dim += ${W}u) {
    // Four independent sums: the loads of four chunks in flight at a time.
    var y0 = 0.0; var y1 = 0.0; var y2 = 0.0; var y3 = 0.0;
    var k = 0u;
    for (; k + 4u <= nc; k += 4u) {
      let e = (pb + k) * ${D + 2}u + 2u + dim;
      y0 += ${ld("e")} * cw[k];
      y1 += ${ld(`e + ${D + 2}u`)} * cw[k + 1u];
      y2 += ${ld(`e + ${2 * (D + 2)}u`)} * cw[k + 2u];
      y3 += ${ld(`e + ${3 * (D + 2)}u`)} * cw[k + 3u];
    }
    for (; k < nc; k++) { y0 += ${ld(`(pb + k) * ${D + 2}u + 2u + dim`)} * cw[k]; }
    var y = ((y0 + y1) + (y2 + y3)) / L;
    ${
    reallocate
      ? `let alpha = bitcast<f32>(atomicLoad(&aux[h]));
    y = alpha * y + (1.0 - alpha) * (vsum[(h / ${G}u) * ${D}u + dim] / f32(step.pos0 + 1u));`
      : ""
  }
    out[h * ${D}u + dim] = y;
  }
`;
}

/**
 * WGSL merging the chunks into `out[t][h][:]`: thread c < nChunk turns chunk c's max into its
 * weight exp(m_c − M) (workgroup memory), then every thread sums its dimensions over the chunks.
 * With SparQ reallocation, also y = α·y + (1−α)·v̄ (α from the select kernel). Bindings: 0 partial,
 * 1 out, 2 step; reallocation: 3 α `[nHead]`, 6 vsum `[nKv][d]`. Dispatch (nHead, nTok).
 */
export function combineWgsl(s: AttnShape, reallocate: boolean): string {
  const G = s.nHead / s.nKv, D = s.d, W = ATTN_WG;
  return `${stepWgsl(2)}
@group(0) @binding(0) var<storage, read> part: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${
    reallocate
      ? `@group(0) @binding(3) var<storage, read> alphas: array<f32>;
@group(0) @binding(6) var<storage, read> vsum: array<f32>;`
      : ""
  }
var<workgroup> cm: array<f32, ${MAX_CHUNKS}>;
var<workgroup> cw: array<f32, ${MAX_CHUNKS}>;
var<workgroup> cl: array<f32, ${MAX_CHUNKS}>;
@compute @workgroup_size(${W})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wg.x; let t = wg.y;
  let pb = (t * ${s.nHead}u + h) * ${MAX_CHUNKS}u;
  let nc = step.nChunk;
  ${chunkWeightsWgsl(D, (i) => `part[${i}]`)}
  ${
    reallocate
      ? `let kv = h / ${G}u;
  let alpha = alphas[h];
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

/** Query tokens per workgroup of {@link flashPrefillWgsl}. */
export const FLASH_BQ = 16;
/** Key positions per block of {@link flashPrefillWgsl}. */
export const FLASH_BK = 32;
/** Threads per workgroup of {@link flashPrefillWgsl}. */
const FLASH_WG = 128;

/**
 * Workgroup memory of {@link flashPrefillWgsl} for head dimension `d`, or undefined where the kernel
 * does not apply (its 128 threads take 4 dimensions of one or more tokens each: d = 32, 64, …, 512).
 */
export function flashPrefillBytes(d: number): number | undefined {
  const g = d / 4;
  if (!Number.isInteger(g) || g > FLASH_WG || FLASH_WG % g !== 0 || FLASH_WG / g > FLASH_BQ) return undefined;
  return (FLASH_BQ + FLASH_BK) * (g + 1) * 16 + FLASH_BQ * (FLASH_BK + 1) * 4 + FLASH_BQ * 4;
}

/**
 * WGSL of causal prompt attention tiled over query tokens (flash attention): a workgroup takes
 * FLASH_BQ tokens of one head and walks the positions they see in blocks of FLASH_BK, the block's
 * K rows and then its V rows in workgroup memory, so each row is read once per FLASH_BQ tokens
 * instead of once per token as in the chunked kernel ({@link partialWgsl} + `combine`); the output
 * is normalized in place. Bindings: 0 q `[nTok][nHead][d]`, 1 K cache, 2 V cache, 3 step, 4 out
 * `[nTok][nHead][d]`. Dispatch (⌈nTok / FLASH_BQ⌉, nHead, 1).
 * - scores: a thread dots tokens i, i + 8 with keys j, j + 16 (4 per thread); q and K rows are padded
 *   by one vec4, so the 8 threads of a 128-bit load phase read 8 rows in distinct banks;
 * - softmax: a thread per token over the block (running max and sum, as the chunked kernel), while
 *   the V rows load;
 * - P·V: a thread per 4 dimensions of `qt` tokens.
 * Float sums run in another order than the chunked kernel's: outputs agree to rounding.
 */
export function flashPrefillWgsl(s: AttnShape): string {
  const G = s.nHead / s.nKv, D = s.d, D4 = D / 4, R = D4 + 1, W = FLASH_WG, BQ = FLASH_BQ, BK = FLASH_BK;
  const qt = BQ / (W / D4);
  if (!Number.isInteger(qt) || qt < 1) throw new Error(`flashPrefillWgsl: head dimension ${D}`);
  const SR = BK + 1; // score row stride
  return `${cacheEnableWgsl(s.elem)}${stepWgsl(3)}
@group(0) @binding(0) var<storage, read> q: array<vec4<f32>>;
${cacheDeclWgsl(s.elem, 1, "kc", "vec4")}
${cacheDeclWgsl(s.elem, 2, "vc", "vec4")}
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;
${cacheFnsWgsl(s.elem)}var<workgroup> qs: array<vec4<f32>, ${BQ * R}>;
var<workgroup> kvs: array<vec4<f32>, ${BK * R}>; // the block's K rows, then its V rows
var<workgroup> sc: array<f32, ${BQ * SR}>; // scores, then weights, [token][key]
var<workgroup> rs: array<f32, ${BQ}>; // per token: the rescale of this block, at the end the sum
@compute @workgroup_size(${W})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t0 = wg.x * ${BQ}u;
  let h = wg.y;
  let kv = h / ${G}u;
  let nq = min(${BQ}u, step.nTok - t0);
  // Positions seen by the tile's last token, + 1.
  let kEnd = step.pos0 + t0 + nq;
  for (var i = lid; i < ${BQ * D4}u; i += ${W}u) {
    let t = min(t0 + i / ${D4}u, step.nTok - 1u);
    qs[(i / ${D4}u) * ${R}u + i % ${D4}u] = q[(t * ${s.nHead}u + h) * ${D4}u + i % ${D4}u];
  }
  let kj = lid % 16u;
  let ki = lid / 16u;
  var m = ${NEG};
  var l = 0.0;
  let dg = lid % ${D4}u;
  let tg = lid / ${D4}u;
  var acc: array<vec4<f32>, ${qt}>;
  for (var b = 0u; b < kEnd; b += ${BK}u) {
    for (var i = lid; i < ${BK * D4}u; i += ${W}u) {
      kvs[(i / ${D4}u) * ${R}u + i % ${D4}u] = ${
    cacheLoad(s.elem, "kc", `(kv * ${s.ctx}u + min(b + i / ${D4}u, ${s.ctx - 1}u)) * ${D4}u + i % ${D4}u`, 4)
  };
    }
    workgroupBarrier();
    var s00 = 0.0; var s01 = 0.0; var s10 = 0.0; var s11 = 0.0;
    for (var u = 0u; u < ${D4}u; u++) {
      let q0 = qs[ki * ${R}u + u];
      let q1 = qs[(ki + 8u) * ${R}u + u];
      let k0 = kvs[kj * ${R}u + u];
      let k1 = kvs[(kj + 16u) * ${R}u + u];
      s00 += dot(q0, k0); s01 += dot(q0, k1); s10 += dot(q1, k0); s11 += dot(q1, k1);
    }
    let sl = ${f32Lit(1 / Math.sqrt(D))};
    sc[ki * ${SR}u + kj] = s00 * sl;
    sc[ki * ${SR}u + kj + 16u] = s01 * sl;
    sc[(ki + 8u) * ${SR}u + kj] = s10 * sl;
    sc[(ki + 8u) * ${SR}u + kj + 16u] = s11 * sl;
    workgroupBarrier();
    for (var i = lid; i < ${BK * D4}u; i += ${W}u) {
      kvs[(i / ${D4}u) * ${R}u + i % ${D4}u] = ${
    cacheLoad(s.elem, "vc", `(kv * ${s.ctx}u + min(b + i / ${D4}u, ${s.ctx - 1}u)) * ${D4}u + i % ${D4}u`, 4)
  };
    }
    if (lid < ${BQ}u) {
      // Token lid sees positions ≤ its own.
      let last = step.pos0 + t0 + lid;
      var mb = m;
      for (var j = 0u; j < ${BK}u; j++) {
        if (b + j <= last) { mb = max(mb, sc[lid * ${SR}u + j]); }
      }
      let c = exp(m - mb);
      var el = 0.0;
      for (var j = 0u; j < ${BK}u; j++) {
        let p = select(0.0, exp(sc[lid * ${SR}u + j] - mb), b + j <= last);
        sc[lid * ${SR}u + j] = p;
        el += p;
      }
      l = l * c + el;
      m = mb;
      rs[lid] = c;
    }
    workgroupBarrier();
    ${range(qt).map((i) => `acc[${i}] *= rs[tg * ${qt}u + ${i}u];`).join("\n    ")}
    for (var j = 0u; j < ${BK}u; j++) {
      let v = kvs[j * ${R}u + dg];
      ${range(qt).map((i) => `acc[${i}] += sc[(tg * ${qt}u + ${i}u) * ${SR}u + j] * v;`).join("\n      ")}
    }
    workgroupBarrier();
  }
  if (lid < ${BQ}u) { rs[lid] = l; }
  workgroupBarrier();
  ${
    range(qt).map((i) =>
      `if (tg * ${qt}u + ${i}u < nq) { out[((t0 + tg * ${qt}u + ${i}u) * ${s.nHead}u + h) * ${D4}u + dg] = acc[${i}] / rs[tg * ${qt}u + ${i}u]; }`
    ).join("\n  ")
  }
}`;
}
