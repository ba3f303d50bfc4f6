/**
 * WGSL of the token sampler on the GPU: the chain of lib/sampler.ts (repetition penalty → top-k →
 * top-p → min-p → temperature → draw) in one workgroup, so that a decode step's sampled token feeds
 * the next step without a readback. The draw in [0, 1) comes from the CPU's seeded RNG through the
 * uniform, so the choices are the CPU sampler's up to f32 rounding (it sums in f64).
 *
 * Top-k by radix select on a 64-bit key (the logit's order-preserving bits, then the inverted
 * index: ties go to the lower id, as on the CPU), 8 bits per pass over the vocabulary, stopping as
 * soon as a bin holds exactly the candidates still needed (usually after 1–4 passes); the k
 * candidates are then sorted in workgroup memory (bitonic) and the rest of the chain runs on them.
 * k is capped at {@link SAMPLE_MAX_K}; wider settings stay on the CPU sampler.
 * @module
 */
import { stepWgsl } from "./common.ts";

/** Largest top-k the GPU sampler takes (candidates sorted in workgroup memory: 8 bytes each). */
export const SAMPLE_MAX_K = 1024;

/** Fields of the sampler uniform, in order (f: f32, u: u32). */
export const SAMPLE_FIELDS = [
  ["temp", "f"],
  ["topK", "u"], // 1 … SAMPLE_MAX_K (ignored when greedy)
  ["topP", "f"],
  ["minP", "f"],
  ["penalty", "f"],
  ["lastN", "u"], // history entries the penalty looks at (already clamped to histLen)
  ["histLen", "u"], // tokens in the history: the sampled one is written at this index
  ["draw", "f"], // uniform draw in [0, 1)
  ["stamp", "u"], // distinct per step: marks[id] == stamp means id was penalized this step
] as const;

/** Byte size of the sampler uniform buffer (rounded to 16). */
export const SAMPLE_BYTES = Math.ceil(SAMPLE_FIELDS.length / 4) * 16;

/**
 * WGSL of the sampler over logits row `nOut-1` of `nVocab` entries (modified in place by the
 * penalty). Writes the token to `tokens[0]` (the next step's input), `result[0]` and
 * `hist[histLen]`. Bindings: 0 logits, 1 tokens, 2 result, 3 hist, 4 marks (`nVocab` u32), 5
 * sampler uniform, 6 step, 7 and 8 candidate logits and ids (`SAMPLE_MAX_K` each). One workgroup of 256.
 */
