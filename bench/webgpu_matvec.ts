/**
 * Diagnostic for the decode matvec (Q4_0, Llama-2-7B shapes): GPU time per dispatch and GB/s of
 * weights for each kernel variant (b = a lane per Q4_0 block, w = a lane per u32 of a block,
 * g = w with a second matrix: gate·up fused; T threads per row set, R rows per thread; subgroup
 * reduction on/off), each checked against a CPU reference; plus the cost of one tiny dispatch
 * (barrier included) in a long compute pass, the floor of every op of a decode step.
 *
 *   deno run -A --unstable-webgpu bench/webgpu_matvec.ts [--shapes 11008x4096,4096x4096,4096x11008]
 *     [--variants b128x8,w128x8,g128x4] [--reps 100]
 * @module
 */
import { parseArgs } from "node:util";
import { getGpu, subgroupMode } from "../lib/webgpu/device.ts";
import { Kernels, type Op } from "../lib/webgpu/kernels.ts";
import { groupRows, matmulWgsl } from "../lib/webgpu/shaders/matmul.ts";
import { stepWgsl } from "../lib/webgpu/shaders/common.ts";
import { repack } from "../lib/webgpu/shaders/quant.ts";
import { submitFloor } from "../lib/webgpu/probe.ts";
import { GgmlType } from "../lib/ggml_types.ts";
import { q4_0MatvecShape, q4_0Reference } from "./q4_0_reference.ts";

const { values: v } = parseArgs({
  args: Deno.args,
  options: {
    shapes: { type: "string", default: "11008x4096,4096x4096,4096x11008,32000x4096" },
    variants: { type: "string", default: "" },
    reps: { type: "string", default: "100" },
  },
});
const reps = Number(v.reps);
const gpu = await getGpu();
const sg = await subgroupMode(gpu);
const k = new Kernels(gpu);
console.log(`subgroups: ${sg === undefined ? "no" : `yes (${JSON.stringify(sg)})`}`);

async function timeOps(ops: Op[], n: number): Promise<number> {
  const s = k.setStep({ nTok: 1 });
  const run = async (m: number) => {
    const enc = k.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    for (let i = 0; i < m; i++) k.encode(pass, ops, s);
    pass.end();
    k.device.queue.submit([enc.finish()]);
    await k.device.queue.onSubmittedWorkDone();
  };
  await run(2);
  const floor = await submitFloor(run);
  const t0 = performance.now();
  await run(n);
  return ((performance.now() - t0) / 1000 - floor) / n;
}

// One tiny dispatch (1 workgroup writing a buffer the next one writes too: a barrier each).
{
  const y = k.buffer(1024);
  const op = k.op(
    "tiny",
    `${stepWgsl(1)}
@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(local_invocation_index) i: u32) { y[i] += f32(step.nTok); }`,
    { 0: y },
    1,
    () => [1, 1, 1],
  );
  const sec = await timeOps([op], 2000);
  console.log(`tiny dispatch: ${(sec * 1e6).toFixed(2)} µs each (2000 in one pass)`);
}

const variants: [string, number, number, boolean][] = [];
const sgs = sg === undefined ? [false] : [true, false];
const list = v.variants ? v.variants.split(",") : [
  "b128x8",
  "b256x8",
  "w64x8",
  "w128x4",
  "w128x8",
  "w128x16",
  "w256x4",
  "w256x8",
  "w256x16",
  "g128x4",
  "g256x4",
];
for (const s of sgs) {
  for (const t of list) {
    const [a, b] = t.slice(1).split("x").map(Number);
    variants.push([t[0] === "w" ? "word" : t[0] === "g" ? "gated" : "block", a, b, s]);
  }
}

for (const shape of v.shapes!.split(",")) {
  const [rows, cols] = shape.split("x").map(Number);
  const nb = rows * cols / 32;
  const src = new Uint8Array(nb * 18);
  let seed = 1;
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 8;
  for (let b = 0; b < nb; b++) {
    const h = 0x1c00 + (rnd() % 1024); // scales in [2^-8, 2^-7)
    src[b * 18] = h & 255;
    src[b * 18 + 1] = h >> 8;
    for (let i = 2; i < 18; i++) src[b * 18 + i] = rnd() & 255;
  }
  const xs = new Float32Array(cols).map(() => (rnd() % 2001) / 1000 - 1);
  const ref = q4_0Reference(src, rows, cols, xs);
  const data = repack(GgmlType.Q4_0, src);
  const w = k.buffer(data.length), x = k.buffer(cols * 4), y = k.buffer(rows * 4);
  k.device.queue.writeBuffer(w, 0, data);
  k.device.queue.writeBuffer(x, 0, xs);
  const bytes = nb * 18;
  for (const [mode, T, R, s] of variants) {
    const ms = q4_0MatvecShape(rows, cols, {
      subgroups: s ? sg : undefined,
      mvThreads: T,
      mvRows: R,
      mvMode: mode === "block" ? "block" : "word",
      gated: mode === "gated" ? "swiglu" : undefined,
    });
    // gated: the same matrix as gate and up (y = silu(W·x)·(W·x)), twice the weight bytes.
    const op = k.op("mv", matmulWgsl(ms), { 0: w, 1: x, 2: y, 5: w, ...(ms.gated ? { 6: w, 7: w } : {}) }, 3, () => [
      Math.ceil(rows / groupRows(ms)),
      1,
      1,
    ]);
    k.device.queue.writeBuffer(y, 0, new Float32Array(rows).fill(NaN));
    await timeOps([op], reps * 4); // clocks up after the CPU reference
    const sec = await timeOps([op], reps);
    const got = new Float32Array(await k.read(y, 0, rows * 4));
    let err = 0, scale = 0;
    for (let r = 0; r < rows; r++) {
      const want = ms.gated ? ref[r] / (1 + Math.exp(-ref[r])) * ref[r] : ref[r];
      err = Math.max(err, Math.abs(got[r] - want));
      scale = Math.max(scale, Math.abs(want));
    }
    k.throwIfFailed();
    const rel = err / scale;
    console.log(
      `${shape.padEnd(11)} ${mode.padEnd(5)} T=${String(T).padStart(3)} R=${R} ${s ? "subgroup" : "shared  "}: ${
        (sec * 1e6).toFixed(1).padStart(6)
      } µs, ${((ms.gated ? 2 : 1) * bytes / sec / 1e9).toFixed(0).padStart(5)} GB/s, max err ${rel.toExponential(1)}${
        rel > 1e-4 ? "  WRONG" : ""
      }`,
    );
  }
}
k.destroy();
