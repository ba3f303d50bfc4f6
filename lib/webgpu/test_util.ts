/**
 * Test helper: the WebGPU device, or undefined with the reason printed (no adapter, or Deno run
 * without --unstable-webgpu), so GPU tests skip instead of failing on machines without WebGPU.
 * @module
 */
import { getGpu, type Gpu } from "./device.ts";

/** The device, or undefined after printing why GPU tests are skipped. */
export async function gpuOrSkip(): Promise<Gpu | undefined> {
  try {
    return await getGpu();
  } catch (e) {
    console.log(`  skipped: ${(e as Error).message}`);
    return undefined;
  }
}
