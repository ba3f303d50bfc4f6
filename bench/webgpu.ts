/**
 * WebGPU decode benchmark: for a model (e.g. `sparq synth --shape llama2-7b --type q4_0`), decode
 * tokens/s at each context (random K/V fill) for dense and SparQ, bytes read per token, and the same
 * run's bandwidth probe (1 GiB read kernel, many dispatches in one submit).
 *
 *   deno run -A --unstable-webgpu bench/webgpu.ts --model M.gguf [--contexts 512,8192]
 *     [--attention dense,sparq:ratio=1/8] [--steps 64] [--peak 3.35e12] [--json FILE]
 *
 * `--micro` times the attention kernels alone (no model: random K/V/q of `--shape
 * layers,heads,kvHeads,headDim`, llama2-7b by default) for SparQ kernel variants (`--variants`,
 * comma-separated `fused|split` + `bins|radix` [+ `merged`] [+ `sia`: select in the last approx workgroup]
 * [+ `wgN`: select threads] [+ `pN`: approx positions per thread] [+ `awgN`: approx threads] [+ `reserve`: one
 * reservation per select thread in the positions list] [+ `fold`: softmax statistics in one fold]), per kind and as whole layers, and checks that every
 * variant selects the same positions as the first and writes the same output up to rounding.
 *
 * `--prefill 0,1536` times one prompt batch of `--batch` tokens (default 512) after prompts of those lengths: wall
 * tokens/s and GPU time per op kind.
 *
 * `--mv` times the Q4_0 decode matvec alone (random weights, `--mv-shapes rows×cols`, `--mv-copies`
 * copies dispatched in turn so that the weights come from memory) for each of `--mv-variants`
 * (`[x]mode:T×R[wN]`, x: timing only, integer dot products replaced by xors; mode vec|dp4a|dp4s|word|block, N: threads per workgroup (vec modes; default 256), `g` prefix: gated gate·up with the same matrix twice,
 * then `n`: RMSNorm fused), each checked against a CPU reference. `--matvec word,vec` runs the model section once per
 * matvec mode (SPARQ_GPU_MATVEC set before each load), in the same process as the probe; `--sections
 * "SPARQ_GPU_MATVEC=dp4a SPARQ_GPU_DENSE_FUSE=0,defaults"` once per set of tuning variables.
 * @module
 */
import { parseArgs } from "node:util";
import { describeGpu, getGpu } from "../lib/webgpu/device.ts";
import { loadGpuModel } from "../lib/webgpu/model.ts";
import { gpuBandwidthProbe, probeGroups, probeWgsl } from "../lib/webgpu/probe.ts";
import { Kernels, type Op } from "../lib/webgpu/kernels.ts";
import { GpuAttention, type SparqKernelOptions } from "../lib/webgpu/attention.ts";
import { parseAttentionSpec } from "../lib/attention/spec.ts";
import { stepWgsl } from "../lib/webgpu/shaders/common.ts";
import { groupRows, type MatmulShape, matmulWgsl } from "../lib/webgpu/shaders/matmul.ts";
import { repack } from "../lib/webgpu/shaders/quant.ts";
import { GgmlType } from "../lib/ggml_types.ts";
import { q4_0MatvecShape, q4_0Reference } from "./q4_0_reference.ts";

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
    micro: { type: "boolean", default: false },
    shape: { type: "string", default: "32,32,32,128" },
    variants: { type: "string", default: "fused+bins+merged,fused+bins,split+radix" },
    repeats: { type: "string", default: "50" },
    mv: { type: "boolean", default: false },
    "mv-shapes": { type: "string", default: "12288x4096,4096x4096,11008x4096,4096x11008" },
    "mv-variants": { type: "string", default: "dp4a:64x8,dp4s:64x8,gndp4a:64x8,gndp4s:64x8" },
    "mv-copies": { type: "string", default: "8" },
    matvec: { type: "string", default: "" },
    sections: { type: "string", default: "" },
    prefill: { type: "string" },
    batch: { type: "string", default: "512" },
  },
});
if (!v.model && !v.micro && !v.mv) throw new Error("--model (or --micro) is required");
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

if (v.micro || v.mv) {
  if (v.mv) await mvBench();
  if (v.micro) await micro();
  Deno.exit(0);
}
if (v.prefill) {
  await prefillBench(v.prefill.split(",").map(Number), Number(v.batch));
  Deno.exit(0);
}

