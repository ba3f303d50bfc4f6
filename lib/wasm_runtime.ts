/**
 * The WebAssembly kernel runtime: loads the kernel module (relaxed-SIMD build when the engine accepts it), owns
 * the worker pool, and hands out shards — one shared `WebAssembly.Memory` each, with an instance of the module in
 * every thread and a bump allocator. A model larger than one wasm32 memory is split by layer over several shards.
 *
 * ```ts
 * const rt = await createRuntime({ threads: 2 });
 * const shard = rt.newShard(64 << 20);
 * const w = shard.alloc(rows * cols * 4), x = shard.alloc(cols * 4), y = shard.alloc(rows * 4);
 * shard.run("matvec_f32", [w, x, y, rows, cols]);   // all threads, `ith, nth` appended
 * rt.close();
 * ```
 * @module
 */
import { SparqError } from "./errors.ts";
import { ThreadPool } from "./thread_pool.ts";
import { adviseHugePages, hugePagesUnavailable } from "./huge_pages.ts";

const PAGE = 65536;
/** A wasm32 memory holds at most 65536 pages = 4 GiB. */
const MAX_PAGES = 65536;
/** Default largest shard: below 4 GiB so that one memory per shard always fits. */
export const DEFAULT_MAX_SHARD_BYTES = 3.75 * 1024 ** 3;

/** Options of `createRuntime`. */
export interface RuntimeOptions {
  /** Threads including the calling one (default `navigator.hardwareConcurrency`). */
  threads?: number;
  /** Largest shard `newShard` accepts, in bytes (default 3.75 GiB; tests force several small shards). */
  maxShardBytes?: number;
  /** Use the plain SIMD build even when relaxed SIMD validates (tests, benchmarks). */
  noRelaxed?: boolean;
  /**
   * Back every shard with transparent huge pages (`--huge-pages`; Linux, needs `--allow-ffi`). Throws
   * SparqError when it cannot be done, naming the reason.
   */
  hugePages?: boolean;
}

/** Time spent in one kernel (for `sparq profile`). */
export interface KernelTimer {
  /** Milliseconds in total. */
  ms: number;
  /** Number of calls. */
  calls: number;
}

/** Loads `asm/build/<name>.wasm` next to this module (works from any directory and inside `deno compile`). */
async function loadWasm(name: string): Promise<Uint8Array<ArrayBuffer>> {
  return await Deno.readFile(new URL(`../asm/build/${name}.wasm`, import.meta.url));
}

/** One shared memory with the kernel module instantiated on it in every thread. */
export class Shard {
  /** Index of this shard in its runtime. */
  readonly id: number;
  /** The shared memory. */
  readonly memory: WebAssembly.Memory;
  /** Bytes available to `alloc` in total (from the first allocatable byte to the end of memory). */
  readonly capacity: number;
  readonly #rt: Runtime;
  // deno-lint-ignore no-explicit-any
  readonly #exports: Record<string, (...a: any[]) => any>;
  readonly #base: number;
  #top: number;
  /** Start of the kernel scratch area, which grows down from the end of memory (see `scratch`). */
  #scratchBottom: number;

  /** @internal Use `Runtime.newShard`. */
  constructor(rt: Runtime, id: number, memory: WebAssembly.Memory, instance: WebAssembly.Instance) {
    this.#rt = rt;
    this.id = id;
    this.memory = memory;
    // deno-lint-ignore no-explicit-any
    this.#exports = instance.exports as Record<string, (...a: any[]) => any>;
    this.#base = alignUp(this.#exports.heap_base(), 64);
    this.#top = this.#base;
    this.#scratchBottom = memory.buffer.byteLength;
    this.capacity = memory.buffer.byteLength - this.#base;
  }

  /** Threads of the runtime this shard belongs to. */
  get threads(): number {
    return this.#rt.threads;
  }

  /** Bytes allocated so far (including the kernel scratch area). */
  get used(): number {
    return this.#top - this.#base + this.memory.buffer.byteLength - this.#scratchBottom;
  }

