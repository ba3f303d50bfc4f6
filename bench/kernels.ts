/**
 * Matrix-product kernel throughput on TinyLlama-1.1B and Llama-2-7B shapes, per weight type and thread count, as
 * GB/s of weights read and as a fraction of the bandwidth probe measured in the same run (same runtime). Each
 * shape is replicated into enough copies (> 160 MiB) that every pass streams from DRAM, as a real model's
 * layers do. The machine is shared: `/proc/loadavg` is printed with every figure.
 *
 *   deno run -A bench/kernels.ts [--threads 1,2] [--types Q4_0,Q8_0,…] [--model tinyllama|7b|all] [--busy]
 *                                [--matmul]   (also prompt-batch matmul, 64 tokens)
 *
 * "GB/s/CPU" divides the bytes by the process CPU time instead of wall time: on a shared machine it shows what
 * the kernel does per CPU-second it actually got (its compute efficiency), while GB/s shows what the run achieved.
 *
 * `--busy` starts a CPU-burning subprocess for the whole run to show how the pool degrades when a core is taken
 * (the pool waits with a bounded spin then Atomics.wait, so 2 threads should not collapse below 1).
 * @module
 */
import { parseArgs } from "node:util";
import process from "node:process";
import { createRuntime, type Shard } from "../lib/wasm_runtime.ts";
import { measureBandwidth } from "../lib/bandwidth.ts";
import { actScratchBytes, matmul, matvec } from "../lib/kernels.ts";
import { type GgmlType, ggmlTypeFromName, ggmlTypeInfo, ggmlTypeName } from "../lib/ggml_types.ts";
import { randomWeights, rng } from "../lib/ref/random.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    threads: { type: "string", default: "1,2" },
    types: { type: "string", default: "Q4_0,Q8_0,Q4_K,Q6_K,Q5_K,Q4_1,Q5_0,Q5_1,F16,BF16,F32" },
    model: { type: "string", default: "tinyllama" },
    busy: { type: "boolean", default: false },
    matmul: { type: "boolean", default: false },
    "probe-bytes": { type: "string", default: String(1 << 30) },
  },
});

/** [name, rows, cols] of the weight matrices (y = W·x, W rows × cols). */
const SHAPES: Record<string, [string, number, number][]> = {
  tinyllama: [["q/o 2048×2048", 2048, 2048], ["k/v 256×2048", 256, 2048], ["gate/up 5632×2048", 5632, 2048], [
    "down 2048×5632",
    2048,
    5632,
  ]],
  "7b": [["q/k/v/o 4096×4096", 4096, 4096], ["gate/up 11008×4096", 11008, 4096], ["down 4096×11008", 4096, 11008]],
};
const shapes = values.model === "all" ? [...SHAPES.tinyllama, ...SHAPES["7b"]] : SHAPES[values.model];
if (!shapes) throw new Error(`--model: tinyllama, 7b or all`);
const types = values.types.split(",").map((n) => {
  const t = ggmlTypeFromName(n);
  if (t === undefined) throw new Error(`--types: unknown type ${n}`);
  return t;
});
const STREAM_BYTES = 160 << 20;
const load = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");

let burner: Deno.ChildProcess | undefined;
if (values.busy) {
  burner = new Deno.Command(Deno.execPath(), { args: ["eval", "for (;;) {}"], stdout: "null", stderr: "null" })
    .spawn();
  console.log(`busy mode: CPU burner pid ${burner.pid}`);
}

try {
  for (const threads of values.threads.split(",").map(Number)) {
    const rt = await createRuntime({ threads });
    try {
      const probe = measureBandwidth(rt, Number(values["probe-bytes"]));
      console.log(
        `\n== threads ${threads} (relaxed SIMD: ${rt.relaxed}): probe ${probe.toFixed(2)} GB/s, load ${load()}`,
      );
      console.log("type   shape                    MB/copy  copies   ms/pass   GB/s   % probe  GB/s/CPU  load");
      for (const type of types) {
        for (const [name, rows, cols] of shapes) {
          const info = ggmlTypeInfo(type)!;
          const bytes = (rows * cols / info.blockSize) * info.blockBytes;
          const copies = Math.max(1, Math.ceil(STREAM_BYTES / bytes));
          const shard = rt.newShard(
            copies * bytes + 64 * cols + 8 * rows + actScratchBytes(type, cols, 64) +
              (4 << 20),
          );
          const { ms, cpuMs, w } = timeMatvec(shard, type, rows, cols, bytes, copies);
          const gbs = bytes / (ms * 1e6);
          console.log(
            `${ggmlTypeName(type).padEnd(6)} ${name.padEnd(24)} ${(bytes / 1e6).toFixed(1).padStart(7)} ${
              String(copies).padStart(7)
            } ${ms.toFixed(3).padStart(9)} ${gbs.toFixed(2).padStart(6)} ${
              (100 * gbs / probe).toFixed(0).padStart(8)
            }% ${(bytes / (cpuMs * 1e6)).toFixed(2).padStart(9)}  ${load()}`,
          );
          if (values.matmul) {
            const t = timeMatmul(shard, type, w, rows, cols);
            console.log(
              `       matmul 64 tokens: ${t.toFixed(1)} ms = ${(2 * rows * cols * 64 / t / 1e6).toFixed(1)} GFLOP/s`,
            );
          }
        }
      }
    } finally {
      rt.close();
    }
  }
} finally {
  if (burner) {
    burner.kill("SIGKILL");
    await burner.status;
  }
}

/** Best time of one matvec over copies of a random `type` matrix, each pass streaming all copies. */
function timeMatvec(shard: Shard, type: GgmlType, rows: number, cols: number, bytes: number, copies: number) {
  const r = rng(type * 7919 + rows);
  const w = shard.alloc(copies * bytes);
  const one = randomWeights(type, rows, cols, r);
  for (let c = 0; c < copies; c++) shard.u8(w + c * bytes, bytes).set(one);
  const x = shard.alloc(4 * cols), y = shard.alloc(4 * rows);
  shard.f32(x, cols).set(Float32Array.from({ length: cols }, () => r() * 2 - 1));
  let best = Infinity, bestCpu = Infinity;
  const passes = 4;
  for (let p = 0; p < passes; p++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let c = 0; c < copies; c++) matvec(shard, type, w + c * bytes, rows, cols, x, y);
    best = Math.min(best, (performance.now() - t0) / copies);
    const cpu = process.cpuUsage(c0);
    bestCpu = Math.min(bestCpu, (cpu.user + cpu.system) / 1000 / copies);
  }
  return { ms: best, cpuMs: bestCpu, w };
}

/** Time of one 64-token matmul on the first copy. */
function timeMatmul(shard: Shard, type: GgmlType, w: number, rows: number, cols: number): number {
  const nTok = 64;
  const m = shard.mark();
  const x = shard.alloc(4 * cols * nTok), y = shard.alloc(4 * rows * nTok);
  let best = Infinity;
  for (let p = 0; p < 2; p++) {
    const t0 = performance.now();
    matmul(shard, type, w, rows, cols, x, nTok, y);
    best = Math.min(best, performance.now() - t0);
  }
  shard.release(m);
  return best;
}
