/**
 * SparQ selection kernels (sparq.md §2, GQA as §2.1), run before the indexed attention partial
 * kernel of shaders/attention.ts. Two dispatches per layer, or one:
 * - `approx` (many workgroups per KV head): i1 = top-r of Σ_h |q_h| and τ_h, the approximate
 *   logits ŝ_h over one block of positions from r rows of Kt, and that block's softmax max/sum;
 * - `select` (one large workgroup per KV head): the softmax statistics of every head from the
 *   block ones, the score of each candidate position (ŝ itself when G = 1, Σ_h softmax(ŝ_h) when
 *   G > 1), the exact top-m (a histogram over linear score bins, then a rank within the bin where
 *   the m-th falls, or a radix select; ties to the lower position, as the reference), the
 *   positions list and, with reallocation, α_h = Σ_{i2} softmax(ŝ_h);
 * - by default the select runs in the last `approx` workgroup of each KV head to finish (one
 *   dispatch), and when G = 1 and the context is short, `select` computes ŝ itself (`merged`): one
 *   dispatch too, and ŝ never leaves registers. These kernels are latency-bound (a few µs of
 *   memory traffic against ~6 µs per dispatch and ~1 µs per dependent memory round trip on an
 *   H200), so they issue their loads together and fold with few barriers.
 * @module
 */
import type { AttnShape } from "./attention.ts";
import { range, reduce2Wgsl, stepWgsl } from "./common.ts";
import { cacheDeclWgsl, cacheEnableWgsl, cacheLoad } from "./kv_cache.ts";

/** Threads per `approx` workgroup. */
export const APPROX_WG = 256;
/**
 * Positions per `approx` thread by default (a few: the top-r work is repeated per workgroup, and
 * enough that every workgroup of a long context runs in one wave; 4 on an H200, where 2 left the
 * 8192-position step in two).
 */
export const APPROX_PER_THREAD = 4;

const NEG = "-3.0e38";

/** Number of `approx` blocks for `n` positions (also the stride of the block statistics). */
export function approxBlocks(n: number, perThread = APPROX_PER_THREAD, wg = APPROX_WG): number {
  return Math.ceil(n / (wg * perThread));
}

/** Tuning of the select (A/B comparisons; the defaults are the fastest measured). */
export interface SelectTune {
  /** Threads of the approx workgroup (APPROX_WG by default; with the select in it, also the select's). */
  approxWg?: number;
  /**
   * The final pass marks a thread's taken positions in bit masks and reserves their slots of the
   * positions list with one atomic add (instead of one add per position on the same counter).
   */
  reserve?: boolean;
  /** The softmax statistics fold (max, sum) pairs in one pass (`wgMergeF`) instead of two. */
  oneFold?: boolean;
}

/**
 * WGSL of the approximate scores. Bindings: 0 q `[nHead][d]`, 1 Kt `[nKv][d][ctx]`, 2 step,
 * 3 ŝ logits `[nHead][ctx]`, 4 block statistics `[nHead][approxBlocks(ctx)]` (max, Σ exp(ŝ − max)).
 * Dispatch (approxBlocks(S), nKv). Every workgroup recomputes i1 and τ (d² comparisons in
 * workgroup memory: cheaper than a dispatch of its own). The kernel is latency-bound, so its
 * chain is kept short: the sums of τ and the block statistics fold in three barriers each (no
 * trees), and the Kt loads of all of a thread's positions for U components are issued together
 * (rows past r point at a valid row and have a zero q component).
 */
