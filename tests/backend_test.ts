import assert from "node:assert/strict";
import { openModel } from "../lib/backend.ts";
import { generate } from "../lib/generate.ts";
import { DEFAULT_SAMPLER } from "../lib/sampler.ts";
import { sharedPath } from "./testing.ts";

async function greedyIds(path: string, backend: "wasm" | "webgpu", attention: string): Promise<number[]> {
  const model = await openModel(path, { backend, attention, ctx: 128, threads: 1 });
  try {
    const prompt = model.tokenizer.encode("The quick brown fox jumps over the lazy dog.");
    const r = await generate(model, prompt, { maxTokens: 12, sampler: { ...DEFAULT_SAMPLER, temp: 0 } });
    return r.tokens;
  } finally {
    model.close();
  }
}

Deno.test("generate through --backend webgpu gives wasm's greedy tokens (dense and sparq)", async () => {
  const path = sharedPath("fixtures/models/llama-mha.gguf");
  if (!path) return;
  if (!navigator.gpu || !(await navigator.gpu.requestAdapter())) {
    console.log("  skipped: no WebGPU adapter");
    return;
  }
  for (const attention of ["dense", "sparq:r=16,k=8"]) {
    const cpu = await greedyIds(path, "wasm", attention);
    const gpu = await greedyIds(path, "webgpu", attention);
    assert.deepEqual(gpu, cpu, attention);
  }
});

Deno.test("--backend rejects unknown names with a one-line error", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      new URL("../cli.ts", import.meta.url).pathname,
      "generate",
      "-m",
      "x.gguf",
      "-p",
      "hi",
      "--backend",
      "cuda",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 2);
  assert.match(new TextDecoder().decode(out.stderr), /^sparq: --backend cuda: unknown backend/);
});
