/**
 * Worker thread pool for the WebAssembly kernels. Thread 0 is the calling (main) thread; threads 1..n-1 are
 * module Workers (`lib/worker.ts`) that each hold an instance of the kernel module per shard memory.
 *
 * A kernel run is split into `nth` shares (`kernel(...args, ith, nth)` computes share `ith`). Shares are
 * claimed from an atomic counter by whichever thread is running: the main thread starts claiming at once, and a
 * worker that is asleep or descheduled (a busy co-process on a 2-vCPU machine) simply claims nothing, so the run
 * degrades to one thread instead of waiting a scheduler quantum at every barrier. A share is never run by two
 * threads, so per-share scratch indexed by `ith` stays private, and results do not depend on who ran what.
 *
 * Command block protocol (one SharedArrayBuffer): GEN is even while a command is open. The main thread writes
 * the arguments while GEN is odd, opens (GEN + 1, notify), claims shares, then closes (GEN + 1) and waits until
 * no worker is ACTIVE. A worker joins by incrementing ACTIVE and re-checking GEN (so it never reads arguments of
 * a closed command). Waits are a short bounded spin, then `Atomics.wait`: never an unbounded spin.
 * @module
 */

/** Command block slots (Int32Array indexes). */
const GEN = 0, KIND = 1, SHARD = 2, KERNEL = 3, NARGS = 4, NTH = 5, DONE = 6, ATTACHED = 7, ERROR = 8;
const ACTIVE = 9, NEXT = 10;
/** Byte offset of the Float64Array of kernel arguments in the command block. */
const ARGS_OFFSET = 64;
/** Most kernel arguments (before `ith, nth`). */
export const MAX_ARGS = 24;
/** Command kinds. */
export const CMD_RUN = 1, CMD_YIELD = 2, CMD_EXIT = 3;
/**
 * Spin iterations before sleeping in `Atomics.wait` (~10-30 µs): long enough to catch back-to-back kernels of
 * one forward pass without a futex round trip, short enough not to matter when the other core is busy.
 */
export const SPIN = 20000;

/** The layout constants shared with `lib/worker.ts`. */
export const layout = { GEN, KIND, SHARD, KERNEL, NARGS, NTH, DONE, ATTACHED, ERROR, ACTIVE, NEXT, ARGS_OFFSET };

/** A pool of `threads - 1` workers plus the calling thread. */
export class ThreadPool {
  /** Total threads including the main thread. */
  readonly threads: number;
  readonly #workers: Worker[];
  readonly #cmd: Int32Array;
  readonly #args: Float64Array;
  #attached = 0;
  #closed = false;

  private constructor(threads: number, workers: Worker[], sab: SharedArrayBuffer) {
    this.threads = threads;
    this.#workers = workers;
    this.#cmd = new Int32Array(sab, 0, 16);
    this.#args = new Float64Array(sab, ARGS_OFFSET, MAX_ARGS);
    this.#cmd[GEN] = 1; // closed
  }

  /** Starts `threads - 1` workers, each given `module`; resolves once all are ready. */
  static async create(threads: number, module: WebAssembly.Module): Promise<ThreadPool> {
    const sab = new SharedArrayBuffer(ARGS_OFFSET + 8 * MAX_ARGS);
    new Int32Array(sab)[GEN] = 1;
    const workers: Worker[] = [];
    const ready: Promise<void>[] = [];
    for (let i = 1; i < threads; i++) {
      const w = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
      workers.push(w);
      ready.push(
        new Promise((resolve, reject) => {
          w.onmessage = (e: MessageEvent) => {
            if (e.data?.type === "ready") resolve();
            else if (e.data?.type === "error") console.error(`sparq worker ${i}: ${e.data.message}`);
          };
          w.onerror = (e: ErrorEvent) => {
            e.preventDefault();
            reject(new Error(`sparq worker ${i} failed to start: ${e.message}`));
          };
        }),
      );
      w.postMessage({ type: "init", module, sab, ith: i });
    }
    await Promise.all(ready);
    return new ThreadPool(threads, workers, sab);
  }

  /**
   * Gives every worker the shard memory `memory` as shard number `id` and returns once all have instantiated
   * the module on it. Workers sit in a blocking wait loop, so they are first told to return to their event loop
   * (CMD_YIELD), where the queued message is delivered.
   */
  attach(id: number, memory: WebAssembly.Memory): void {
    if (this.#workers.length === 0) return;
    for (const w of this.#workers) w.postMessage({ type: "attach", id, memory });
    this.#broadcast(CMD_YIELD);
    this.#attached += this.#workers.length;
    waitFor(this.#cmd, ATTACHED, this.#attached);
  }

  /**
   * Runs export number `kernel` of shard `shard` in `nth` shares: `runShare(ith)` runs share `ith` on this
   * thread, workers run theirs with `(...args, ith, nth)` appended. Returns when every share is done.
   */
  run(shard: number, kernel: number, args: readonly number[], nth: number, runShare: (ith: number) => void): void {
    if (args.length > MAX_ARGS) throw new Error(`kernel has ${args.length} arguments, at most ${MAX_ARGS}`);
    if (this.#workers.length === 0 || nth === 1) {
      for (let i = 0; i < nth; i++) runShare(i);
      return;
    }
    const c = this.#cmd;
    this.#args.set(args);
    c[NARGS] = args.length;
    c[NTH] = nth;
    Atomics.store(c, NEXT, 0);
    this.#open(CMD_RUN, shard, kernel);
    let failure: unknown;
    try {
      for (let i = Atomics.add(c, NEXT, 1); i < nth; i = Atomics.add(c, NEXT, 1)) runShare(i);
    } catch (e) {
      failure = e;
      Atomics.store(c, NEXT, nth); // let workers stop claiming
    }
    this.#close();
    if (failure) throw failure;
    if (c[ERROR]) throw new Error(`a worker thread failed in wasm kernel #${kernel} (its message follows)`);
  }

  /** Stops the workers; the pool cannot be used afterwards. */
  close(): void {
    if (this.#closed) return;
    if (this.#workers.length) this.#broadcast(CMD_EXIT);
    this.#closed = true;
    for (const w of this.#workers) w.terminate();
  }

  /** Opens a command (arguments already written while closed). */
  #open(kind: number, shard: number, kernel: number): void {
    if (this.#closed) throw new Error("thread pool is closed");
    const c = this.#cmd;
    c[KIND] = kind;
    c[SHARD] = shard;
    c[KERNEL] = kernel;
    c[ERROR] = 0;
    Atomics.store(c, DONE, 0);
    Atomics.add(c, GEN, 1);
    Atomics.notify(c, GEN);
  }

  /** Closes the open command and waits until no worker is inside it. */
  #close(): void {
    Atomics.add(this.#cmd, GEN, 1);
    waitFor(this.#cmd, ACTIVE, 0);
  }

  /** A command every worker must see (yield to the event loop, exit): waits for all of them. */
  #broadcast(kind: number): void {
    this.#open(kind, 0, 0);
    waitFor(this.#cmd, DONE, this.#workers.length);
    this.#close();
  }
}

/** Waits until `cmd[slot] === target`: bounded spin, then `Atomics.wait` on the slot's current value. */
export function waitFor(cmd: Int32Array, slot: number, target: number): void {
  for (let i = 0; i < SPIN; i++) if (Atomics.load(cmd, slot) === target) return;
  for (;;) {
    const v = Atomics.load(cmd, slot);
    if (v === target) return;
    Atomics.wait(cmd, slot, v, 50);
  }
}