/**
 * `--prefill P1,P2`: a prompt batch of `--batch` random tokens after a prompt of P tokens (each run
 * from an empty cache): wall-clock tokens/s of `evaluate` (last logits read back), GPU time per op
 * kind replayed alone, and the batch's multiply-adds per second in its matmuls (2 × weights × tokens).
 */
async function prefillBench(starts: number[], batch: number): Promise<void> {
  const model = await loadGpuModel(v.model!, { ctx: Math.max(...starts) + batch + 1, batch });
  const rnd = (n: number) => Array.from({ length: n }, (_, i) => 3 + ((i * 7919) % (model.config.nVocab - 3)));
  for (const p of starts) {
    model.reset();
    if (p > 0) await model.evaluate(rnd(p));
    await model.evaluate(rnd(batch)); // compiles and warms up
    model.reset();
    if (p > 0) await model.evaluate(rnd(p));
    const t0 = performance.now();
    await model.evaluate(rnd(batch));
    const s = (performance.now() - t0) / 1000;
    model.reset();
    if (p > 0) await model.evaluate(rnd(p));
    const prof = await model.profileOps(3, true, batch);
    console.log(
      `prefill of ${batch} tokens after ${p}: ${(batch / s).toFixed(0)} tok/s (${
        (1000 * s).toFixed(1)
      } ms wall)  loadavg ${load()}`,
    );
    console.log(Object.entries(prof).map(([k, ms]) => `  ${k}: ${ms.toFixed(3)} ms`).join("\n"));
  }
  model.close();
}