  /** Reserves `bytes` aligned to `align` (a power of two) and returns the byte pointer; memory is zeroed once. */
  alloc(bytes: number, align = 64): number {
    if (!(bytes >= 0) || !Number.isFinite(bytes)) throw new Error(`alloc: bad size ${bytes}`);
    const p = alignUp(this.#top, align);
    const end = p + bytes;
    if (end > this.#scratchBottom) throw this.#outOfMemory(bytes);
    this.#top = end;
    return p;
  }

  /**
   * A kernel scratch area of at least `bytes` (64-byte aligned) at the end of memory, outside the bump allocator
   * so `mark`/`release` never free it. Contents are not kept when it grows. Used by `lib/kernels.ts` for
   * quantized activations.
   */
  scratch(bytes: number): number {
    const end = this.memory.buffer.byteLength;
    if (end - this.#scratchBottom < bytes) {
      const bottom = Math.floor((end - bytes) / 64) * 64;
      if (bottom < this.#top) throw this.#outOfMemory(bytes);
      this.#scratchBottom = bottom;
    }
    return this.#scratchBottom;
  }

  #outOfMemory(bytes: number): SparqError {
    const free = this.#scratchBottom - this.#top;
    return new SparqError(
      `out of memory in shard ${this.id}: need ${bytes} bytes, ${this.used} of ${this.capacity} in use ` +
        `(${free} free); create the shard larger or use more shards`,
    );
  }

  /** Current allocation mark, for scratch space released with `release(mark)`. */
  mark(): number {
    return this.#top;
  }

  /** Frees everything allocated since `mark()` returned `mark`. */
  release(mark: number): void {
    if (mark < this.#base || mark > this.#top) throw new Error(`release: bad mark ${mark}`);
    this.#top = mark;
  }

  /** f32 view of `n` elements at byte pointer `ptr` (fresh over the current buffer). */
  f32(ptr: number, n: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, n);
  }
  /** u8 view of `n` bytes at `ptr`. */
  u8(ptr: number, n: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, ptr, n);
  }
  /** i32 view of `n` elements at `ptr`. */
  i32(ptr: number, n: number): Int32Array {
    return new Int32Array(this.memory.buffer, ptr, n);
  }
  /** u16 view of `n` elements at `ptr` (f16 / bf16 bit patterns). */
  u16(ptr: number, n: number): Uint16Array {
    return new Uint16Array(this.memory.buffer, ptr, n);
  }

  /** Whether the module exports `kernel`. */
  has(kernel: string): boolean {
    return typeof this.#exports[kernel] === "function";
  }

  /**
   * Runs wasm export `kernel(...args, ith, nth)` for every share `ith` of `nth` (default: one share per thread)
   * and returns when all are done. Shares are claimed dynamically by the threads that are running (this one
   * first), so a descheduled worker does not stall the run; a share never runs twice at once. Pointers above
   * 2 GiB may be passed as plain numbers (they wrap to the same i32 bits).
   */
  run(kernel: string, args: readonly number[], nth: number = this.#rt.threads): void {
    const fn = this.#fn(kernel);
    const rt = this.#rt;
    const t0 = performance.now();
    rt.pool.run(this.id, rt.kernelIndex(kernel), args, nth, (ith) => fn(...args, ith, nth));
    rt.count(kernel, performance.now() - t0);
  }

  /** Runs wasm export `kernel(...args)` on the calling thread only (no `ith, nth`) and returns its result. */
  call(kernel: string, args: readonly number[]): number {
    const fn = this.#fn(kernel);
    const t0 = performance.now();
    const r = fn(...args);
    this.#rt.count(kernel, performance.now() - t0);
    return r as number;
  }

  // deno-lint-ignore no-explicit-any
  #fn(kernel: string): (...a: any[]) => any {
    const fn = this.#exports[kernel];
    if (typeof fn !== "function") throw new Error(`no wasm kernel named ${kernel}`);
    return fn;
  }
}

/** The kernel module, its worker pool and its shards. */
export class Runtime {
  /** Threads including the calling one. */
  readonly threads: number;
  /** Whether the relaxed-SIMD build is in use. */
  readonly relaxed: boolean;
  /** Largest shard in bytes. */
  readonly maxShardBytes: number;
  /** Whether shards are advised to use transparent huge pages. */
  readonly hugePages: boolean;
  /** Bytes of shard memory advised to use huge pages so far. */
  hugePageBytes = 0;
  /** Shards created so far, by id. */
  readonly shards: Shard[] = [];
  /** Time per kernel name since the last `resetTimers()`. */
  readonly timers: Map<string, KernelTimer> = new Map();
  /** @internal */
  readonly pool: ThreadPool;
  readonly #module: WebAssembly.Module;
  readonly #kernelIndex: Map<string, number>;

