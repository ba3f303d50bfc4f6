/**
 * The forward pass against llama.cpp's logits for every fixture model (../shared/fixtures): every
 * prompt position (one batch: the matmul/prefill path) and the 16 greedy steps (one token each:
 * the matvec/decode path). Tolerances follow the fixture README.
 */
import { ok } from "node:assert/strict";
import { loadModel } from "./model.ts";
import { readJson, sharedPath } from "../tests/testing.ts";
import { createRuntime } from "./wasm_runtime.ts";

interface LogitsFixture {
  model: { weights: string; arch: string };
  prompt_token_ids: number[];
  prompt_logits: number[][];
  prompt_argmax_margin: number[];
  greedy_tokens: number[];
  greedy_logits: number[][];
  greedy_margin: number[];
}

/** Max |a-b|, KL(ref‖ours) in nats, and whether the argmaxes agree, for one row. */
export function compareRow(ours: Float32Array, ref: number[]): { maxDiff: number; kl: number; top1: boolean } {
  let maxDiff = 0, ai = 0, bi = 0;
  let ma = -Infinity, mb = -Infinity;
  for (let i = 0; i < ref.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(ours[i] - ref[i]));
    if (ours[i] > ma) [ma, ai] = [ours[i], i];
    if (ref[i] > mb) [mb, bi] = [ref[i], i];
  }
  let za = 0, zb = 0;
  for (let i = 0; i < ref.length; i++) {
    za += Math.exp(ours[i] - ma);
    zb += Math.exp(ref[i] - mb);
  }
  const lza = Math.log(za) + ma, lzb = Math.log(zb) + mb;
  let kl = 0;
  for (let i = 0; i < ref.length; i++) {
    const lp = ref[i] - lzb, lq = ours[i] - lza;
    kl += Math.exp(lp) * (lp - lq);
  }
  return { maxDiff, kl, top1: ai === bi };
}

/**
 * Quantized weights: llama.cpp quantizes the activations too; replicating that exactly gives
 * ≤ 2e-2, f32 activations give up to ~0.6 (fixture README). Anything above this is a bug.
 */
const QUANT_MAX_DIFF = 0.6;

/** Max |Δlogit| allowed per weight type and architecture (fixture README). */
function tolerance(fx: LogitsFixture): number | undefined {
  const w = fx.model.weights;
  if (w === "F32") return 2e-3;
  if (w === "F16" || w === "BF16") return 5e-2;
  return undefined; // quantized: agreement and KL instead
}

/** Top-1 agreement over every quantized fixture's rows (the issue's ≥ 99% bar), summed by the tests below. */
const pooled = { agree: 0, rows: 0 };

const manifest = sharedPath("fixtures/manifest.json");
const entries = manifest ? readJson<{ file: string; out: string }[]>(manifest) : [];

