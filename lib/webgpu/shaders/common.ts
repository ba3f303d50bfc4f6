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
