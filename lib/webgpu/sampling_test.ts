import { deepEqual, ok as assert } from "node:assert/strict";
import { sharedPath } from "../../tests/testing.ts";
import { DEFAULT_SAMPLER, Sampler, type SamplerOptions } from "../sampler.ts";
import { generate, type GenerateResult, type GenerationModel } from "../generate.ts";
import { openModel } from "../backend.ts";
import { Kernels } from "./kernels.ts";
import { SAMPLE_BYTES, SAMPLE_MAX_K, sampleWgsl } from "./shaders/sample.ts";
import { samplerStep } from "./sampling.ts";
import { gpuOrSkip } from "./test_util.ts";

/** Deterministic normal-ish values (sum of uniforms) from a seed. */
function randomLogits(n: number, seed: number, tieStep = 0): Float32Array {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const v = 3 * (u() + u() + u() + u() - 2);
    out[i] = tieStep > 0 ? Math.round(v / tieStep) * tieStep : v;
  }
  return out;
}

const CASES: [string, Partial<SamplerOptions>, number, number][] = [
  // name, options, vocabulary, tie step (0: no deliberate ties)
  ["greedy with a penalty", { temp: 0, repeatPenalty: 1.3 }, 1000, 0],
  ["greedy, many ties", { temp: 0 }, 777, 0.5],
  ["llama.cpp defaults", {}, 4099, 0],
  ["defaults, penalty over the whole history", { repeatPenalty: 1.5, repeatLastN: -1 }, 4099, 0],
  ["top-k 1", { topK: 1 }, 300, 0],
  ["top-k 1024, no top-p or min-p, hot", { topK: SAMPLE_MAX_K, topP: 1, minP: 0, temp: 3 }, 1500, 0],
  ["top-k above the vocabulary", { topK: 500, topP: 0.9, minP: 0 }, 300, 0],
  ["ties across the top-k boundary", { topK: 50, topP: 1, minP: 0, temp: 1.5 }, 2000, 0.25],
  ["top-p only", { topK: 1000, topP: 0.5, minP: 0 }, 3000, 0],
];

for (const [name, partial, V, tie] of CASES) {
  Deno.test(`webgpu sampler equals the CPU sampler: ${name}`, async () => {
    const gpu = await gpuOrSkip();
    if (!gpu) return;
    const o = { ...DEFAULT_SAMPLER, seed: 7, ...partial };
    const k = new Kernels(gpu);
    try {
      const b = {
        logits: k.buffer(V * 4),
        tokens: k.buffer(16),
        result: k.buffer(16),
        hist: k.buffer(4096),
        marks: k.buffer(V * 4),
        sample: k.buffer(SAMPLE_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST),
        candV: k.buffer(SAMPLE_MAX_K * 4),
        candI: k.buffer(SAMPLE_MAX_K * 4),
      };
      const op = k.op(
        "sample",
        sampleWgsl(V),
        { 0: b.logits, 1: b.tokens, 2: b.result, 3: b.hist, 4: b.marks, 5: b.sample, 7: b.candV, 8: b.candI },
        6,
        () => [1, 1, 1],
      );
      const cpu = new Sampler(o, V);
      const draws = new Sampler(o, V);
      const s = k.setStep({ nOut: 1 });
      // A history with repeats: the penalty must hit each distinct id once.
      const history = Array.from({ length: 90 }, (_, i) => (i * 37) % 50 + (i % 3) * 100);
      k.device.queue.writeBuffer(b.hist, 0, new Uint32Array(history));
      const got: number[] = [], want: number[] = [];
      for (let t = 0; t < 12; t++) {
        const logits = randomLogits(V, 1000 * t + V, tie);
        want.push(cpu.sample(logits, history));
        k.device.queue.writeBuffer(b.logits, 0, logits);
        const histLen = history.length;
        k.device.queue.writeBuffer(b.sample, 0, samplerStep(o, histLen, o.temp > 0 ? draws.nextDraw() : 0, t + 1));
        k.submit([op], s);
        got.push(new Uint32Array(await k.read(b.result, 0, 4))[0]);
        // The sampled id was appended to the GPU history; the next case starts from the same one.
        assert(new Uint32Array(await k.read(b.hist, histLen * 4, 4))[0] === got[t]);
      }
      k.throwIfFailed();
      deepEqual(got, want);
    } finally {
      k.destroy();
    }
  });
}

/** The model without its device sampler: generation reads the logits back and samples on the CPU. */
function cpuSampled(m: GenerationModel): GenerationModel {
  return {
    config: m.config,
    tokenizer: m.tokenizer,
    get pos() {
      return m.pos;
    },
    nCtx: m.nCtx,
    evaluate: (t) => m.evaluate(t),
  };
}

for (const attention of ["dense", "sparq:r=8,k=6"]) {
  Deno.test(`webgpu generate (${attention}): GPU sampling gives the CPU sampler's tokens and position`, async () => {
    const path = sharedPath("fixtures/models/llama-gqa-q.gguf");
    if (!path || !await gpuOrSkip()) return;
    const m = await openModel(path, { backend: "webgpu", ctx: 64, attention });
    try {
      const sampler = { ...DEFAULT_SAMPLER, repeatPenalty: 1.2 };
      // Positions after a call: the prompt and every generated token but a last one that ended it by
      // length or full context (an end-of-text token is not kept; an interrupt comes after an evaluation).
      const used = (r: GenerateResult) =>
        r.promptTokens + r.tokens.length - (r.stopReason === "length" || r.stopReason === "context" ? 1 : 0);
      const calls: [number[], SamplerOptions, number, number][] = [
        // prompt, sampler, most tokens, interrupt after (0: never)
        [[1, 5, 9, 200], { ...sampler, seed: 11 }, 15, 0],
        [[17, 3], { ...sampler, temp: 0 }, 15, 6],
        [[8, 8], { ...sampler, seed: 3 }, 30, 4],
        [[4], { ...sampler, seed: 5 }, 100, 0], // until end-of-text or a full context (64)
      ];
      const run = async (model: GenerationModel) => {
        m.reset();
        const out = [];
        // Each call continues after the previous one, which may have stopped with steps in flight.
        for (const [prompt, o, maxTokens, stopAfter] of calls) {
          const pos = m.pos;
          const ctrl = new AbortController();
          let n = 0;
          const onToken = () => void (++n === stopAfter && ctrl.abort());
          const r = await generate(model, prompt, { maxTokens, sampler: o, signal: ctrl.signal, onToken });
          assert(m.pos === pos + used(r), `${r.stopReason}: position ${m.pos}, expected ${pos} + ${used(r)}`);
          // The cache as left behind (SparQ: the V sums without the steps run ahead) decides the next logits.
          const next = m.pos < m.nCtx ? [...await m.evaluate([7])] : [];
          out.push({ tokens: r.tokens, stop: r.stopReason, pos: m.pos, dev: r.deviceSampled, next });
        }
        return out;
      };
      // 8 steps in flight (llvmpipe's default is 2): stops leave several steps run ahead to undo.
      Deno.env.set("SPARQ_GPU_AHEAD", "8");
      const gpu = await run(m).finally(() => Deno.env.delete("SPARQ_GPU_AHEAD"));
      const cpu = await run(cpuSampled(m));
      assert(gpu.every((r) => r.dev) && cpu.every((r) => !r.dev));
      deepEqual(gpu.map((r) => ({ ...r, dev: 0 })), cpu.map((r) => ({ ...r, dev: 0 })));
      console.log(`  stops: ${gpu.map((r) => `${r.stop} at ${r.pos}`).join(", ")}`);
    } finally {
      m.close();
    }
  });
}
