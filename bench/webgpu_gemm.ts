/**
 * The prompt-batch GEMM on a real GPU against the decode kernel run a token at a time: a model's logits at every
 * position of `--tokens` pseudo-random ids (default 600: whole and partial tiles), with the GEMM at each tile size
 * and without it (SPARQ_GPU_GEMM_TILE / SPARQ_GPU_GEMM=0 set before each load), as max |Δ| over the largest |logit|;
 * then the query-tiled prompt attention against the chunked kernel (SPARQ_GPU_FLASH=0) the same way.
 * llvmpipe runs the same comparison in lib/webgpu/model_test.ts (tile 64 only: its shader compiler is slow).
 *
 *   deno run -A --unstable-webgpu bench/webgpu_gemm.ts --model M.gguf [--tokens 600]
 * @module
 */
import { parseArgs } from "node:util";
import { loadGpuModel } from "../lib/webgpu/model.ts";

const { values: v } = parseArgs({
  args: Deno.args,
  options: { model: { type: "string" }, tokens: { type: "string", default: "600" } },
});
if (!v.model) throw new Error("--model is required");
const n = Number(v.tokens);

async function logits(env: Record<string, string>): Promise<Float32Array> {
  for (const [k, val] of Object.entries(env)) Deno.env.set(k, val);
  const m = await loadGpuModel(v.model!, { ctx: n + 1, batch: 512 });
  for (const k of Object.keys(env)) Deno.env.delete(k);
  try {
    const ids = Array.from({ length: n }, (_, i) => 3 + ((i * 7919) % (m.config.nVocab - 3)));
    return await m.evaluate(ids, { allLogits: true });
  } finally {
    m.close();
  }
}

const plain = await logits({ SPARQ_GPU_GEMM: "0", SPARQ_GPU_FLASH: "0" });
let scale = 0;
for (const x of plain) scale = Math.max(scale, Math.abs(x));
for (const tile of ["128", "64"]) {
  const got = await logits({ SPARQ_GPU_GEMM_TILE: tile, SPARQ_GPU_FLASH: "0" });
  let max = 0;
  for (let i = 0; i < got.length; i++) max = Math.max(max, Math.abs(got[i] - plain[i]));
  console.log(
    `GEMM tile ${tile} vs per-token kernel, ${n} positions: max |Δ| ${max.toExponential(2)} (logits up to ${
      scale.toFixed(2)
    })`,
  );
}
{
  // The query-tiled prompt attention (default on a GPU) against the chunked kernel, per-token matmuls in both.
  const got = await logits({ SPARQ_GPU_GEMM: "0" });
  let max = 0;
  for (let i = 0; i < got.length; i++) max = Math.max(max, Math.abs(got[i] - plain[i]));
  console.log(
    `flash prompt attention vs chunked, ${n} positions: max |Δ| ${max.toExponential(2)} (logits up to ${
      scale.toFixed(2)
    })`,
  );
}