for (const e of entries) {
  Deno.test(`forward pass vs llama.cpp: ${e.file}`, async () => {
    const fx = readJson<LogitsFixture>(sharedPath(`fixtures/${e.out}`)!);
    // One thread: on the shared 2-CPU machine waking a worker per kernel costs more than tiny models compute.
    const runtime = await createRuntime({ threads: 1 });
    const model = await loadModel(sharedPath(`fixtures/${e.file}`)!, { ctx: 128, runtime });
    try {
      const nVocab = model.config.nVocab;
      const n = fx.prompt_token_ids.length;
      const prompt = model.evaluate(fx.prompt_token_ids, { allLogits: true });
      const rows: { ours: Float32Array; ref: number[]; margin: number; what: string }[] = [];
      for (let i = 0; i < n; i++) {
        rows.push({
          ours: prompt.subarray(i * nVocab, (i + 1) * nVocab),
          ref: fx.prompt_logits[i],
          margin: fx.prompt_argmax_margin[i],
          what: `prompt position ${i}`,
        });
      }
      for (let j = 0; j < fx.greedy_tokens.length; j++) {
        rows.push({
          ours: model.evaluate([fx.greedy_tokens[j]]),
          ref: fx.greedy_logits[j],
          margin: fx.greedy_margin[j],
          what: `greedy step ${j}`,
        });
      }
      const tol = tolerance(fx);
      let maxPrompt = 0, maxGreedy = 0, agree = 0, klSum = 0, decided = 0, decidedAgree = 0;
      // The first row off by more than float rounding: with quantized activations the rows before it agree to
      // ~1e-6, and from it on by ~0.05 — one activation rounding that fell the other way and stays in the KV cache.
      let firstOff = "none";
      for (const r of rows) {
        const c = compareRow(r.ours, r.ref);
        if (firstOff === "none" && c.maxDiff > 1e-3) firstOff = r.what;
        if (r.what.startsWith("prompt")) maxPrompt = Math.max(maxPrompt, c.maxDiff);
        else maxGreedy = Math.max(maxGreedy, c.maxDiff);
        klSum += c.kl;
        if (c.top1) agree++;
        // Rows whose reference top-2 gap is larger than our whole error band on that row: llama.cpp's
        // answer there does not depend on summation order, so ours must be the same.
        if (r.margin > 2 * c.maxDiff) {
          decided++;
          if (c.top1) decidedAgree++;
        }
        // The argmax may only differ where the reference's top-2 gap is within our error on that row.
        const bound = tol ?? QUANT_MAX_DIFF;
        ok(
          c.top1 || r.margin < 2 * Math.max(c.maxDiff, bound / 10),
          `${e.file} ${r.what}: argmax differs (margin ${r.margin})`,
        );
      }
      const meanKl = klSum / rows.length, agreement = agree / rows.length;
      if (tol === undefined) {
        pooled.agree += agree;
        pooled.rows += rows.length;
      }
      console.log(
        `  ${e.file}: max|Δ| prompt ${maxPrompt.toExponential(2)}, greedy ${maxGreedy.toExponential(2)}; ` +
          `top-1 ${agree}/${rows.length} (${decidedAgree}/${decided} where the margin exceeds 2·|Δ|); mean KL ${
            meanKl.toExponential(2)
          }; first row off by > 1e-3: ${firstOff}`,
      );
      if (tol !== undefined) {
        ok(maxPrompt <= tol, `${e.file}: prompt max |Δ| ${maxPrompt} > ${tol}`);
        ok(maxGreedy <= tol, `${e.file}: greedy max |Δ| ${maxGreedy} > ${tol}`);
      } else {
        // The bar is top-1 >= 99% over all rows, asserted over all quantized fixtures together below.
        // The few flips left (BF16, Q4_K_M, Q6_K) sit where llama.cpp's own top-2 gap is < 0.04. Their cause
        // (see firstOff): every row agrees to float rounding up to one position, then all differ by ~0.05 — a
        // single activation whose 8-bit (or bf16) rounding went the other way because one f32 sum differs from
        // ggml's in the last bit, then stored in the KV cache. Where the kernels copy ggml's AVX2 order with its
        // fused multiply-adds (dense attention; Q4_1, Q5_1, Q5_0, Q8_0 dots) the logits are bit-exact. Asserted
        // per file: every row whose gap exceeds our error agrees, and KL is tiny.
        ok(decidedAgree / decided >= 0.99, `${e.file}: top-1 agreement ${decidedAgree}/${decided} on decided rows`);
        ok(agreement >= 0.95, `${e.file}: top-1 agreement ${agreement} < 0.95 over all rows`);
        ok(meanKl <= 1e-3, `${e.file}: mean KL ${meanKl} > 1e-3`);
        ok(Math.max(maxPrompt, maxGreedy) <= QUANT_MAX_DIFF, `${e.file}: max |Δ| above ${QUANT_MAX_DIFF}`);
      }
    } finally {
      model.close();
      runtime.close();
    }
  });
}

Deno.test({
  name: "forward pass vs llama.cpp: quantized fixtures pooled top-1 ≥ 99%",
  ignore: entries.length === 0,
  fn() {
    const share = pooled.agree / pooled.rows;
    console.log(`  quantized fixtures: top-1 ${pooled.agree}/${pooled.rows} = ${(100 * share).toFixed(2)}%`);
    ok(pooled.rows > 0, "no quantized fixture ran (run the whole file)");
    ok(share >= 0.99, `pooled top-1 ${pooled.agree}/${pooled.rows} < 99%`);
  },
});
