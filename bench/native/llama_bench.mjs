// Native llama.cpp (node-llama-cpp 3.22.1, prebuilt CPU binary) on one GGUF: prompt-processing and
// decode tokens/s at given KV depths, as one JSON line on stdout. Run by bench/decode.ts (Node, not Deno:
// node-llama-cpp is a Node addon).
//
//   node bench/native/llama_bench.mjs MODEL.gguf --threads 2 --prefill 64 --depths 512 --decode 8
//
// Depths are reached by really evaluating tokens (llama.cpp's cache cannot be faked), so deep
// contexts cost a long prefill; depths above --max-depth are skipped.
import { getLlama } from "node-llama-cpp";
import { parseArgs } from "node:util";
import { readFileSync } from "node:fs";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    threads: { type: "string", default: "2" },
    prefill: { type: "string", default: "64" },
    depths: { type: "string", default: "512" },
    decode: { type: "string", default: "8" },
    "max-depth": { type: "string", default: "512" },
  },
});
const modelPath = positionals[0];
const threads = Number(values.threads);
const nPrefill = Number(values.prefill);
const nDecode = Number(values.decode);
const maxDepth = Number(values["max-depth"]);
const depths = values.depths.split(",").map(Number).sort((a, b) => a - b);
const reach = depths.filter((d) => d <= maxDepth);
const loadavg = () => readFileSync("/proc/loadavg", "utf8").trim();

const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
let t0 = performance.now();
const model = await llama.loadModel({ modelPath, gpuLayers: 0, useMmap: false });
const loadS = (performance.now() - t0) / 1000;
const contextSize = Math.max(nPrefill, ...reach) + nDecode + 16;
const context = await model.createContext({ contextSize, batchSize: 512, threads, sequences: 1 });
const seq = context.getSequence();
const token = (i) => 100 + (i * 7919) % 30000;

const out = {
  llama_cpp: llama.systemInfo ?? "",
  load_s: loadS,
  threads,
  kv_type: "F16 (llama.cpp default)",
  decode: [],
};
const prompt = Array.from({ length: nPrefill }, (_, i) => token(i));
t0 = performance.now();
await seq.evaluateWithoutGeneratingNewTokens(prompt);
out.prefill = { tokens: nPrefill, tokens_per_s: nPrefill / ((performance.now() - t0) / 1000), loadavg: loadavg() };

for (const depth of reach) {
  const have = seq.nextTokenIndex;
  if (depth - 1 > have) {
    await seq.evaluateWithoutGeneratingNewTokens(
      Array.from({ length: depth - 1 - have }, (_, i) => token(have + i)),
    );
  }
  let n = 0;
  t0 = performance.now();
  for await (const _ of seq.evaluate([token(depth)], { temperature: 0 })) {
    if (++n >= nDecode) break;
  }
  const s = (performance.now() - t0) / 1000;
  out.decode.push({ depth, tokens: n, tokens_per_s: n / s, loadavg: loadavg() });
}
for (const depth of depths.filter((d) => d > maxDepth)) {
  out.decode.push({ depth, skipped: `deeper than --max-depth ${maxDepth}` });
}
console.log(JSON.stringify(out));
await context.dispose();
await model.dispose();
await llama.dispose();
