/**
 * GPU memory-bandwidth probe: a plain read kernel over one large buffer, many dispatches in one
 * submit, so the figure is what a WebGPU kernel can stream on this device (the yardstick for the
 * decode kernels, which are bandwidth-bound).
 * @module
 */
import type { Gpu } from "./device.ts";

const THREADS = 256;

function probeWgsl(vec4s: number, groups: number): string {
  return `@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(${THREADS})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  // Four independent loads in flight per iteration.
  let n = ${groups * THREADS}u;
  var a = vec4<f32>(0.0); var b = vec4<f32>(0.0); var c = vec4<f32>(0.0); var d = vec4<f32>(0.0);
  var i = gid.x;
  for (; i + 3u * n < ${vec4s}u; i += 4u * n) { a += src[i]; b += src[i + n]; c += src[i + 2u * n]; d += src[i + 3u * n]; }
  for (; i < ${vec4s}u; i += n) { a += src[i]; }
  let s = a + b + c + d;
  dst[gid.x] = s.x + s.y + s.z + s.w;
}`;
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
 * the read bandwidth. `bytes` is capped by the device's binding limit.
 */
export async function gpuBandwidthProbe(gpu: Gpu, bytes = 1 << 30, dispatches = 20): Promise<ProbeResult> {
  const dev = gpu.device;
  bytes = Math.min(bytes, gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
  bytes -= bytes % 16;
  const groups = Math.min(4 * 132 * 8, Math.ceil(bytes / 16 / THREADS));
  const src = dev.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE });
  const dst = dev.createBuffer({ size: groups * THREADS * 4, usage: GPUBufferUsage.STORAGE });
  const module = dev.createShaderModule({ code: probeWgsl(bytes / 16, groups) });
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
    for (let i = 0; i < n; i++) pass.dispatchWorkgroups(groups);
    pass.end();
    dev.queue.submit([enc.finish()]);
    await dev.queue.onSubmittedWorkDone();
  };
  await run(1);
  const t0 = performance.now();
  await run(dispatches);
  const seconds = (performance.now() - t0) / 1000;
  src.destroy();
  dst.destroy();
  return { bytes, dispatches, seconds, bytesPerSecond: (bytes * dispatches) / seconds };
}