export function sampleWgsl(nVocab: number): string {
  const fields = SAMPLE_FIELDS.map(([n, t]) => `${n}: ${t === "f" ? "f32" : "u32"}`).join(", ");
  return `${stepWgsl(6)}
struct Sample { ${fields} }
@group(0) @binding(0) var<storage, read_write> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> tokens: array<u32>;
@group(0) @binding(2) var<storage, read_write> result: array<u32>;
@group(0) @binding(3) var<storage, read_write> hist: array<u32>;
@group(0) @binding(4) var<storage, read_write> marks: array<atomic<u32>>;
@group(0) @binding(5) var<uniform> sp: Sample;
// Candidates (logit, id): in a storage buffer, as llvmpipe takes ~30 s to compile the zero-initialisation
// WebGPU requires for 8 KiB of workgroup memory.
@group(0) @binding(7) var<storage, read_write> cv: array<f32>;
@group(0) @binding(8) var<storage, read_write> ci: array<u32>;
const V = ${nVocab}u;
const CAP = ${SAMPLE_MAX_K}u;
var<workgroup> bins: array<atomic<u32>, 256>;
var<workgroup> bv: array<f32, 256>;
var<workgroup> bi: array<u32, 256>;
var<workgroup> nCand: atomic<u32>;
var<workgroup> prefix: vec3<u32>; // key bits decided (hi, lo), candidates still needed
var<workgroup> done: u32;

// Order-preserving bits of a logit (-0 and +0 equal, as the CPU compares them).
fn okey(x: f32) -> u32 {
  let b = select(bitcast<u32>(x), 0u, x == 0.0);
  return select(b | 0x80000000u, ~b, (b >> 31u) == 1u);
}
// Candidate a before b: larger logit, then lower id.
fn before(av: f32, ai: u32, bw: f32, bj: u32) -> bool {
  let ka = okey(av);
  let kb = okey(bw);
  return ka > kb || (ka == kb && ai < bj);
}
// Masks of the top 8·nd bits of the 64-bit key (hi, lo).
fn masks(nd: u32) -> vec2<u32> {
  let mh = select(select(0u, ~(0xffffffffu >> (8u * nd)), nd > 0u), 0xffffffffu, nd >= 4u);
  let ml = select(select(0u, ~(0xffffffffu >> (8u * (nd - 4u))), nd > 4u), 0xffffffffu, nd >= 8u);
  return vec2(mh, ml);
}
fn pick(id: u32) {
  tokens[0] = id;
  result[0] = id;
  hist[sp.histLen] = id;
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  let base = (step.nOut - 1u) * V;
  // 1. Repetition penalty, once per distinct id of the window: the thread that stamps it applies it.
  if (sp.penalty != 1.0) {
    for (var i = lid; i < sp.lastN; i += 256u) {
      let id = hist[sp.histLen - sp.lastN + i];
      if (id < V && atomicExchange(&marks[id], sp.stamp) != sp.stamp) {
        let l = logits[base + id];
        logits[base + id] = select(l * sp.penalty, l / sp.penalty, l > 0.0);
      }
    }
  }
  storageBarrier();
  workgroupBarrier();
  // 2. Greedy: the argmax, first index on ties.
  if (sp.temp <= 0.0) {
    var best = -3.4e38;
    var bidx = 0u;
    for (var i = lid; i < V; i += 256u) {
      let v = logits[base + i];
      if (v > best) { best = v; bidx = i; }
    }
    bv[lid] = best;
    bi[lid] = bidx;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
      if (lid < s) {
        let v = bv[lid + s];
        let j = bi[lid + s];
        if (v > bv[lid] || (v == bv[lid] && j < bi[lid])) { bv[lid] = v; bi[lid] = j; }
      }
      workgroupBarrier();
    }
    if (lid == 0u) { pick(bi[0]); }
    return;
  }
  // 3. The top k by radix select: each pass histograms the next 8 key bits of the keys that match
  // the bits decided so far, and keeps the bin where the count from the top reaches k.
  let k = min(sp.topK, V);
  if (lid == 0u) {
    prefix = vec3(0u, 0u, k);
    done = 0u;
    atomicStore(&nCand, 0u);
  }
  var nd = 0u;
  loop {
    atomicStore(&bins[lid], 0u);
    workgroupBarrier();
    let p = prefix;
    let m = masks(nd);
    for (var i = lid; i < V; i += 256u) {
      let h = okey(logits[base + i]);
      let lo = ~i;
      if ((h & m.x) == p.x && (lo & m.y) == p.y) {
        var dig: u32;
        if (nd < 4u) { dig = (h >> (24u - 8u * nd)) & 255u; } else { dig = (lo >> (24u - 8u * (nd - 4u))) & 255u; }
        atomicAdd(&bins[dig], 1u);
      }
    }
    workgroupBarrier();
    if (lid == 0u) {
      var cum = 0u;
      var b = 255u;
      loop {
        let c = atomicLoad(&bins[b]);
        if (cum + c >= p.z || b == 0u) { break; }
        cum += c;
        b -= 1u;
      }
      let need = p.z - cum;
      if (nd < 4u) { prefix = vec3(p.x | (b << (24u - 8u * nd)), p.y, need); }
      else { prefix = vec3(p.x, p.y | (b << (24u - 8u * (nd - 4u))), need); }
      if (atomicLoad(&bins[b]) == need) { done = 1u; }
    }
    nd += 1u;
    if (workgroupUniformLoad(&done) == 1u || nd == 8u) { break; }
  }
  // Gather: every key whose decided bits are >= the prefix (exactly k of them: keys are distinct).
  let p = prefix;
  let m = masks(nd);
  for (var i = lid; i < V; i += 256u) {
    let v = logits[base + i];
    let h = okey(v) & m.x;
    let lo = ~i & m.y;
    if (h > p.x || (h == p.x && lo >= p.y)) {
      let j = atomicAdd(&nCand, 1u);
      if (j < CAP) { cv[j] = v; ci[j] = i; }
    }
  }
  // Bitonic sort of the k candidates (padded to a power of two with -inf after every real id).
  var n2 = 1u;
  while (n2 < k) { n2 <<= 1u; }
  for (var t = k + lid; t < n2; t += 256u) {
    cv[t] = bitcast<f32>(0xff800000u);
    ci[t] = 0xffffffffu;
  }
  storageBarrier();
  workgroupBarrier();
  for (var w = 2u; w <= n2; w <<= 1u) {
    for (var j = w >> 1u; j > 0u; j >>= 1u) {
      for (var t = lid; t < n2; t += 256u) {
        let u = t ^ j;
        if (u > t) {
          let sw = select(before(cv[t], ci[t], cv[u], ci[u]), before(cv[u], ci[u], cv[t], ci[t]), (t & w) == 0u);
          if (sw) {
            let fv = cv[t]; cv[t] = cv[u]; cv[u] = fv;
            let fi = ci[t]; ci[t] = ci[u]; ci[u] = fi;
          }
        }
      }
      storageBarrier();
      workgroupBarrier();
    }
  }
  // 4. top-p (softmax at temperature 1 over the k), min-p, temperature, draw: one thread, in order.
  if (lid == 0u) {
    let m0 = cv[0];
    var keep = k;
    if (sp.topP < 1.0) {
      var sum = 0.0;
      for (var i = 0u; i < k; i++) { sum += exp(cv[i] - m0); }
      var cum = 0.0;
      for (var i = 0u; i < k; i++) {
        cum += exp(cv[i] - m0);
        if (cum >= sp.topP * sum) { keep = i + 1u; break; }
      }
    }
    if (sp.minP > 0.0) {
      let thr = m0 + log(sp.minP);
      var n = 1u;
      while (n < keep && cv[n] >= thr) { n++; }
      keep = n;
    }
    let mt = m0 / sp.temp;
    var sum = 0.0;
    for (var i = 0u; i < keep; i++) { sum += exp(cv[i] / sp.temp - mt); }
    var r = sp.draw * sum;
    var id = ci[keep - 1u];
    for (var i = 0u; i < keep; i++) {
      r -= exp(cv[i] / sp.temp - mt);
      if (r < 0.0) { id = ci[i]; break; }
    }
    pick(id);
  }
}`;
}

/** The sampler uniform's bytes for one step. */
export function sampleUniform(v: Record<typeof SAMPLE_FIELDS[number][0], number>): ArrayBuffer {
  const buf = new ArrayBuffer(SAMPLE_BYTES);
  const f = new Float32Array(buf), u = new Uint32Array(buf);
  SAMPLE_FIELDS.forEach(([n, t], i) => {
    if (t === "f") f[i] = v[n];
    else u[i] = v[n];
  });
  return buf;
}