/** The Q4_0 decode matvec variants alone: µs per dispatch (n in one pass), GB/s of weights, error vs a CPU reference. */
async function mvBench(): Promise<void> {
  const k = new Kernels(gpu);
  const n = Number(v.repeats);
  const s = k.setStep({ nTok: 1 });
  for (const shape of v["mv-shapes"]!.split(",")) {
    const [rows, cols] = shape.split("x").map(Number);
    const nb = rows * cols / 32;
    const src = new Uint8Array(nb * 18);
    let seed = 1;
    const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8;
    for (let b = 0; b < nb; b++) {
      const h = 0x1c00 + (rnd() % 1024); // scales in [2^-8, 2^-7)
      src[b * 18] = h & 255;
      src[b * 18 + 1] = h >> 8;
      for (let i = 2; i < 18; i++) src[b * 18 + i] = rnd() & 255;
    }
    const xs = new Float32Array(cols).map(() => (rnd() % 2001) / 1000 - 1);
    const ref = q4_0Reference(src, rows, cols, xs);
    const data = repack(GgmlType.Q4_0, src);
    // `--mv-copies` copies of the matrix, dispatched in turn, so that (as across a model's layers)
    // the weights come from memory, not from the 50 MB L2.
    const copies = Number(v["mv-copies"]);
    const ws = Array.from({ length: copies }, () => k.buffer(data.length));
    const x = k.buffer(cols * 4), y = k.buffer(rows * 4), nwb = k.buffer(cols * 4);
    for (const b of ws) k.device.queue.writeBuffer(b, 0, data);
    k.device.queue.writeBuffer(x, 0, xs);
    // Fused-RMSNorm variants: the reference's input is rmsnorm(x)∘nw.
    const nw = new Float32Array(cols).map(() => 0.5 + (rnd() % 1001) / 1000);
    k.device.queue.writeBuffer(nwb, 0, nw);
    const eps = 1e-5;
    const nsc = 1 / Math.sqrt(xs.reduce((a, e) => a + e * e, 0) / cols + eps);
    const refN = q4_0Reference(src, rows, cols, Array.from(xs, (e, i) => e * nw[i])).map((e) => e * nsc);
    // The floor: the probe's plain read kernel over this matrix's bytes.
    {
      const bytes = nb * 18 - (nb * 18) % 16;
      const [gx, gy] = probeGroups(bytes);
      const pipeline = k.pipeline(probeWgsl(bytes / 16));
      const ops: Op[] = ws.map((b) => ({
        name: "read",
        pipeline,
        bind: k.device.createBindGroup({
          layout: pipeline.getBindGroupLayout(0),
          entries: [{ binding: 0, resource: { buffer: b } }, { binding: 1, resource: { buffer: k.buffer(1024) } }],
        }),
        groups: () => [gx, gy, 1],
      }));
      await timeOps(k, ops, s, Math.max(n, 200));
      const gsec = (await k.gpuSeconds(ops, s, n) ?? NaN) / n / copies;
      console.log(
        `mv ${shape.padEnd(11)} ${"read".padEnd(12)}: GPU ${(gsec * 1e6).toFixed(1).padStart(6)} µs, ${
          (bytes / gsec / 1e9).toFixed(0).padStart(5)
        } GB/s (${(100 * bytes / gsec / probe.bytesPerSecond).toFixed(0)}% of probe)`,
      );
    }
    for (const variant of v["mv-variants"]!.split(",")) {
      // `x` prefix (timing only, results wrong): the integer dot products replaced by two xors, to see what they cost.
      const noDot = variant.startsWith("x");
      const m = variant.replace(/^x/, "").match(/^(g?)(n?)(vec|dp4a|dp4s|word|block):(\d+)x(\d+)(?:w(\d+))?$/);
      if (!m) throw new Error(`--mv-variants: ${variant}`);
      const ms = q4_0MatvecShape(rows, cols, {
        mvMode: m[3] as MatmulShape["mvMode"],
        mvThreads: Number(m[4]),
        mvRows: Number(m[5]),
        ...(m[6] ? { mvWg: Number(m[6]) } : {}),
        gated: m[1] ? "swiglu" : undefined,
        ...(m[2] ? { rmsNorm: { eps } } : {}),
      });
      const wgsl = noDot
        ? matmulWgsl(ms).replace(
          "return dot4I8Packed(q & 0x0f0f0f0fu, xl) + dot4I8Packed((q >> 4u) & 0x0f0f0f0fu, xh);",
          "return i32(q ^ xl ^ xh);",
        )
        : matmulWgsl(ms);
      const ops = ws.map((w) =>
        k.op(
          "mv",
          wgsl,
          { 0: w, 1: x, 2: y, 5: w, ...(ms.gated ? { 6: w, 7: w } : {}), ...(m[2] ? { 8: nwb } : {}) },
          3,
          () => [
            Math.ceil(rows / groupRows(ms)),
            1,
            1,
          ],
        )
      );
      k.device.queue.writeBuffer(y, 0, new Float32Array(rows).fill(NaN));
      await timeOps(k, ops, s, Math.max(n, 200)); // clocks up
      const sec = await timeOps(k, ops, s, n) / n / copies;
      const gsec = (await k.gpuSeconds(ops, s, n) ?? NaN) / n / copies;
      const got = new Float32Array(await k.read(y, 0, rows * 4));
      k.throwIfFailed();
      let err = 0, scale = 0;
      for (let r = 0; r < rows; r++) {
        const rr = ms.rmsNorm ? refN[r] : ref[r];
        const want = ms.gated ? rr / (1 + Math.exp(-rr)) * rr : rr;
        err = Math.max(err, Math.abs(got[r] - want));
        scale = Math.max(scale, Math.abs(want));
      }
      const rel = err / scale;
      const bytes = (ms.gated ? 2 : 1) * nb * 18;
      console.log(
        `mv ${shape.padEnd(11)} ${variant.padEnd(12)}: GPU ${(gsec * 1e6).toFixed(1).padStart(6)} µs, ${
          (bytes / gsec / 1e9).toFixed(0).padStart(5)
        } GB/s (${(100 * bytes / gsec / probe.bytesPerSecond).toFixed(0)}% of probe); wall ${
          (sec * 1e6).toFixed(1)
        } µs; max rel err ${rel.toExponential(1)}${
          noDot
            ? "  (no dot products: timing only)"
            : rel > (ms.mvMode?.startsWith("dp4") ? 1e-2 : 1e-4) || !(rel >= 0)
            ? "  WRONG"
            : ""
        }`,
      );
    }
  }
  k.destroy();
}

/** Seconds of `n` replays of `ops` in one compute pass and one submit (after one untimed run), minus an empty submit. */
async function timeOps(k: Kernels, ops: Op[], s: Parameters<Kernels["encode"]>[2], n: number): Promise<number> {
  const run = async (ops: Op[], n: number) => {
    k.submit(ops, s, n);
    await k.device.queue.onSubmittedWorkDone();
  };
  await run(ops, 1);
  let floor = Infinity;
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    await run([], 0);
    floor = Math.min(floor, performance.now() - t);
  }
  const t0 = performance.now();
  await run(ops, n);
  return ((performance.now() - t0) - floor) / 1000;
}