  /** @internal Use `createRuntime`. */
  constructor(
    module: WebAssembly.Module,
    relaxed: boolean,
    pool: ThreadPool,
    maxShardBytes: number,
    hugePages = false,
  ) {
    this.#module = module;
    this.hugePages = hugePages;
    this.relaxed = relaxed;
    this.pool = pool;
    this.threads = pool.threads;
    this.maxShardBytes = maxShardBytes;
    this.#kernelIndex = new Map(WebAssembly.Module.exports(module).map((e, i) => [e.name, i]));
  }

  /**
   * Creates a shard able to hold `bytes` of allocations (rounded up to whole 64 KiB pages), instantiated on
   * every thread. Throws SparqError when `bytes` exceeds `maxShardBytes`.
   */
  newShard(bytes: number): Shard {
    if (bytes > this.maxShardBytes) {
      throw new SparqError(
        `a shard of ${bytes} bytes exceeds the largest shard (${this.maxShardBytes} bytes); split it by layer`,
      );
    }
    // Static data of the module lives below heap_base (1 KiB); one extra page covers it.
    const pages = Math.min(MAX_PAGES, Math.ceil(bytes / PAGE) + 1);
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    // Before the instance writes its static data: untouched pages can be faulted in as huge pages.
    if (this.hugePages) this.hugePageBytes += adviseHugePages(memory.buffer);
    const instance = new WebAssembly.Instance(this.#module, { env: { memory } });
    const id = this.shards.length;
    this.pool.attach(id, memory);
    const shard = new Shard(this, id, memory, instance);
    this.shards.push(shard);
    return shard;
  }

  /** @internal Export index of `kernel` (the same in every thread: one module). */
  kernelIndex(kernel: string): number {
    const i = this.#kernelIndex.get(kernel);
    if (i === undefined) throw new Error(`no wasm kernel named ${kernel}`);
    return i;
  }

  /** @internal Adds `ms` to the timer of `kernel`. */
  count(kernel: string, ms: number): void {
    const t = this.timers.get(kernel);
    if (t) {
      t.ms += ms;
      t.calls++;
    } else this.timers.set(kernel, { ms, calls: 1 });
  }

  /** Clears the per-kernel timers. */
  resetTimers(): void {
    this.timers.clear();
  }

  /** Stops the worker threads (idempotent). Shards stay readable from this thread but cannot run kernels. */
  close(): void {
    this.pool.close();
  }
}

/** Whether this engine accepts the relaxed-SIMD build. */
export function relaxedSimdSupported(bytes: Uint8Array<ArrayBuffer>): boolean {
  try {
    return WebAssembly.validate(bytes);
  } catch {
    return false;
  }
}

/** Loads the kernel module and starts `threads - 1` workers. */
export async function createRuntime(opts: RuntimeOptions = {}): Promise<Runtime> {
  const threads = opts.threads ?? navigator.hardwareConcurrency ?? 1;
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
    throw new SparqError(`--threads: expected an integer from 1 to 256, got ${threads}`);
  }
  const maxShardBytes = Math.min(opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES, (MAX_PAGES - 1) * PAGE);
  if (opts.hugePages) {
    const why = hugePagesUnavailable();
    if (why) throw new SparqError(why);
  }
  let relaxed = false;
  let bytes: Uint8Array<ArrayBuffer> | undefined;
  if (!opts.noRelaxed) {
    const r = await loadWasm("sparq_relaxed");
    if (relaxedSimdSupported(r)) {
      bytes = r;
      relaxed = true;
    }
  }
  bytes ??= await loadWasm("sparq_simd");
  const module = await WebAssembly.compile(bytes);
  const pool = await ThreadPool.create(threads, module);
  return new Runtime(module, relaxed, pool, maxShardBytes, opts.hugePages ?? false);
}

function alignUp(p: number, align: number): number {
  return Math.ceil(p / align) * align;
}
