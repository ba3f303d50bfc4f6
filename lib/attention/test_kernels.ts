/**
 * Test helpers for the attention kernels: the kernel module instantiated directly on one shared memory (tests call
 * a kernel's exports with `ith = 0..nth-1` in turn, which is what `nth` threads compute), a bump allocator, and a
 * seeded random source. The module is `asm/build/sparq_simd.wasm`, or the file named by `SPARQ_TEST_WASM`.
 * @module
 */

/** The kernel module on a private memory. */
export interface KernelModule {
  // deno-lint-ignore no-explicit-any
  exports: Record<string, (...a: any[]) => any>;
  /** Allocates `bytes` (64-aligned); returns the byte pointer. */
  alloc(bytes: number): number;
  /** Frees every allocation and zeroes the memory. */
  reset(): void;
  f32(ptr: number, n: number): Float32Array;
  i32(ptr: number, n: number): Int32Array;
}

/** Loads the kernel module, or returns undefined (printing why) when it lacks `kernel`. */
export async function loadKernelModule(kernel: string, pages = 2048): Promise<KernelModule | undefined> {
  const path = Deno.env.get("SPARQ_TEST_WASM") ?? new URL("../../asm/build/sparq_simd.wasm", import.meta.url).pathname;
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = await Deno.readFile(path);
  } catch {
    console.log(`  skipped: ${path} not found (run deno task build)`);
    return undefined;
  }
  const module = await WebAssembly.compile(bytes);
  if (!WebAssembly.Module.exports(module).some((e) => e.name === kernel)) {
    console.log(`  skipped: ${path} has no ${kernel} (run deno task build)`);
    return undefined;
  }
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  // deno-lint-ignore no-explicit-any
  const exports = instance.exports as Record<string, (...a: any[]) => any>;
  const base = Math.ceil(exports.heap_base() / 64) * 64;
  let top = base;
  return {
    exports,
    alloc(n: number) {
      const p = top;
      top = Math.ceil((top + n) / 64) * 64;
      if (top > memory.buffer.byteLength) throw new Error("test kernel memory exhausted");
      return p;
    },
    reset() {
      new Uint8Array(memory.buffer, base, top - base).fill(0);
      top = base;
    },
    f32: (p: number, n: number) => new Float32Array(memory.buffer, p, n),
    i32: (p: number, n: number) => new Int32Array(memory.buffer, p, n),
  };
}

/** Seeded uniform [0, 1) generator (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal sample (Box–Muller) from a uniform source. */
export function randn(next: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
}
