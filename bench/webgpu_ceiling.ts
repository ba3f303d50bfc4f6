/**
 * The ceiling of WebGPU decode for a model on this GPU: every op of one decode step replaced by a plain read of the
 * bytes that op reads (the bandwidth probe's kernel), with the step's dispatch structure — one dispatch per op, each
 * depending on the one before through a shared read_write buffer (so wgpu separates them by a barrier, as in the real
 * step), one compute pass per step, `--steps` steps per submit. What is left between these figures and `sparq profile
 * --backend webgpu` is the kernels' own cost (compute, latency chains, imperfect access patterns); what is left
 * between them and the probe is the cost of a dispatch. Also prints the step of empty dispatches alone and, per
 * context, the ceiling of SparQ's speedup over dense.
 *
 *   deno run -A --unstable-webgpu bench/webgpu_ceiling.ts --model M.gguf [--contexts 512,8192]
 *     [--attention dense,sparq:ratio=1/8] [--cache-type f32,f16] [--steps 64]
 *
 * Ops per layer as `GpuModel` records a decode step: the qkv matvec (RoPE and the cache append fused), attention
 * (dense: one dispatch reading K and V; SparQ: approx + select reading r rows of Kt, then the partial reading k rows of
 * K and V), the output projection, the gate·up (or up) matvec, the down matvec; per step: the embedding row, the
 * output matvec and the argmax (tiny reads).
 * @module
 */
import { parseArgs } from "node:util";
import { getGpu } from "../lib/webgpu/device.ts";
import { gpuBandwidthProbe, probeGroups, probeWgsl, submitFloor } from "../lib/webgpu/probe.ts";
import { gpuRowBytes } from "../lib/webgpu/shaders/quant.ts";
import { openGguf } from "../lib/gguf.ts";
import { configFromGguf } from "../lib/model_config.ts";
import { parseAttentionSpec, predictedTransfer, resolveParams, usesDense } from "../lib/attention/spec.ts";

const { values: v } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string" },
    contexts: { type: "string", default: "512,8192" },
    attention: { type: "string", default: "dense,sparq:ratio=1/8" },
    "cache-type": { type: "string", default: "f32,f16" },
    steps: { type: "string", default: "64" },
  },
});
if (!v.model) throw new Error("--model is required");
const file = await openGguf(v.model);
const cfg = configFromGguf(file);
const steps = Number(v.steps);
const modes = v.attention!.split(/,(?=dense|sparq)/);
const caches = v["cache-type"]!.split(",");
for (const c of caches) if (c !== "f32" && c !== "f16") throw new Error(`--cache-type ${c}: expected f32 or f16`);
const load = () => Deno.readTextFileSync("/proc/loadavg").trim();

const gpu = await getGpu();
const dev = gpu.device;
const probe = await gpuBandwidthProbe(gpu, 1 << 30, 20);
console.log(`probe ${(probe.bytesPerSecond / 1e9).toFixed(1)} GB/s  loadavg ${load()}`);

/** GPU bytes of a weight tensor (0 when absent). */
const tensorBytes = (name: string) => {
  const t = file.tensorByName.get(name);
  return t ? gpuRowBytes(t.type, t.shape[0]) * t.shape.slice(1).reduce((a, b) => a * b, 1) : 0;
};

/** A read of `bytes` bytes: its own buffer (distinct memory, as the step's tensors), pipeline and bind group. */
interface Read {
  pipe: GPUComputePipeline;
  bind: GPUBindGroup;
  groups: [number, number];
  bytes: number;
  buf: GPUBuffer;
}
const dst = dev.createBuffer({ size: 1024, usage: GPUBufferUsage.STORAGE });
const pipes = new Map<number, GPUComputePipeline>();
function read(bytes: number): Read {
  bytes = Math.max(1024, Math.ceil(bytes / 1024) * 1024);
  let pipe = pipes.get(bytes);
  if (!pipe) {
    const module = dev.createShaderModule({ code: probeWgsl(bytes / 16) });
    pipe = dev.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
    pipes.set(bytes, pipe);
  }
  const buf = dev.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE });
  const bind = dev.createBindGroup({
    layout: pipe.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: { buffer: buf } }, { binding: 1, resource: { buffer: dst } }],
  });
  return { pipe, bind, groups: probeGroups(bytes), bytes, buf };
}

