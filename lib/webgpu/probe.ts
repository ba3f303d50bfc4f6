/**
 * GPU memory-bandwidth probe: a plain read kernel over one large buffer, many dispatches in one
 * submit, so the figure is what a WebGPU kernel can stream on this device (the yardstick for the
 * decode kernels, which are bandwidth-bound).
 * @module
 */
import type { Gpu } from "./device.ts";

const THREADS = 256;

const PER_THREAD = 16;

/** Workgroups of {@link probeWgsl} for `bytes` (x, y). */
export function probeGroups(bytes: number): [number, number] {
  const groups = Math.ceil(bytes / 16 / THREADS / PER_THREAD);
  return [Math.min(groups, 65535), Math.ceil(groups / 65535)];
}

/** Each workgroup sums a contiguous span of 256·16 vec4s; four independent loads per iteration. */
export function probeWgsl(vec4s: number): string {
  return `@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let base = (wg.x + wg.y * 65535u) * ${THREADS * PER_THREAD}u + lid;
  var a = vec4<f32>(0.0); var b = vec4<f32>(0.0); var c = vec4<f32>(0.0); var d = vec4<f32>(0.0);
  for (var j = 0u; j < ${PER_THREAD}u; j += 4u) {
    let i = base + j * ${THREADS}u;
    if (i + ${3 * THREADS}u < ${vec4s}u) {
      a += src[i]; b += src[i + ${THREADS}u]; c += src[i + ${2 * THREADS}u]; d += src[i + ${3 * THREADS}u];
    }
  }
  let s = a + b + c + d;
  // A store the compiler cannot prove dead keeps the loads; it (practically) never executes.
  if (s.x == 1.2345e-30) { dst[lid] = s.y + s.z + s.w; }
}`;
}

/** Seconds an empty submit takes to be reported done (minimum of five). */
export async function submitFloor(run: (n: number) => Promise<void>): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await run(0);
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return best;
}

/** Result of {@link gpuBandwidthProbe}. */
export interface ProbeResult {
  bytes: number;
  dispatches: number;
  seconds: number;
  /** Bytes read per second. */
  bytesPerSecond: number;
}

/**
 * Reads a `bytes` buffer `dispatches` times in one submit (after one warm-up submit) and returns
 * the read bandwidth (the completion-polling delay of an empty submit subtracted). `bytes` is capped by the device's binding limit.
 */
export async function gpuBandwidthProbe(gpu: Gpu, bytes = 1 << 30, dispatches = 50): Promise<ProbeResult> {
  const dev = gpu.device;
  bytes = Math.min(bytes, gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
  bytes -= bytes % 16;
  const [gx, gy] = probeGroups(bytes);
  const src = dev.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE });
  const dst = dev.createBuffer({ size: THREADS * 4, usage: GPUBufferUsage.STORAGE });
  const module = dev.createShaderModule({ code: probeWgsl(bytes / 16) });
  const pipeline = dev.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
  const bind = dev.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: { buffer: src } }, { binding: 1, resource: { buffer: dst } }],
  });
  const run = async (n: number) => {
    const enc = dev.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bind);
    for (let i = 0; i < n; i++) pass.dispatchWorkgroups(gx, gy);
    pass.end();
    dev.queue.submit([enc.finish()]);
    await dev.queue.onSubmittedWorkDone();
  };
  await run(1);
  // Deno resolves onSubmittedWorkDone by polling (milliseconds late): subtract an empty submit's wait.
  const floor = await submitFloor(run);
  const t0 = performance.now();
  await run(dispatches);
  const seconds = (performance.now() - t0) / 1000 - floor;
  src.destroy();
  dst.destroy();
  return { bytes, dispatches, seconds, bytesPerSecond: (bytes * dispatches) / seconds };
}
