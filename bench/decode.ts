/**
 * Decode (and prompt-processing) speed of sparq next to native llama.cpp on the same GGUF files, in
 * the same run: TinyLlama-1.1B- and Llama-2-7B-shaped random-weight models (`sparq synth`, Q4_0 and
 * Q8_0) at KV depths 512 and 4096, 2 threads. For sparq it also prints the bytes read per token
 * (weights + the attention mode's K/V bytes) × tokens/s as a percentage of the read-bandwidth probe.
 *
 *   deno run -A bench/decode.ts [--shapes tinyllama-1.1b,llama2-7b] [--types q4_0,q8_0] [--ctx 512,4096]
 *                               [--threads 2] [--decode 8] [--prefill 64] [--native on|off] [--native-max-depth 512]
 *                               [--attention "dense;sparq:ratio=1/8"]   (our modes; llama.cpp is dense)
 *                               [--cache-type f16|f32]   (ours; default f16 like llama.cpp's default)
 *
 * Models are written to bench/models/ on first use (git-ignored). Native llama.cpp is node-llama-cpp
 * 3.22.1 (prebuilt CPU binary) installed in bench/native/ (`cd bench/native && npm install`), run by
 * `node bench/native/llama_bench.mjs`; it uses llama.cpp's default F16 KV cache, and so does sparq here unless
 * `--cache-type f32` (sparq's own default is f32).
 *
 * How a depth is reached: sparq jumps to position S without prefilling it (`seekForBenchmark`:
 * decode time depends on S, not on the cached values); llama.cpp cannot, so it really evaluates S
 * tokens — deep contexts cost minutes there, and depths above --native-max-depth are skipped.
 *
 * The machine is shared: every figure is printed with /proc/loadavg; treat them as rough.
 * @module
 */
import { parseArgs } from "node:util";
import { loadModel } from "../lib/model.ts";
import { createRuntime } from "../lib/wasm_runtime.ts";
import { measureBandwidth } from "../lib/bandwidth.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    shapes: { type: "string", default: "tinyllama-1.1b,llama2-7b" },
    types: { type: "string", default: "q4_0,q8_0" },
    ctx: { type: "string", default: "512,4096" },
    threads: { type: "string", default: "2" },
    decode: { type: "string", default: "8" },
    prefill: { type: "string", default: "64" },
    native: { type: "string", default: "on" },
    "native-max-depth": { type: "string", default: "512" },
    attention: { type: "string", default: "dense" },
    "cache-type": { type: "string", default: "f16" },
  },
});
const threads = Number(values.threads);
const depths = values.ctx!.split(",").map(Number);
const nDecode = Number(values.decode);
const nPrefill = Number(values.prefill);
// Our attention modes (one model, switched with setAttention); llama.cpp is always dense.
const modes = values.attention!.split(";").map((m) => m.trim()).filter(Boolean);
const root = new URL("../", import.meta.url).pathname;
const loadavg = () => Deno.readTextFileSync("/proc/loadavg").trim().split(" ").slice(0, 3).join(" ");
const token = (i: number) => 100 + (i * 7919) % 30000;