export function approxWgsl(
  s: AttnShape,
  perThread = APPROX_PER_THREAD,
  withSelect?: { reallocate: boolean; bins: boolean },
  tune: SelectTune = {},
): string {
  const W = tune.approxWg ?? APPROX_WG;
  const G = s.nHead / s.nKv, D = s.d, P = perThread, NB = approxBlocks(s.ctx, P, W);
  const merge = tune.oneFold ? "wgMergeF" : "wgMerge";
  const U = D % 16 === 0 && P <= 2 ? 16 : D % 8 === 0 ? 8 : 4;
  return `${cacheEnableWgsl(s.elem)}${stepWgsl(2)}
@group(0) @binding(0) var<storage, read> q: array<f32>;
${cacheDeclWgsl(s.elem, 1, "kt", "scalar")}
@group(0) @binding(3) var<storage, read_write> slog: array<f32>;
@group(0) @binding(4) var<storage, read_write> bstat: array<vec2<f32>>;
${reduce2Wgsl(W)}${
    withSelect
      ? `
@group(0) @binding(5) var<storage, read_write> idx: array<u32>;
@group(0) @binding(6) var<storage, read_write> aux: array<atomic<u32>>;
var<workgroup> lastWg: u32;
${selectWgsl(s, W, withSelect.reallocate, withSelect.bins, P, false, true, tune)}`
      : ""
  }
var<workgroup> aq: array<vec4<f32>, ${D / 4}>;
var<workgroup> rows: array<u32, ${D}>;
var<workgroup> qs: array<f32, ${G * D}>;
@compute @workgroup_size(${W})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let blk = wg.x; let kv = wg.y;
  let S = step.pos0 + 1u;
  let r = step.r;
  // i1: rank of each component of Σ_h |q_h| (ties to the lower index); rows[rank] = start of Kt row.
  var xs: array<f32, ${G}>;
  var v = 0.0;
  if (lid < ${D}u) {
    for (var g = 0u; g < ${G}u; g++) {
      xs[g] = q[(kv * ${G}u + g) * ${D}u + lid];
      v += abs(xs[g]);
    }
    aq[lid / 4u][lid % 4u] = v;
  }
  ${topRRankWgsl(D, s.ctx)}
  var tau: array<f32, ${G}>;
  for (var g = 0u; g < ${G}u; g++) {
    let x = xs[g];
    if (lid < ${D}u) { qs[g * ${D}u + rk] = select(0.0, x, rk < r); }
    let ts = wgSum2(lid, vec2<f32>(abs(x), select(0.0, abs(x), rk < r)));
    tau[g] = select(sqrt(${D}.0), sqrt(${D}.0 * ts.y / ts.x), ts.x > 0.0);
  }
  // (wgSum2 ends with a barrier: rows and qs are complete.)
  let base = blk * ${W * P}u + lid;
  ${range(P).map((p) => `let t${p} = min(base + ${p * W}u, S - 1u);`).join("\n  ")}
  var acc = array<f32, ${P * G}>();
  for (var j = 0u; j < r; j += ${U}u) {
    ${range(U).map((u) => `let w${u} = rows[j + ${u}u];`).join("\n    ")}
    ${
    range(P).map((p) =>
      range(U).map((u) => `let k${p}_${u} = ${cacheLoad(s.elem, "kt", `w${u} + t${p}`, 1)};`).join(" ")
    )
      .join("\n    ")
  }
    for (var g = 0u; g < ${G}u; g++) {
      let o = g * ${D}u + j;
      ${range(U).map((u) => `let q${u} = qs[o + ${u}u];`).join(" ")}
      ${
    range(P).map((p) =>
      `acc[${p * G}u + g] += ${
        range(U / 4).map((h) =>
          `((q${4 * h} * k${p}_${4 * h} + q${4 * h + 1} * k${p}_${4 * h + 1}) + (q${4 * h + 2} * k${p}_${
            4 * h + 2
          } + q${4 * h + 3} * k${p}_${4 * h + 3}))`
        ).join(" + ")
      };`
    ).join("\n      ")
  }
    }
  }
  // ŝ of this block's positions, and each thread's softmax max/sum per head.
  var ml: array<vec2<f32>, ${G}>;
  for (var g = 0u; g < ${G}u; g++) { ml[g] = vec2<f32>(${NEG}, 0.0); }
  for (var p = 0u; p < ${P}u; p++) {
    let t = base + p * ${W}u;
    if (t < S) {
      for (var g = 0u; g < ${G}u; g++) {
        let sv = acc[p * ${G}u + g] / tau[g];
        slog[(kv * ${G}u + g) * ${s.ctx}u + t] = sv;
        ml[g] = mergeMl(ml[g], vec2<f32>(sv, 1.0));
      }
    }
  }
  for (var g = 0u; g < ${G}u; g++) {
    let b = ${merge}(lid, ml[g]);
    if (lid == 0u) { bstat[(kv * ${G}u + g) * ${NB}u + blk] = b; }
  }${
    withSelect
      ? `
  // The last block of this KV head to finish selects (its counter after the α words and the
  // partial kernel's counters, reset for the next step).
  storageBarrier();
  if (lid == 0u) {
    lastWg = select(0u, 1u, atomicAdd(&aux[${2 * s.nHead}u + kv], 1u) == (S + ${W * P - 1}u) / ${W * P}u - 1u);
  }
  if (workgroupUniformLoad(&lastWg) == 0u) { return; }
  storageBarrier();
  if (lid == 0u) { atomicStore(&aux[${2 * s.nHead}u + kv], 0u); }
  selectHead(kv, lid);`
      : ""
  }
}`;
}

