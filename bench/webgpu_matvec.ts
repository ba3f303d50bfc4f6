/**
 * Diagnostic for the decode matvec (Q4_0, 11008 × 4096 like Llama-2-7B's ffn_up): GPU time of the
 * real kernel and of variants with parts removed, to see what bounds it.
 *
 *   deno run -A --unstable-webgpu bench/webgpu_matvec.ts
 * @module
 */
import { getGpu } from "../lib/webgpu/device.ts";
import { Kernels } from "../lib/webgpu/kernels.ts";
import { matmulWgsl } from "../lib/webgpu/shaders/matmul.ts";
import { submitFloor } from "../lib/webgpu/probe.ts";
import { GgmlType } from "../lib/ggml_types.ts";

const rows = 11008, cols = 4096, reps = 100;
const k = new Kernels(await getGpu());
const bytes = rows * cols / 32 * 18;
const w = k.buffer(bytes + 4), x = k.buffer(cols * 4), y = k.buffer(rows * 4);
const base = matmulWgsl({
  type: GgmlType.Q4_0,
  cols,
  rows,
  row0: 0,
  biasRow0: 0,
  xStride: cols,
  yStride: rows,
  tile: 1,
  accumulate: false,
  bias: false,
  tokens: "nTok",
});
const variants: Record<string, string> = {
  real: base,
  "no x loads": base.replace(/xv\[i\] = x\[[^\]]*\];/, "xv[i] = vec4<f32>(f32(i)) + x[0];"),
  "no dequant": base.replace(
    /let q = qv\[i\];[\s\S]*?\n {2}}\n {2}return q4d\(blk\) \* s;/,
    "s += f32(qv[i]) * (*xv)[i].x;\n  }\n  return q4d(blk) * s;",
  ),
};
const s = k.setStep({ nTok: 1 });
for (const [name, wgsl] of Object.entries(variants)) {
  const op = k.op(name, wgsl, { 0: w, 1: x, 2: y, 5: w }, 3, () => [Math.ceil(rows / 16), 1, 1]);
  const run = async (n: number) => {
    const enc = k.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    for (let i = 0; i < n; i++) k.encode(pass, [op], s);
    pass.end();
    k.device.queue.submit([enc.finish()]);
    await k.device.queue.onSubmittedWorkDone();
  };
  await run(2);
  const floor = await submitFloor(run);
  const t0 = performance.now();
  await run(reps);
  const sec = ((performance.now() - t0) / 1000 - floor) / reps;
  k.throwIfFailed();
  console.log(
    `${name.padEnd(12)} ${(sec * 1e6).toFixed(1)} µs per dispatch, ${(bytes / sec / 1e9).toFixed(0)} GB/s of weights`,
  );
}
k.destroy();