async function micro(): Promise<void> {
  const [nLayer, nHead, nKv, d] = v.shape!.split(",").map(Number);
  const mode = modes.find((m) => m.startsWith("sparq")) ?? "sparq:ratio=1/8";
  const spec = parseAttentionSpec(mode);
  const ctx = Math.max(...contexts) + 2;
  const n = Number(v.repeats);
  const ref = new Map<number, { sel: number[][]; out: Float32Array }>();
  console.log(`micro: ${nLayer} layers × ${nHead} heads (${nKv} KV) × ${d}, ${mode}, ${n} repeats per timing`);
  for (const variant of v.variants!.split(",")) {
    const wg = variant.match(/(?<!a)wg(\d+)/), ap = variant.match(/(?<!a)p(\d+)/), aw = variant.match(/awg(\d+)/);
    const opts: SparqKernelOptions = {
      fuseCombine: variant.includes("fused"),
      bins: !variant.includes("radix"),
      ...(wg ? { selectWg: Number(wg[1]) } : {}),
      ...(ap ? { approxPerThread: Number(ap[1]) } : {}),
      mergedMax: variant.includes("merged") ? 1 << 30 : 0,
      selectInApprox: variant.includes("sia"),
      tune: {
        ...(aw ? { approxWg: Number(aw[1]) } : {}),
        reserve: variant.includes("reserve"),
        oneFold: variant.includes("fold"),
      },
    };
    const k = new Kernels(gpu);
    try {
      const q = k.buffer(nHead * d * 4), out = k.buffer(nHead * d * 4);
      const att = new GpuAttention(k, { nLayer, nHead, nKv, d, ctx, batch: 1 }, spec, q, out, opts);
      let seed = 7;
      const Q = Float32Array.from({ length: nHead * d }, () => {
        seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
        return (seed / 2 ** 31 - 1) * 3;
      });
      k.device.queue.writeBuffer(q, 0, Q);
      const fs = k.setStep({ pos0: 0, nTok: ctx - 1, fillLen: ctx - 1, seed: 12345 });
      k.submit(att.randomFillOps(), fs);
      await k.device.queue.onSubmittedWorkDone();
      if (variant === v.variants!.split(",")[0]) {
        // The fixed cost of a dispatch: a one-thread kernel writing one word, nLayer times (a barrier between each).
        const nopOp = (name: string, word: number) =>
          k.op(
            name,
            `${stepWgsl(0)}\n@group(0) @binding(1) var<storage, read_write> o: array<u32>;\n` +
              `@compute @workgroup_size(1) fn main() { o[${word}] = o[${word}] + step.pos0; }`,
            { 1: out },
            0,
            () => [1, 1, 1],
          );
        const nop = nopOp("nop", 0);
        const s = k.setStep({ pos0: 1 });
        const t = (1000 * (await timeOps(k, Array(nLayer).fill(nop), s, n))) / n;
        console.log(`empty dispatch ×${nLayer}: ${t.toFixed(3)} ms (${(1000 * t / nLayer).toFixed(1)} µs each)`);
        // The same with two pipelines in turn (a model step changes pipeline at every dispatch).
        const nop2 = nopOp("nop2", 1);
        const alt = Array.from({ length: nLayer }, (_, i) => i % 2 ? nop2 : nop);
        const t2 = (1000 * (await timeOps(k, alt, s, n))) / n;
        console.log(
          `empty dispatch ×${nLayer}, two pipelines in turn: ${t2.toFixed(3)} ms (${
            (1000 * t2 / nLayer).toFixed(1)
          } µs each)`,
        );
      }
      for (const c of contexts) {
        for (const sp of [spec, { kind: "dense" as const }]) {
          if (sp.kind === "dense" && variant !== v.variants!.split(",")[0]) continue;
          att.setSpec(sp);
          const s = k.setStep({ pos0: c, nTok: 1, nOut: 1, ...att.stepFields(c, 1) });
          // This step's dispatches (ops skipped at this context left out).
          const layers = Array.from(
            { length: nLayer },
            (_, l) => att.ops(l, 1).filter((op) => op.groups(s).every((x) => x > 0)),
          );
          const kinds = new Map<string, Op[]>();
          for (const op of layers.flat()) kinds.set(op.name, [...(kinds.get(op.name) ?? []), op]);
          // Working clocks first (an untimed ~0.2 s of the same work).
          await timeOps(
            k,
            layers.flat(),
            s,
            Math.max(10, Math.round(0.2 / Math.max(1e-4, await timeOps(k, layers.flat(), s, 1)))),
          );
          const parts: string[] = [];
          for (const [name, ops] of kinds) {
            parts.push(`${name} ${(1000 * (await timeOps(k, ops, s, n)) / n).toFixed(3)}`);
          }
          const all = (1000 * (await timeOps(k, layers.flat(), s, n))) / n;
          console.log(
            `${(sp.kind === "dense" ? "dense" : variant).padEnd(14)} ctx ${String(c).padStart(5)}: all ${
              all.toFixed(3)
            } ms per token (${nLayer} layers; ${(1000 * all / nLayer).toFixed(1)} µs per layer) = ${parts.join(" + ")}`,
          );
          if (sp.kind === "dense") continue;
          // Selected sets and output of one step, against the first variant.
          const f = att.stepFields(c, 1);
          const raw = new Uint32Array(await k.read(att.selected!, 0, nKv * ctx * 4));
          const sel = Array.from(
            { length: nKv },
            (_, g) => [...raw.subarray(g * ctx, g * ctx + f.kk!)].sort((a, b) => a - b),
          );
          const o = new Float32Array(await k.read(out, 0, nHead * d * 4));
          k.throwIfFailed();
          const r = ref.get(c);
          if (!r) ref.set(c, { sel, out: o });
          else {
            const same = sel.every((x, g) => x.join() === r.sel[g].join());
            let max = 0;
            for (let i = 0; i < o.length; i++) max = Math.max(max, Math.abs(o[i] - r.out[i]));
            console.log(
              `  vs ${v.variants!.split(",")[0]}: selected sets ${same ? "identical" : "DIFFER"}, max |Δout| ${
                max.toExponential(2)
              }`,
            );
          }
        }
      }
    } finally {
      k.destroy();
    }
  }
}

