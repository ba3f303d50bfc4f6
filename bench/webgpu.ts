/**
 * WebGPU decode benchmark: for a model (e.g. `sparq synth --shape llama2-7b --type q4_0`), decode
 * tokens/s at each context (random K/V fill) for dense and SparQ, bytes read per token, and the same
 * run's bandwidth probe (1 GiB read kernel, many dispatches in one submit).
 *
 *   deno run -A --unstable-webgpu bench/webgpu.ts --model M.gguf [--contexts 512,8192]
 *     [--attention dense,sparq:ratio=1/8] [--steps 64] [--peak 3.35e12] [--json FILE]
 * @module
 */
import { parseArgs } from "node:util";
import { describeGpu, getGpu } from "../lib/webgpu/device.ts";
import { loadGpuModel } from "../lib/webgpu/model.ts";
import { gpuBandwidthProbe } from "../lib/webgpu/probe.ts";

const { values: v } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string" },
    contexts: { type: "string", default: "512,8192" },
    attention: { type: "string", default: "dense,sparq:ratio=1/8" },
    steps: { type: "string", default: "64" },
    peak: { type: "string", default: "3.35e12" },
    "probe-mib": { type: "string", default: "1024" },
    json: { type: "string" },
  },
});
if (!v.model) throw new Error("--model is required");
const contexts = v.contexts!.split(",").map(Number);
const modes = v.attention!.split(/,(?=dense|sparq)/);
const steps = Number(v.steps);
const peak = Number(v.peak);
const load = () => Deno.readTextFileSync("/proc/loadavg").trim();

const gpu = await getGpu();
console.log(`date: ${new Date().toISOString()}  SPARQ_GPU_MATVEC=${Deno.env.get("SPARQ_GPU_MATVEC") ?? "(default)"}`);
console.log(await describeGpu());
const probe = await gpuBandwidthProbe(gpu, Number(v["probe-mib"]) * 2 ** 20, 20);
console.log(
  `probe: ${(probe.bytesPerSecond / 1e12).toFixed(3)} TB/s (${probe.dispatches} × ${
    probe.bytes / 2 ** 20
  } MiB in one submit, ${(probe.seconds * 1000).toFixed(1)} ms)  loadavg ${load()}`,
);

// One load for all modes: the model is built for the SparQ mode (Kt exists) and switched to dense.
const sparqMode = modes.find((m) => m.startsWith("sparq"));
const t0 = performance.now();
const model = await loadGpuModel(v.model, {
  ctx: Math.max(...contexts) + steps + 2,
  attention: sparqMode ?? "dense",
});
console.log(`loaded ${v.model} in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${model.config.name}`);
const rows = [];
for (const ctx of contexts) {
  for (const mode of modes) {
    model.setAttention(mode);
    const b = await model.benchDecode(ctx, steps);
    const prof = await model.profileOps(10);
    console.log(
      Object.entries(prof).map(([k, ms]) => `  ${k}: ${ms.toFixed(3)} ms`).join("\n"),
    );
    const gbs = b.bytesPerToken * b.tokensPerSecond;
    const row = {
      attention: model.attention,
      ctx,
      steps,
      tokensPerSecond: b.tokensPerSecond,
      msPerToken: 1000 / b.tokensPerSecond,
      weightMBPerToken: b.weightBytesPerToken / 1e6,
      kvMBPerToken: b.kvBytesPerToken / 1e6,
      achievedTBs: gbs / 1e12,
      ofPeak: gbs / peak,
      ofProbe: gbs / probe.bytesPerSecond,
      encodeMsPerToken: (1000 * b.encodeSeconds) / steps,
      submitMsPerToken: (1000 * b.submitSeconds) / steps,
      cpuMsPerToken: (1000 * b.cpuSeconds) / steps,
      gpuMsPerToken: (1000 * b.gpuSeconds) / steps,
      submits: model.counters.submits,
      dispatchesPerToken: model.counters.dispatches / steps,
      loadavg: load(),
    };
    rows.push(row);
    console.log(
      `${row.attention.padEnd(20)} ctx ${String(ctx).padStart(5)}: ${row.tokensPerSecond.toFixed(1)} tok/s ` +
        `(${row.msPerToken.toFixed(2)} ms), ${(b.bytesPerToken / 1e6).toFixed(0)} MB/token ` +
        `(weights ${row.weightMBPerToken.toFixed(0)}, kv+index ${row.kvMBPerToken.toFixed(0)}) → ` +
        `${row.achievedTBs.toFixed(3)} TB/s = ${(100 * row.ofPeak).toFixed(1)}% of peak, ` +
        `${
          (100 * row.ofProbe).toFixed(1)
        }% of probe; ${row.dispatchesPerToken} dispatches/token  loadavg ${row.loadavg}\n` +
        `  per token: CPU encode ${row.encodeMsPerToken.toFixed(2)} ms + submit ${
          row.submitMsPerToken.toFixed(2)
        } ms (all CPU ${row.cpuMsPerToken.toFixed(2)} ms); GPU alone (steps in one submit) ${
          row.gpuMsPerToken.toFixed(2)
        } ms; empty-submit wait ${(1000 * b.waitSeconds).toFixed(1)} ms per run`,
    );
  }
}
for (const ctx of contexts) {
  const d = rows.find((r) => r.ctx === ctx && r.attention === "dense");
  for (const r of rows.filter((r) => r.ctx === ctx && r.attention !== "dense")) {
    if (d) console.log(`${r.attention} vs dense at ctx ${ctx}: ${(r.tokensPerSecond / d.tokensPerSecond).toFixed(2)}×`);
  }
}
model.close();
if (v.json) {
  Deno.writeTextFileSync(v.json, JSON.stringify({ gpu: await describeGpu(), probe, rows }, null, 2));
}
