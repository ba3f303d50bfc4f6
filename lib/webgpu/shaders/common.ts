/**
 * WGSL shared by the kernels: the per-step uniform block every kernel reads (so that one set of
 * bind groups, created at load time, serves every step) and workgroup reductions.
 * @module
 */

/** Fields of the step uniform, in order (all u32). */
export const STEP_FIELDS = [
  "pos0", // position of the first token of the batch
  "nTok", // tokens in the batch
  "nOut", // rows whose logits are computed (1 or nTok)
  "outTok0", // first batch row whose logits are computed
  "nChunk", // attention: position chunks per query
  "chunk", // attention: positions per chunk
  "kk", // sparq: positions selected (current token included)
  "r", // sparq: q components used for the approximate scores
  "localK", // sparq: previous positions always kept besides the current one
  "seed", // random fill
  "fillLen", // random fill: positions filled
  "pad",
] as const;

/** Byte size of the step uniform buffer. */
export const STEP_BYTES = STEP_FIELDS.length * 4;

/** WGSL declaration of the step uniform at `@group(0) @binding(binding)`. */
export function stepWgsl(binding: number): string {
  return `struct Step { ${STEP_FIELDS.map((f) => `${f}: u32`).join(", ")} }
@group(0) @binding(${binding}) var<uniform> step: Step;`;
}

/**
 * WGSL helpers for a workgroup of `wg` threads: `wgSum(lid, v)` and `wgMax(lid, v)` return the
 * reduction to every thread (call from uniform control flow).
 */
export function reduceWgsl(wg: number): string {
  return `var<workgroup> red_: array<f32, ${wg}>;
fn wgSum(lid: u32, v: f32) -> f32 {
  red_[lid] = v;
  workgroupBarrier();
  for (var s = ${wg / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { red_[lid] += red_[lid + s]; }
    workgroupBarrier();
  }
  let r = red_[0];
  workgroupBarrier();
  return r;
}
fn wgMax(lid: u32, v: f32) -> f32 {
  red_[lid] = v;
  workgroupBarrier();
  for (var s = ${wg / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { red_[lid] = max(red_[lid], red_[lid + s]); }
    workgroupBarrier();
  }
  let r = red_[0];
  workgroupBarrier();
  return r;
}`;
}

/** Formats a number as a WGSL f32 literal. */
export function f32Lit(x: number): string {
  if (!Number.isFinite(x)) throw new Error(`f32Lit: ${x}`);
  const s = String(Math.fround(x));
  return /[.eE]/.test(s) ? s : `${s}.0`;
}

/**
 * WGSL helpers for a workgroup of `wg` threads (a multiple of 32) with few barriers (three per
 * fold, no tree): `wgSum2`/`wgMax2` fold vec2 values, `wgMax1`/`wgSum1` f32 values, and
 * `wgMerge(lid, v)` merges softmax (max, Σ exp(x − max)) pairs (the max first, then the sums
 * rescaled to it: no serial chain of exponentials; `wgMergeF` folds the pairs with mergeMl in one
 * pass: fewer barriers, a chain of exponentials). All return the result to every thread (call
 * from uniform control flow). The `wg` values are folded 32 ways in workgroup memory, then every
 * thread folds the 32 partials.
 */
export function reduce2Wgsl(wg: number): string {
  if (wg % 32 !== 0) throw new Error(`reduce2Wgsl: ${wg} threads`);
  const fold = (name: string, T: string, arr: string, zero: string, op: (a: string, b: string) => string) => `
fn ${name}(lid: u32, v: ${T}) -> ${T} {
  ${arr}[lid] = v;
  workgroupBarrier();
  if (lid < 32u) {
    var a = ${zero};
    for (var i = lid; i < ${wg}u; i += 32u) { a = ${op("a", `${arr}[i]`)}; }
    ${arr}32[lid] = a;
  }
  workgroupBarrier();
  var t = ${zero};
  for (var i = 0u; i < 32u; i++) { t = ${op("t", `${arr}32[i]`)}; }
  workgroupBarrier();
  return t;
}`;
  return `var<workgroup> r2_: array<vec2<f32>, ${wg}>;
var<workgroup> r2_32: array<vec2<f32>, 32>;
var<workgroup> r1_: array<f32, ${wg}>;
var<workgroup> r1_32: array<f32, 32>;
${fold("wgSum2", "vec2<f32>", "r2_", "vec2<f32>(0.0)", (a, b) => `${a} + ${b}`)}${
    fold("wgMax2", "vec2<f32>", "r2_", "vec2<f32>(-3.0e38)", (a, b) => `max(${a}, ${b})`)
  }${fold("wgSum1", "f32", "r1_", "0.0", (a, b) => `${a} + ${b}`)}${
    fold("wgMax1", "f32", "r1_", "-3.0e38", (a, b) => `max(${a}, ${b})`)
  }
// Softmax merge of two (max, Σ exp(x − max)) pairs.
fn mergeMl(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let M = max(a.x, b.x);
  return vec2<f32>(M, a.y * exp(a.x - M) + b.y * exp(b.x - M));
}
fn wgMerge(lid: u32, v: vec2<f32>) -> vec2<f32> {
  let M = wgMax1(lid, v.x);
  return vec2<f32>(M, wgSum1(lid, v.y * exp(v.x - M)));
}${fold("wgMergeF", "vec2<f32>", "r2_", "vec2<f32>(-3.0e38, 0.0)", (a, b) => `mergeMl(${a}, ${b})`)}`;
}

/** 0, 1, …, n − 1: the indices of code the generators write out once per element (constant indices). */
export function range(n: number): number[] {
  return [...Array(n).keys()];
}