// One load for all modes: the model is built for the SparQ mode (Kt exists) and switched to dense.
const sparqMode = modes.find((m) => m.startsWith("sparq"));
const rows: Record<string, unknown>[] = [];
// `--sections "A=1 B=2,C=3"`: one model section per comma-separated item, with those SPARQ_GPU_*
// variables set (and the previous section's unset); `--matvec m1,m2` is `--sections
// SPARQ_GPU_MATVEC=m1,SPARQ_GPU_MATVEC=m2`.
const sections = v.sections
  ? v.sections.split(",")
  : v.matvec
  ? v.matvec.split(",").map((m) => `SPARQ_GPU_MATVEC=${m}`)
  : [""];
let setVars: string[] = [];
for (const sec of sections) {
  for (const k of setVars) Deno.env.delete(k);
  setVars = [];
  for (const kv of sec.split(" ").filter((x) => x.includes("="))) {
    const [k, val] = kv.split("=");
    Deno.env.set(k, val);
    setVars.push(k);
  }
  if (sec) console.log(`## ${sec.trim()}`);
  await modelSection(sec.trim());
}

async function modelSection(mv: string): Promise<void> {
  const t0 = performance.now();
  const model = await loadGpuModel(v.model!, {
    ctx: Math.max(...contexts) + steps + 2,
    attention: sparqMode ?? "dense",
  });
  console.log(`loaded ${v.model} in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${model.config.name}`);
  const mine = [];
  for (const ctx of contexts) {
    for (const mode of modes) {
      model.setAttention(mode);
      const b = await model.benchDecode(ctx, steps);
      const prof = await model.profileOps(10, true);
      console.log(
        Object.entries(prof).map(([k, ms]) => `  ${k}: ${ms.toFixed(3)} ms`).join("\n"),
      );
      const gbs = b.bytesPerToken * b.tokensPerSecond;
      const row = {
        section: mv || "(default)",
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
      mine.push(row);
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
    const d = mine.find((r) => r.ctx === ctx && r.attention === "dense");
    for (const r of mine.filter((r) => r.ctx === ctx && r.attention !== "dense")) {
      if (d) {
        console.log(`${r.attention} vs dense at ctx ${ctx}: ${(r.tokensPerSecond / d.tokensPerSecond).toFixed(2)}×`);
      }
    }
  }
  model.close();
}
if (v.json) {
  Deno.writeTextFileSync(v.json, JSON.stringify({ gpu: await describeGpu(), probe, rows }, null, 2));
}
