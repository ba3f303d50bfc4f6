/**
 * WebGPU adapter and device acquisition. The device is created with the adapter's own limits (so
 * multi-GiB weights and long KV caches fit) and with the optional features `subgroups` (the matvec
 * reductions, where Deno exposes it) and `timestamp-query` (`profile`'s per-op GPU times) when the
 * adapter offers them, and `shader-f16`: an f16 KV cache (`--cache-type f16`) is then declared as f16 arrays
 * (without it, as halves packed in u32 words). Other f16 data (F16 weights, quantization scales) are read as
 * u32 pairs through `unpack2x16float`, which is core WGSL.
 * @module
 */
import { SparqError } from "../errors.ts";
import { tuningEnv } from "../env.ts";

/** Optional features requested when the adapter has them. */
export const OPTIONAL_FEATURES = ["shader-f16", "subgroups", "timestamp-query"] as const;

/** Limits copied from the adapter into the device request (the defaults are far too small for LLMs). */
const LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBuffersPerShaderStage",
  "maxBindGroups",
] as const;

/** A device plus what the kernels need to know about it. */
export interface Gpu {
  adapter: GPUAdapter;
  device: GPUDevice;
  /** Optional features that were enabled. */
  features: Set<string>;
  limits: GPUSupportedLimits;
  /** Adapter description (vendor, architecture, device). */
  info: GPUAdapterInfo;
}

let cached: Promise<Gpu> | undefined;

/**
 * The process-wide WebGPU device (created on first use). Throws SparqError "no WebGPU adapter: …"
 * when WebGPU is missing (Deno without `--unstable-webgpu`) or no adapter is found.
 */
export function getGpu(): Promise<Gpu> {
  cached ??= createGpu().catch((e) => {
    cached = undefined;
    throw e;
  });
  return cached;
}

async function createGpu(): Promise<Gpu> {
  const gpu = (navigator as { gpu?: GPU }).gpu;
  if (!gpu) throw new SparqError("no WebGPU adapter: navigator.gpu is missing (run Deno with --unstable-webgpu)");
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  } catch (e) {
    throw new SparqError(`no WebGPU adapter: ${(e as Error).message}`);
  }
  if (!adapter) throw new SparqError("no WebGPU adapter: requestAdapter() found none (no Vulkan/Metal/DX12 driver?)");
  const features = new Set<string>(OPTIONAL_FEATURES.filter((f) => adapter!.features.has(f)));
  const requiredLimits: Record<string, number> = {};
  for (const k of LIMITS) {
    const v = (adapter.limits as unknown as Record<string, number>)[k];
    if (typeof v === "number") requiredLimits[k] = v;
  }
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({
      requiredFeatures: [...features] as GPUFeatureName[],
      requiredLimits,
    });
  } catch {
    // Some drivers refuse a feature/limit combination they advertise: fall back to limits only, then defaults.
    features.clear();
    try {
      device = await adapter.requestDevice({ requiredLimits });
    } catch (e) {
      try {
        device = await adapter.requestDevice();
      } catch {
        throw new SparqError(`no WebGPU adapter: requestDevice failed (${(e as Error).message})`);
      }
    }
  }
  return { adapter, device, features, limits: device.limits, info: adapter.info };
}

/**
 * How kernels may use subgroup operations on `gpu`: the WGSL line to put first (`"enable subgroups;"`
 * or `""`, depending on what this WGSL compiler accepts), or undefined when the device has no
 * subgroups (the kernels then reduce through workgroup memory). Probed once per device by compiling
 * a small shader. `SPARQ_GPU_SUBGROUPS=0` disables them.
 */
export async function subgroupMode(gpu: Gpu): Promise<string | undefined> {
  let p = probed.get(gpu.device);
  if (!p) {
    p = probeSubgroups(gpu);
    probed.set(gpu.device, p);
  }
  return await p;
}

const probed = new WeakMap<GPUDevice, Promise<string | undefined>>();

async function probeSubgroups(gpu: Gpu): Promise<string | undefined> {
  if (!gpu.features.has("subgroups")) return undefined;
  if (tuningEnv("SPARQ_GPU_SUBGROUPS") === "0") return undefined;
  for (const directive of ["enable subgroups;", ""]) {
    const code = `${directive}
@group(0) @binding(0) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(subgroup_size) n: u32) {
  o[lid] = subgroupAdd(o[lid]) + f32(n);
}`;
    gpu.device.pushErrorScope("validation");
    try {
      const module = gpu.device.createShaderModule({ code });
      gpu.device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
    } catch {
      await gpu.device.popErrorScope();
      continue;
    }
    if (!await gpu.device.popErrorScope()) return directive;
  }
  return undefined;
}

/** Multi-line description of the adapter, its features and the limits that matter (`sparq info --gpu`). */
export async function describeGpu(): Promise<string> {
  const g = await getGpu();
  const i = g.info;
  const lim = g.limits as unknown as Record<string, number>;
  const lines = [
    `adapter: ${i.description || "(no description)"}`,
    `vendor: ${i.vendor || "?"}  architecture: ${i.architecture || "?"}  device: ${i.device || "?"}` +
    (i.isFallbackAdapter ? "  (software fallback adapter)" : ""),
    `optional features: ${OPTIONAL_FEATURES.map((f) => `${f}=${g.features.has(f) ? "yes" : "no"}`).join(" ")}`,
  ];
  lines.push(`subgroup kernels: ${(await subgroupMode(g)) === undefined ? "no" : "yes"}`);
  for (const k of LIMITS) lines.push(`${k}: ${lim[k]}`);
  return lines.join("\n");
}