/** Bins of the first pass of the SparQ select (linear in the score between its min and max). */
export const SELECT_BINS = 256;

/**
 * WGSL of the selection. Bindings: 0 ŝ logits, 1 block statistics, 2 step, 3 selected positions
 * `[nKv][ctx]` (kk of them, unordered), 4 α `[nHead]` (with reallocation). Dispatch (nKv) of `wg`
 * threads (≥ 256). Candidates are the positions before the forced ones (current token + localK
 * previous); m = kk − forced of them are taken. Each thread holds ctx/wg scores as order-preserving
 * u32 keys in registers (loops over them are written out, and all their loads are issued before
 * any is used: the kernel is latency-bound). The softmax statistics of every head are merged from
 * the approx blocks in one fold (a block per thread).
 *
 * With `bins` (default): one histogram of SELECT_BINS bins linear between the smallest and largest
 * candidate score (G = 1: in the logit itself; G > 1: in the key, as the scores are skewed sums of
 * probabilities); both maps are monotone, so every key above the bin B where the m-th largest
 * falls is taken. B is taken whole when it holds exactly what is missing; otherwise its keys are
 * copied to workgroup memory and each ranks itself against the others (key, then lower position
 * first, as the reference), when there are at most `wg` of them. Else (many ties, or very skewed
 * scores), and without `bins`: a 4 × 8-bit radix select finds the m-th largest key T, and when
 * more positions tie at T than are needed, a second radix select on the inverted positions finds
 * the last position P taken: the set is {key > T} ∪ {key = T, t ≤ P} ∪ forced.
 *
 * `merged` (G = 1): ŝ computed here (see `mergedScores`; bindings 0 q, 1 Kt instead of ŝ and the
 * block statistics). `inApprox`: only the declarations and `fn selectHead(kv, lid)`, which the
 * approx kernel's last workgroup of a KV head calls (α written as bits into its aux buffer).
 */
