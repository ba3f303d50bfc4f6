/**
 * Memory read bandwidth as the WebAssembly kernels see it: the streaming-read probe (`asm/bandwidth.ts`) over a
 * buffer much larger than the caches, on all of the runtime's threads. Benchmarks and `sparq profile` report
 * kernel throughput as a fraction of this figure.
 * @module
 */
import type { Runtime } from "./wasm_runtime.ts";

/** Default probe size: 1 GiB, far beyond the 8 MiB L3 of the project machine. */
export const PROBE_BYTES = 1 << 30;

/**
 * Best read bandwidth in GB/s (1e9 bytes/s) over `repeats` passes of a `bytes` buffer, using all of `runtime`'s
 * threads. Allocates a shard of `bytes` (kept until the runtime is dropped). The buffer is written first:
 * untouched pages would all map to the kernel's zero page and read from cache.
 */
export function measureBandwidth(runtime: Runtime, bytes = PROBE_BYTES, repeats = 5): number {
  const shard = runtime.newShard(bytes + (64 << 10));
  const src = shard.alloc(bytes, 64);
  const out = shard.alloc(4 * runtime.threads, 64);
  // Distinct contents per 4 KiB page: identical pages could be merged by the host (KSM) and read from cache.
  shard.u8(src, bytes).fill(1);
  const words = shard.i32(src, bytes >> 2);
  for (let i = 0; i < words.length; i += 1024) words[i] = i;
  let best = Infinity;
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    shard.run("bandwidth_probe", [src, bytes, out]);
    best = Math.min(best, performance.now() - t0);
  }
  return bytes / (best * 1e6);
}
