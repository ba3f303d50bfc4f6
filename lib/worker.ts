/**
 * One kernel thread of `lib/thread_pool.ts`. Holds an instance of the kernel module per shard memory and serves
 * commands from the shared command block: run a kernel's share (`ith` of `nth`), return to the event loop to
 * receive a new shard (CMD_YIELD), or exit.
 * @module
 */
import { CMD_EXIT, CMD_RUN, CMD_YIELD, layout, SPIN } from "./thread_pool.ts";

const { GEN, KIND, SHARD, KERNEL, NARGS, NTH, DONE, ATTACHED, ERROR, ARGS_OFFSET } = layout;

// deno-lint-ignore no-explicit-any
type Kernel = (...args: any[]) => unknown;

let module: WebAssembly.Module;
let cmd: Int32Array;
let args: Float64Array;
let ith = 0;
let seen = 0;
/** kernels[shard][exportIndex] */
const kernels: Kernel[][] = [];
let exportNames: string[] = [];

function finish(): void {
  Atomics.add(cmd, DONE, 1);
  Atomics.notify(cmd, DONE);
}

/** The blocking command loop; returns to the event loop on CMD_YIELD. */
function serve(): void {
  for (;;) {
    let g = Atomics.load(cmd, GEN);
    for (let i = 0; g === seen && i < SPIN; i++) g = Atomics.load(cmd, GEN);
    while (g === seen) {
      Atomics.wait(cmd, GEN, seen);
      g = Atomics.load(cmd, GEN);
    }
    seen = g;
    const kind = cmd[KIND];
    if (kind === CMD_RUN) {
      const nth = cmd[NTH];
      if (ith < nth) {
        try {
          const fn = kernels[cmd[SHARD]][cmd[KERNEL]];
          const n = cmd[NARGS];
          const a: number[] = new Array(n + 2);
          for (let i = 0; i < n; i++) a[i] = args[i];
          a[n] = ith;
          a[n + 1] = nth;
          fn(...a);
        } catch (e) {
          cmd[ERROR] = 1;
          self.postMessage({ type: "error", message: `kernel ${exportNames[cmd[KERNEL]]}: ${e}` });
        }
      }
      finish();
    } else if (kind === CMD_YIELD) {
      finish();
      return;
    } else if (kind === CMD_EXIT) {
      finish();
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
    ith = m.ith;
    seen = m.gen;
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