const L = cfg.nLayer;
const layerWeights = Array.from({ length: L }, (_, l) => {
  const b = (n: string) => tensorBytes(`blk.${l}.${n}.weight`);
  return {
    qkv: read(b("attn_qkv") + b("attn_q") + b("attn_k") + b("attn_v")),
    o: read(b("attn_output")),
    up: read(b("ffn_gate") + b("ffn_up")),
    down: read(b("ffn_down")),
  };
});
const tiny = read(64 * 1024);
const out = read(tensorBytes(cfg.tiedOutput ? "token_embd.weight" : "output.weight"));

/** One decode step: the reads in dispatch order, `att(l)` the attention reads of layer l. */
const step = (att: (l: number) => Read[]) => [
  tiny,
  ...layerWeights.flatMap((w, l) => [w.qkv, ...att(l), w.o, w.up, w.down]),
  out,
  tiny,
];

/** Seconds per step of `reads` (best of three submits of `steps` steps, an empty submit's wait subtracted). */
async function time(reads: Read[]): Promise<number> {
  const run = async (n: number) => {
    const enc = dev.createCommandEncoder();
    for (let i = 0; i < n; i++) {
      const pass = enc.beginComputePass();
      for (const r of reads) {
        pass.setPipeline(r.pipe);
        pass.setBindGroup(0, r.bind);
        pass.dispatchWorkgroups(r.groups[0], r.groups[1]);
      }
      pass.end();
    }
    dev.queue.submit([enc.finish()]);
    await dev.queue.onSubmittedWorkDone();
  };
  await run(steps);
  const floor = await submitFloor(run);
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    await run(steps);
    best = Math.min(best, (performance.now() - t0) / 1000 - floor);
  }
  return best / steps;
}

const report = (label: string, reads: Read[], sec: number) => {
  const bytes = reads.reduce((a, r) => a + r.bytes, 0);
  console.log(
    `${label.padEnd(36)} ${String(reads.length).padStart(4)} dispatches ${(sec * 1e3).toFixed(3).padStart(7)} ms ${
      (1 / sec).toFixed(1).padStart(7)
    } tok/s ${(bytes / 1e6).toFixed(0).padStart(6)} MB → ${
      (100 * bytes / sec / probe.bytesPerSecond).toFixed(1).padStart(5)
    }% of probe (the bytes alone at the probe's rate: ${(bytes / probe.bytesPerSecond * 1e3).toFixed(3)} ms)`,
  );
};

const empty = step(() => [tiny]).map(() => tiny);
report("empty dispatches (one per op)", empty, await time(empty));
const d = cfg.headDim, nKv = cfg.nHeadKv;
for (const cache of caches) {
  const elem = cache === "f16" ? 2 : 4;
  for (const ctx of v.contexts!.split(",").map(Number)) {
    const S = ctx + 1; // the step's context, its own token included
    const perMode: number[] = [];
    for (const a of modes) {
      const spec = parseAttentionSpec(a);
      // Per layer: dense one read of K and V; SparQ the approx (S·r of Kt) then the partial (the rest of its transfer).
      const total = predictedTransfer(spec, d, S) * nKv * elem;
      const kt = spec.kind === "sparq" && !usesDense(spec, d, S) ? S * resolveParams(spec, d, S).r * nKv * elem : 0;
      const att = Array.from({ length: L }, () => kt ? [read(kt), read(total - kt)] : [read(total)]);
      const reads = step((l) => att[l]);
      const sec = await time(reads);
      report(`${a} ctx ${ctx} (${cache} cache)`, reads, sec);
      perMode.push(sec);
      for (const r of att.flat()) r.buf.destroy();
    }
    if (perMode.length > 1) {
      console.log(
        `  ceiling of the speedup over ${modes[0]} at ctx ${ctx} (${cache}): ${
          perMode.slice(1).map((s) => `${(perMode[0] / s).toFixed(2)}x`).join(", ")
        }`,
      );
    }
  }
}
