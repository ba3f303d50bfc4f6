/**
 * The trained models of ../shared/models against their llama.cpp references: stories260K's
 * 200-token greedy story token for token, and the top-10 logits per position of stories260K,
 * pydoc11M (F16) and pydoc21M (F16, head_dim 128, GQA).
 */
import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { loadModel } from "./model.ts";
import { generate } from "./generate.ts";
import { readJson, sharedPath } from "../tests/testing.ts";
import { DEFAULT_SAMPLER } from "./sampler.ts";

interface TopEntry {
  id: number;
  logit: number;
  logprob: number;
}
interface Reference {
  greedy: { prompt_tokens: number[]; generated_tokens: number[]; text: string; steps: { top: TopEntry[] }[] };
  prompt_logits: { tokens: number[]; positions: { pos: number; top: TopEntry[] }[] };
}

/** Max |Δlogit| over the reference's top-10 ids at each of the first `n` positions. */
function topLogitDiff(logits: Float32Array, nVocab: number, ref: Reference, n: number): number {
  let max = 0;
  for (let i = 0; i < n; i++) {
    for (const t of ref.prompt_logits.positions[i].top) {
      max = Math.max(max, Math.abs(logits[i * nVocab + t.id] - t.logit));
    }
  }
  return max;
}

/** Greedy steps that must match: all of them up to the first whose reference top-2 gap is below `margin`. */
function comfortableSteps(ref: Reference, margin: number): number {
  const i = ref.greedy.steps.findIndex((s) => s.top[0].logit - s.top[1].logit < margin);
  return i < 0 ? ref.greedy.steps.length : i + 1;
}

const greedy = { ...DEFAULT_SAMPLER, temp: 0 };

Deno.test("stories260K: 200-token greedy story and prompt logits equal llama.cpp's", async () => {
  const dir = sharedPath("models/stories260K");
  if (!dir) return;
  const ref = readJson<Reference>(`${dir}/llama_cpp_reference.json`);
  const model = await loadModel(`${dir}/stories260K.gguf`, { ctx: 512, threads: 1 });
  try {
    const r = await generate(model, ref.greedy.prompt_tokens, { maxTokens: 200, sampler: greedy });
    assertEquals(r.tokens, ref.greedy.generated_tokens);
    assertEquals(r.text, ref.greedy.text);
    model.reset();
    const n = ref.prompt_logits.tokens.length;
    const logits = model.evaluate(ref.prompt_logits.tokens, { allLogits: true });
    const d = topLogitDiff(logits, model.config.nVocab, ref, n);
    console.log(`  stories260K: top-10 logits max |Δ| ${d.toExponential(2)} over ${n} positions`);
    ok(d <= 2e-3, `max |Δ| ${d}`);
  } finally {
    model.close();
  }
});

for (
  const [name, file, refFile, positions] of [
    ["pydoc11M", "pydoc11M/pydoc11M-f16.gguf", "pydoc11M/llama_cpp_reference.json", 64],
    // The 2048-position reference, checked on a causal prefix to keep CI fast.
    ["pydoc21M", "pydoc21M/pydoc21M-f16.gguf", "pydoc21M/llama_cpp_reference_2048.json", 256],
  ] as const
) {
  Deno.test(`${name}: top-10 logits and greedy continuation match llama.cpp (F16)`, async () => {
    const path = sharedPath(`models/${file}`);
    if (!path) return;
    const ref = readJson<Reference>(sharedPath(`models/${refFile}`)!);
    const model = await loadModel(path, { ctx: 512, threads: 1 });
    try {
      const logits = model.evaluate(ref.prompt_logits.tokens.slice(0, positions), { allLogits: true });
      const d = topLogitDiff(logits, model.config.nVocab, ref, positions);
      model.reset();
      const want = comfortableSteps(ref, 0.05);
      const r = await generate(model, ref.greedy.prompt_tokens, { maxTokens: want, sampler: greedy });
      console.log(
        `  ${name}: top-10 logits max |Δ| ${d.toExponential(2)} over ${positions} positions; ` +
          `greedy ${want} steps up to the first margin < 0.05`,
      );
      ok(d <= 5e-2, `max |Δ| ${d}`);
      assertEquals(r.tokens, ref.greedy.generated_tokens.slice(0, want));
    } finally {
      model.close();
    }
  });
}
