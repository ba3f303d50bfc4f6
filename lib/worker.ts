/**
 * One kernel thread of `lib/thread_pool.ts`. Holds an instance of the kernel module per shard memory and serves
 * commands from the shared command block: claim and run shares of a kernel, return to the event loop to receive
 * a new shard (CMD_YIELD), or exit. See thread_pool.ts for the protocol.
 * @module
 */
import { CMD_EXIT, CMD_RUN, CMD_YIELD, layout, SPIN } from "./thread_pool.ts";

const { GEN, KIND, SHARD, KERNEL, NARGS, NTH, DONE, ATTACHED, ERROR, ACTIVE, NEXT, ARGS_OFFSET } = layout;

// deno-lint-ignore no-explicit-any
type Kernel = (...args: any[]) => unknown;

let module: WebAssembly.Module;
let cmd: Int32Array;
let args: Float64Array;
/** Last command generation served. */
let seen = 1;
/** kernels[shard][exportIndex] */
const kernels: Kernel[][] = [];
let exportNames: string[] = [];

/** Waits until GEN holds an open command (even) other than the last one served; returns it. */
function nextGeneration(): number {
  let g = Atomics.load(cmd, GEN);
  for (let i = 0; (g === seen || g & 1) && i < SPIN; i++) g = Atomics.load(cmd, GEN);
  while (g === seen || g & 1) {
    Atomics.wait(cmd, GEN, g);
    g = Atomics.load(cmd, GEN);
  }
  return g;
}

/** Leaves the current command. */
function leave(): void {
  Atomics.sub(cmd, ACTIVE, 1);
  Atomics.notify(cmd, ACTIVE);
}

/** Claims and runs shares of the open kernel until none are left. */
function runShares(): void {
  const fn = kernels[cmd[SHARD]][cmd[KERNEL]];
  const n = cmd[NARGS], nth = cmd[NTH];
  const a: number[] = new Array(n + 2);
  for (let i = 0; i < n; i++) a[i] = args[i];
  a[n + 1] = nth;
  try {
    for (let ith = Atomics.add(cmd, NEXT, 1); ith < nth; ith = Atomics.add(cmd, NEXT, 1)) {
      a[n] = ith;
      fn(...a);
    }
  } catch (e) {
    cmd[ERROR] = 1;
    Atomics.store(cmd, NEXT, nth);
    self.postMessage({ type: "error", message: `kernel ${exportNames[cmd[KERNEL]]}: ${e}` });
  }
}

/** The blocking command loop; returns to the event loop on CMD_YIELD. */
function serve(): void {
  for (;;) {
    const g = nextGeneration();
    Atomics.add(cmd, ACTIVE, 1);
    if (Atomics.load(cmd, GEN) !== g) {
      leave(); // closed before we joined: nothing to do
      continue;
    }
    seen = g;
    const kind = cmd[KIND];
    if (kind === CMD_RUN) {
      runShares();
      leave();
      continue;
    }
    Atomics.add(cmd, DONE, 1);
    Atomics.notify(cmd, DONE);
    leave();
    if (kind === CMD_YIELD) return;
    if (kind === CMD_EXIT) {
      self.close();
      return;
    }
  }
}

self.onmessage = (e: MessageEvent) => {
  const m = e.data;
  if (m.type === "init") {
    module = m.module;
    cmd = new Int32Array(m.sab, 0, 16);
    args = new Float64Array(m.sab, ARGS_OFFSET, (m.sab.byteLength - ARGS_OFFSET) / 8);
    exportNames = WebAssembly.Module.exports(module).map((x) => x.name);
    self.postMessage({ type: "ready" });
  } else if (m.type === "attach") {
    const inst = new WebAssembly.Instance(module, { env: { memory: m.memory } });
    kernels[m.id] = exportNames.map((n) => inst.exports[n] as Kernel);
    Atomics.add(cmd, ATTACHED, 1);
    Atomics.notify(cmd, ATTACHED);
  }
  serve();
};