/** Path of the synthetic model, written with `sparq synth` when missing. */
async function ensureModel(shape: string, type: string): Promise<string> {
  const path = `${root}bench/models/${shape}-${type}.gguf`;
  try {
    Deno.statSync(path);
    return path;
  } catch {
    Deno.mkdirSync(`${root}bench/models`, { recursive: true });
    console.error(`writing ${path} (sparq synth)…`);
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${root}cli.ts`, "synth", "--shape", shape, "--type", type, "-o", path],
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (r.code !== 0) throw new Error(`sparq synth ${shape} ${type} failed`);
    return path;
  }
}

interface NativeResult {
  load_s: number;
  prefill: { tokens_per_s: number; loadavg: string };
  decode: { depth: number; tokens_per_s?: number; skipped?: string; loadavg?: string }[];
}

/** Runs native llama.cpp on `path` in a Node subprocess; undefined (with the reason) when it cannot. */
async function runNative(path: string): Promise<NativeResult | string> {
  const script = `${root}bench/native/llama_bench.mjs`;
  try {
    Deno.statSync(`${root}bench/native/node_modules/node-llama-cpp`);
  } catch {
    return "node-llama-cpp not installed (cd bench/native && npm install)";
  }
  const r = await new Deno.Command("node", {
    args: [
      script,
      path,
      "--threads",
      String(threads),
      "--prefill",
      String(nPrefill),
      "--depths",
      depths.join(","),
      "--decode",
      String(nDecode),
      "--max-depth",
      values["native-max-depth"]!,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(r.stdout).trim().split("\n").pop() ?? "";
  if (r.code !== 0 || !out.startsWith("{")) {
    return `native run failed: ${new TextDecoder().decode(r.stderr).trim().split("\n").slice(-2).join(" ")}`;
  }
  return JSON.parse(out) as NativeResult;
}

const fmt = (x: number | undefined, d = 2) => (x === undefined || !Number.isFinite(x) ? "-" : x.toFixed(d));

// The bandwidth probe: the "100%" of the bytes × tokens/s column.
const probeRt = await createRuntime({ threads });
const bandwidth = measureBandwidth(probeRt, 512 << 20, 3);
probeRt.close();
console.log(
  `read-bandwidth probe: ${bandwidth.toFixed(1)} GB/s with ${threads} threads (load ${loadavg()}); ` +
    `KV cache: sparq ${values["cache-type"]}, llama.cpp f16`,
);
console.log(
  "| model | type | what | sparq tok/s | llama.cpp tok/s | ratio | sparq MB/token | % of probe bandwidth | load (sparq / native) |",
);
console.log("|---|---|---|---|---|---|---|---|---|");

for (const shape of values.shapes!.split(",")) {
  for (const type of values.types!.split(",")) {
    const path = await ensureModel(shape, type);
    const rows: string[][] = [];
    let model;
    try {
      model = await loadModel(path, {
        threads,
        ctx: Math.max(...depths) + nDecode + 1,
        attention: modes[0],
        alsoAttention: modes.slice(1),
        cacheType: values["cache-type"] as "f32" | "f16",
      });
    } catch (e) {
      // E.g. the memory check refusing while other processes hold memory: report and go on.
      console.log(`| ${shape} | ${type} | not run: ${(e as Error).message} | | | | | | ${loadavg()} |`);
      continue;
    }
    try {
      const prompt = Array.from({ length: nPrefill }, (_, i) => token(i));
      let t0 = performance.now();
      model.evaluate(prompt);
      const prefillTps = nPrefill / ((performance.now() - t0) / 1000);
      rows.push([`prefill ${nPrefill}`, fmt(prefillTps), "", "", "", "", loadavg()]);
      for (const S of depths) {
        for (const mode of modes) {
          model.setAttention(mode);
          model.seekForBenchmark(S - 1);
          model.resetCounters();
          t0 = performance.now();
          for (let i = 0; i < nDecode; i++) model.evaluate([token(S + i)]);
          const tps = nDecode / ((performance.now() - t0) / 1000);
          const att = model.attention.bytes;
          const bytesPerToken = model.weightBytesPerToken + (att.k + att.v + att.index) / nDecode;
          rows.push([
            `decode @${S}${modes.length > 1 || mode !== "dense" ? ` ${model.attention.name}` : ""}`,
            fmt(tps),
            "",
            "",
            fmt(bytesPerToken / 1e6, 0),
            fmt((100 * bytesPerToken * tps) / (bandwidth * 1e9), 0),
            loadavg(),
          ]);
        }
      }
      console.error(`sparq ${shape} ${type}: load ${model.loadSeconds.toFixed(1)} s`);
    } finally {
      model.close();
    }
    const native = values.native === "on" ? await runNative(path) : "--native off";
    if (typeof native === "string") {
      console.error(`native ${shape} ${type}: ${native}`);
    } else {
      rows[0][2] = fmt(native.prefill.tokens_per_s);
      rows[0][6] += ` / ${native.prefill.loadavg.split(" ").slice(0, 3).join(" ")}`;
      depths.forEach((S, i) => {
        const d = native.decode.find((x) => x.depth === S);
        for (let j = 0; j < modes.length; j++) {
          const row = rows[1 + i * modes.length + j];
          row[2] = d?.tokens_per_s !== undefined ? fmt(d.tokens_per_s) : "skipped";
          if (d?.loadavg) row[6] += ` / ${d.loadavg.split(" ").slice(0, 3).join(" ")}`;
        }
      });
    }
    for (const r of rows) {
      const ratio = Number(r[1]) / Number(r[2]);
      console.log(
        `| ${shape} | ${type} | ${r[0]} | ${r[1]} | ${r[2] || "-"} | ${fmt(ratio)} | ${r[4] || "-"} | ${
          r[5] || "-"
        } | ${r[6]} |`,
      );
    }
  }
}
