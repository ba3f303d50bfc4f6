/**
 * Memory read bandwidth of the WebAssembly kernels (the "100%" mark of the kernel benchmarks and `sparq profile`):
 * the streaming-read probe over a 1 GiB buffer with 1 and 2 threads.
 *
 *   deno run -A bench/bandwidth.ts [--bytes N] [--threads 1,2]
 * @module
 */
import { parseArgs } from "node:util";
import { createRuntime } from "../lib/wasm_runtime.ts";
import { measureBandwidth, PROBE_BYTES } from "../lib/bandwidth.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { bytes: { type: "string" }, threads: { type: "string", default: "1,2" } },
});
const bytes = values.bytes ? Number(values.bytes) : PROBE_BYTES;
for (const threads of values.threads.split(",").map(Number)) {
  const rt = await createRuntime({ threads });
  try {
    const gbs = measureBandwidth(rt, bytes);
    const load = Deno.readTextFileSync("/proc/loadavg").trim();
    console.log(`threads ${threads}: ${gbs.toFixed(2)} GB/s (${bytes} bytes, best of 5; loadavg ${load})`);
  } finally {
    rt.close();
  }
}