export function selectWgsl(
  s: AttnShape,
  wg: number,
  reallocate: boolean,
  bins = true,
  approxPerThread = APPROX_PER_THREAD,
  merged = false,
  inApprox = false,
  tune: SelectTune = {},
): string {
  const G = s.nHead / s.nKv, W = wg, NPT = Math.ceil(s.ctx / W), HB = SELECT_BINS;
  const AW = tune.approxWg ?? APPROX_WG;
  const AB = AW * approxPerThread, NB = approxBlocks(s.ctx, approxPerThread, AW);
  if (W < 256) throw new Error(`selectWgsl: workgroup of ${W} < 256 threads`);
  if (merged && (G !== 1 || s.d > W || s.d % 4 !== 0)) throw new Error("selectWgsl: merged needs G = 1 and d ≤ wg");
  /** `body(i)` for every key slot i, written out (constant indices keep the keys in registers). */
  const each = (body: (i: number) => string, sep = "\n    ") => range(NPT).map(body).join(sep);
  const pos = (i: number) => `(lid + ${i * W}u)`;
  /**
   * Radix select of the need-th largest of the candidates' values into (T, taken at T, equal to T):
   * the keys, or with `tie`, the inverted positions of the keys equal to tieT.
   */
  const radix = (out: string, need0: string, tie?: string) =>
    `{
      var prefix = 0u;
      var mask = 0u;
      var need = ${need0};
      var eq = 0u;
      for (var ps = 0u; ps < 4u; ps++) {
        let sh = 24u - 8u * ps;
        if (lid < 256u) { atomicStore(&hist[lid], 0u); }
        workgroupBarrier();
        ${
      each((i) => {
        const val = tie ? `select(0u, ~${pos(i)}, keys[${i}] == ${tie})` : `keys[${i}]`;
        return `{
          let v = ${val};
          if (${pos(i)} < nCand && (v & mask) == prefix${
          tie ? " && v != 0u" : ""
        }) { atomicAdd(&hist[(v >> sh) & 255u], 1u); }
        }`;
      }, "\n        ")
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
      ${out} = vec3<u32>(prefix, need, eq);
    }`;
  // Whether key slot i is taken: forced, or a candidate above the threshold (bin B, or key T and position P).
  const takeOf = (i: number) => `takeKey(${pos(i)}, keys[${i}], S, nCand, m, useBins, whole, B, b0, bs, T, P)`;
  // α contribution of the taken key slot i (G = 1: the key is ŝ itself).
  const alphaAdd = (key: string, t: string) =>
    G === 1 ? `a[0] += exp(fval(${key}) - st[0].x) * st[0].y;` : `for (var j = 0u; j < ${G}u; j++) {
          a[j] += exp(slog[(kv * ${G}u + j) * ${s.ctx}u + ${t}] - st[j].x) * st[j].y;
        }`;
  const head = inApprox ? "" : `${merged ? cacheEnableWgsl(s.elem) : ""}${stepWgsl(2)}
${
    merged
      ? `@group(0) @binding(0) var<storage, read> q: array<f32>;
${cacheDeclWgsl(s.elem, 1, "kt", "scalar")}
var<workgroup> aq: array<vec4<f32>, ${s.d / 4}>;
var<workgroup> rows: array<u32, ${s.d}>;
var<workgroup> qs: array<f32, ${s.d}>;`
      : `@group(0) @binding(0) var<storage, read> slog: array<f32>;
@group(0) @binding(1) var<storage, read> bstat: array<vec2<f32>>;`
  }
@group(0) @binding(3) var<storage, read_write> idx: array<u32>;
${reallocate ? "@group(0) @binding(4) var<storage, read_write> alpha: array<f32>;" : ""}
${reduce2Wgsl(W)}`;
  return `${head}
var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> suf: array<u32, 256>;
var<workgroup> pick: vec3<u32>;
var<workgroup> gpick: vec2<u32>;
var<workgroup> gs: array<u32, 16>;
var<workgroup> cnt: atomic<u32>;
var<workgroup> nin: atomic<u32>;
var<workgroup> kmin: atomic<u32>;
var<workgroup> kmax: atomic<u32>;
var<workgroup> ck: array<u32, ${W}>;
var<workgroup> cp: array<u32, ${W}>;
// Order-preserving map of f32 to u32 (as the reference's f32Key); never 0 for a number.
fn fkey(x: f32) -> u32 {
  let u = bitcast<u32>(x);
  return select(u | 0x80000000u, ~u, (u >> 31u) == 1u);
}
// Inverse of fkey.
fn fval(k: u32) -> f32 {
  return bitcast<f32>(select(~k, k & 0x7fffffffu, (k >> 31u) == 1u));
}
// Whether position t with this key is taken (forced, or a candidate above the threshold).
fn takeKey(t: u32, key: u32, S: u32, nCand: u32, m: u32, useBins: bool, whole: bool, B: u32, b0: u32, bs: u32,
           T: u32, P: u32) -> bool {
  if (t < nCand && m > 0u) {
    if (useBins) {
      let b = binOf(key, b0, bs);
      return b > B || (whole && b == B);
    }
    return key > T || (key == T && t <= P);
  }
  return t < S && t >= nCand;
}
// First-pass bin of a candidate key (monotone in the key); b0/bs from the candidates' range.
fn binOf(key: u32, b0: u32, bs: u32) -> u32 {
  ${
    G === 1
      ? `let x = (fval(key) - bitcast<f32>(b0)) * bitcast<f32>(bs);
  return min(u32(max(x, 0.0)), ${HB - 1}u);`
      : `return (key - b0) / bs;`
  }
}
${
    inApprox ? "fn selectHead(kv: u32, lid: u32) {" : `@compute @workgroup_size(${W})
fn main(@builtin(workgroup_id) wgid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let kv = wgid.x;`
  }
  let S = step.pos0 + 1u;
  let forced = step.localK + 1u;
  let nCand = S - forced;
  let m = step.kk - forced;
  if (lid == 0u) {
    atomicStore(&cnt, 0u);
    atomicStore(&nin, 0u);
    atomicStore(&kmin, 0xffffffffu);
    atomicStore(&kmax, 0u);
  }
  if (lid < 256u) { atomicStore(&hist[lid], 0u); }
  ${
    merged ? mergedScores(s, W, NPT) : `  // The ŝ of this thread's positions (t < S), all loads in flight.
  ${
      each((i) =>
        range(G).map((j) =>
          `let s${i}_${j} = slog[${(j * s.ctx)}u + (kv * ${G}u) * ${s.ctx}u + min(${pos(i)}, S - 1u)];`
        )
          .join(" ")
      )
    }
  // Softmax max and 1/sum of ŝ per head, merged from the approx blocks (a block per thread).
  let nb = (S + ${AB - 1}u) / ${AB}u;
  var bx: array<vec2<f32>, ${G}>;
  for (var j = 0u; j < ${G}u; j++) { bx[j] = vec2<f32>(${NEG}, 0.0); }
  for (var b = lid; b < nb; b += ${W}u) {
    for (var j = 0u; j < ${G}u; j++) { bx[j] = mergeMl(bx[j], bstat[(kv * ${G}u + j) * ${NB}u + b]); }
  }
  var st: array<vec2<f32>, ${G}>;
  for (var j = 0u; j < ${G}u; j++) {
    let x = ${tune.oneFold ? "wgMergeF" : "wgMerge"}(lid, bx[j]);
    st[j] = vec2<f32>(x.x, 1.0 / x.y);
  }
`
  }
  // Keys (0 past S): ŝ itself when G = 1, Σ_h softmax(ŝ_h) when G > 1.
  var keys: array<u32, ${NPT}>;
  var lo = 0xffffffffu;
  var hi = 0u;
  ${
    each((i) =>
      `keys[${i}] = select(0u, fkey(${
        G === 1 ? `s${i}_0` : range(G).map((j) => `exp(s${i}_${j} - st[${j}].x) * st[${j}].y`).join(" + ")
      }), ${pos(i)} < S);
    if (${pos(i)} < nCand) { lo = min(lo, keys[${i}]); hi = max(hi, keys[${i}]); }`
    )
  }
  ${reallocate ? `var a: array<f32, ${G}>;` : ""}
  var T = 0u;
  var P = 0xffffffffu;
  var useBins = false;
  var whole = false;
  var B = 0u;
  var b0 = 0u;
  var bs = 1u;
  ${
    bins && !merged
      ? `if (m > 0u && m < nCand) {
    atomicMin(&kmin, lo);
    atomicMax(&kmax, hi);
  }`
      : ""
  }
  workgroupBarrier();
  if (m > 0u && m < nCand) {
    ${
    bins
      ? `let k0 = ${merged ? "fkey(vlo)" : "atomicLoad(&kmin)"};
    let k1 = ${merged ? "fkey(M)" : "atomicLoad(&kmax)"};
    ${
        G === 1
          ? `let v0 = fval(k0);
    let w = fval(k1) - v0;
    b0 = bitcast<u32>(v0);
    bs = bitcast<u32>(select(0.0, ${HB}.0 / w, w > 1.0e-30));`
          : `b0 = k0;
    bs = (k1 - k0) / ${HB}u + 1u;`
      }
    ${each((i) => `if (${pos(i)} < nCand) { atomicAdd(&hist[binOf(keys[${i}], b0, bs)], 1u); }`)}
    workgroupBarrier();
    // The bin where the m-th largest falls: first its group of 16 bins, then the bin.
    if (lid < 16u) {
      var c = 0u;
      for (var b = 0u; b < 16u; b++) { c += atomicLoad(&hist[16u * lid + b]); }
      gs[lid] = c;
    }
    workgroupBarrier();
    if (lid < 16u) {
      var above = 0u;
      for (var g = lid + 1u; g < 16u; g++) { above += gs[g]; }
      if (above < m && above + gs[lid] >= m) { gpick = vec2<u32>(lid, above); }
    }
    let pg = workgroupUniformLoad(&gpick);
    if (lid < 16u) {
      let b = 16u * pg.x + lid;
      var above = pg.y;
      for (var c = b + 1u; c < 16u * pg.x + 16u; c++) { above += atomicLoad(&hist[c]); }
      let h = atomicLoad(&hist[b]);
      if (above < m && above + h >= m) { pick = vec3<u32>(b, m - above, h); }
    }
    let pk = workgroupUniformLoad(&pick);
    B = pk.x;
    if (pk.y == pk.z) {
      useBins = true;
      whole = true;
    } else if (pk.z <= ${W}u) {
      useBins = true;
      // The bin's keys ranked among themselves; the pk.y first are taken.
      ${
        each(
          (i) =>
            `if (${pos(i)} < nCand && binOf(keys[${i}], b0, bs) == B) {
        let sl = atomicAdd(&nin, 1u);
        ck[sl] = keys[${i}];
        cp[sl] = ${pos(i)};
      }`,
          "\n      ",
        )
      }
      workgroupBarrier();
      if (lid < pk.z) {
        let mk = ck[lid];
        let mp = cp[lid];
        var rank = 0u;
        for (var j = 0u; j < pk.z; j++) {
          let o = ck[j];
          rank += select(0u, 1u, o > mk || (o == mk && cp[j] < mp));
        }
        if (rank < pk.y) {
          idx[kv * ${s.ctx}u + atomicAdd(&cnt, 1u)] = mp;
          ${reallocate ? alphaAdd("mk", "mp") : ""}
        }
      }
    } else {`
      : "{"
  }
      var r1: vec3<u32>;
      ${radix("r1", "m")}
      T = r1.x;
      if (r1.z > r1.y) {
        // Ties at T: the r1.y lowest positions among them (largest inverted position).
        var r2: vec3<u32>;
        ${radix("r2", "r1.y", "T")}
        P = ~r2.x;
      }
    }
  }
  ${
    tune.reserve
      ? `// Taken slots as bits (constant indices: registers), then one reservation in the list.
  var tk = array<u32, ${Math.ceil(NPT / 32)}>();
  var nt = 0u;
  ${each((i) => `if (${takeOf(i)}) { tk[${i >> 5}] |= ${(1 << (i & 31)) >>> 0}u; nt++; }`)}
  var o = kv * ${s.ctx}u + atomicAdd(&cnt, nt);
  ${
        each((i) =>
          `if ((tk[${i >> 5}] & ${(1 << (i & 31)) >>> 0}u) != 0u) {
    let t = ${pos(i)};
    let key = keys[${i}];
    idx[o] = t;
    o++;
    ${reallocate ? alphaAdd("key", "t") : ""}
  }`
        )
      }`
      : each(
        (i) =>
          `if (${takeOf(i)}) {
    let t = ${pos(i)};
    let key = keys[${i}];
    idx[kv * ${s.ctx}u + atomicAdd(&cnt, 1u)] = t;
    ${reallocate ? alphaAdd("key", "t") : ""}
  }`,
        "\n  ",
      )
  }
  ${
    reallocate
      ? `for (var j = 0u; j < ${G}u; j++) {
    let x = wgSum2(lid, vec2<f32>(a[j], 0.0));
    if (lid == 0u) { ${
        inApprox ? `atomicStore(&aux[kv * ${G}u + j], bitcast<u32>(x.x))` : `alpha[kv * ${G}u + j] = x.x`
      }; }
  }`
      : ""
  }
}`;
}

/**
 * WGSL for top-r by rank: after each thread `lid < d` has written its |q| sum `v` into `aq` (vec4 words), the
 * barrier, then `rk` = the number of components ranked above it (larger, or equal at a lower index: the
 * reference's tie rule) and `rows[rk]` = the start of its Kt row when rk < r (else a valid row, for loads that
 * are multiplied by a zero coefficient). Threads `lid ≥ d` keep rk = d. Needs `r`, `kv`, `lid`, `aq`, `rows`.
 */
function topRRankWgsl(D: number, ctx: number): string {
  return `workgroupBarrier();
  var rk = ${D}u;
  if (lid < ${D}u) {
    rk = 0u;
    for (var j = 0u; j < ${D / 4}u; j++) {
      let o = aq[j];
      let b = 4u * j;
      rk += select(0u, 1u, o.x > v || (o.x == v && b < lid)) + select(0u, 1u, o.y > v || (o.y == v && b + 1u < lid)) +
        select(0u, 1u, o.z > v || (o.z == v && b + 2u < lid)) + select(0u, 1u, o.w > v || (o.w == v && b + 3u < lid));
    }
    rows[rk] = select(kv * ${D * ctx}u, (kv * ${D}u + lid) * ${ctx}u, rk < r);
  }`;
}

/**
 * The approx kernel's work inside the select kernel (G = 1): i1 and τ, then ŝ of each thread's
 * positions t = lid + i·wg (as s{i}_0), r/4 rounds of 4 Kt rows with every position's loads in
 * flight, and the softmax statistics st[0] from two folds (max, then the sums).
 */
function mergedScores(s: AttnShape, W: number, NPT: number): string {
  const D = s.d;
  const kt = (i: string) => cacheLoad(s.elem, "kt", i, 1);
  const pos = (i: number) => `(lid + ${i * W}u)`;
  return `let r = step.r;
  var v = 0.0;
  var x = 0.0;
  if (lid < ${D}u) {
    x = q[kv * ${D}u + lid];
    v = abs(x);
    aq[lid / 4u][lid % 4u] = v;
  }
  ${topRRankWgsl(D, s.ctx)}
  if (lid < ${D}u) { qs[rk] = select(0.0, x, rk < r); }
  let ts = wgSum2(lid, vec2<f32>(v, select(0.0, v, rk < r)));
  let tau = select(sqrt(${D}.0), sqrt(${D}.0 * ts.y / ts.x), ts.x > 0.0);
  ${range(NPT).map((i) => `let t${i} = min(${pos(i)}, S - 1u);`).join(" ")}
  var acc = array<f32, ${NPT}>();
  for (var j = 0u; j < r; j += 4u) {
    let w0 = rows[j]; let w1 = rows[j + 1u]; let w2 = rows[j + 2u]; let w3 = rows[j + 3u];
    let q0 = qs[j]; let q1 = qs[j + 1u]; let q2 = qs[j + 2u]; let q3 = qs[j + 3u];
    ${
    range(NPT).map((i) =>
      `acc[${i}] += (q0 * ${kt(`w0 + t${i}`)} + q1 * ${kt(`w1 + t${i}`)}) + (q2 * ${kt(`w2 + t${i}`)} + q3 * ${
        kt(`w3 + t${i}`)
      });`
    ).join("\n    ")
  }
  }
  ${range(NPT).map((i) => `let s${i}_0 = acc[${i}] / tau;`).join(" ")}
  // The max of ŝ (for the statistics, and as the top of the bins) and the least candidate ŝ, in one fold.
  var mx = ${NEG};
  var mn = 3.0e38;
  ${
    range(NPT).map((i) =>
      `if (${pos(i)} < S) { mx = max(mx, s${i}_0); } if (${pos(i)} < nCand) { mn = min(mn, s${i}_0); }`
    ).join("\n  ")
  }
  let mm = wgMax2(lid, vec2<f32>(mx, -mn));
  let M = mm.x;
  let vlo = -mm.y;
  var el = 0.0;
  ${range(NPT).map((i) => `if (${pos(i)} < S) { el += exp(s${i}_0 - M); }`).join("\n  ")}
  var st: array<vec2<f32>, 1>;
  st[0] = vec2<f32>(M, 1.0 / wgSum1(lid, el));
`;
}
