/**
 * Attention-only benchmark: one decode step of one layer's heads over a filled f32 or f16 KV cache, dense
 * (`DenseAttention`, kernel `attn_dense_f32`/`_f16`) vs SparQ at compression 1/2, 1/4, 1/8, 1/16
 * (r = d/R, k = S/(2R), window k/4, reallocation on). Prints time per step, the measured speedup next to the
 * predicted transfer ratio (sparq.md §2.3), the bytes each mode reports and the achieved bandwidth, with
 * `/proc/loadavg` on every line (the machine is shared: figures are only as good as the load allows). The modes of
 * one context length are timed in turn over several rounds, so a slow spell of the host hits them all alike.
 *
 * The cache holds random values (timing only; K and Kt are filled independently, so the selection is not
 * meaningful as attention, only as work).
 *
 * What limits SparQ here (2-core EPYC dev machine; S = 8192, 1/8, MHA, f32, 2 threads; per phase from an
 * instrumented build, 2026-11-29, dense 7.4 ms in the same process): the r = 16 rows of Kt stream in 0.43 ms; the
 * τ pass, exp and top-k select take 0.07 + 0.16 + 0.18 ms; then the k scattered 512-byte rows of K and V: their touch
 * passes 0.47 + 0.40 ms, the dot and weighted-sum passes 0.12 + 0.20 ms — 2.0 ms in all, 60% of it the gather.
 * Dense streams K and V at 25-45 GB/s, while the rows come in at ~10 GB/s: each is a fresh DRAM page and TLB miss
 * (`--huge-pages`: SparQ 6-11% faster, dense 0-3%), wasm has no prefetch instruction, and a core keeps only ~20
 * misses in flight, which the touch pass (independent loads) reaches. Loads of the next rows placed inside the
 * compute loops instead (a software pipeline) were 10-30% slower: a missing load holds the reorder buffer, so
 * the arithmetic does not run under it. So at 1/8 MHA gets about half the transfer ratio; GQA gains more, dense
 * attention there being compute-bound (G dot products per row).
 *
 * f16 cache (`--cache-type f16`): half the bytes, but wasm SIMD has no f16 conversion instruction, so each four
 * halves cost a widen + shift + mask + multiply (the kernels convert once per GQA group). In the phase-profile
 * runs (one per cache type), MHA at 8192: dense 7.2 ms (f16) vs 7.4 (f32), SparQ 1/8 1.71 vs 2.03 ms. f16 is
 * mainly a memory saving (cache and context length ×2).
 *
 *   deno run -A bench/attention.ts [--threads 2] [--shape mha,gqa] [--ctx 1024,4096,8192,16384,32768] [--layers N]
 *     [--prefill N]                    (also time the dense attention of a batch of the last N prompt tokens)
 *     [--cache-type f32|f16|f32,f16]   (a list runs each type in turn, same shapes and contexts)
 *     [--huge-pages]                   (back the cache with transparent huge pages, as `sparq --huge-pages` does)
 * @module
 */
import { parseArgs } from "node:util";
import { createRuntime, type Shard } from "../lib/wasm_runtime.ts";
import { type CacheType, KvCache, parseCacheType } from "../lib/kv_cache.ts";
import type { ModelConfig } from "../lib/model_config.ts";
import { DenseAttention } from "../lib/attention/dense.ts";
import { SparqAttention, sparqScratchBytes } from "../lib/attention/sparq.ts";
import type { AttentionMode } from "../lib/attention/mode.ts";
import { type AttentionSpec, parseAttentionSpec, predictedTransfer } from "../lib/attention/spec.ts";

const SHAPES: Record<string, { nHead: number; nHeadKv: number; headDim: number; what: string }> = {
  mha: { nHead: 32, nHeadKv: 32, headDim: 128, what: "Llama-2-7B: 32 heads × d 128, MHA" },
  gqa: { nHead: 32, nHeadKv: 8, headDim: 128, what: "Llama-3-8B / Mistral-7B: 32 q heads, 8 KV heads, d 128" },
};
const RATIOS = [2, 4, 8, 16];

const { values } = parseArgs({
  args: Deno.args,
  options: {
    threads: { type: "string", default: "2" },
    shape: { type: "string", default: "mha,gqa" },
    ctx: { type: "string", default: "1024,4096,8192,16384,32768" },
    layers: { type: "string", default: "1" },
    "cache-type": { type: "string", default: "f32" },
    "huge-pages": { type: "boolean", default: false },
    prefill: { type: "string", default: "0" },
  },
});
/** Tokens of a prompt batch whose dense (causal) attention is timed after each context's decode lines (0: none). */
const prefillTok = Number(values.prefill);
if (!Number.isInteger(prefillTok) || prefillTok < 0) {
  console.error(`bench/attention.ts: --prefill ${values.prefill}: expected a token count >= 0`);
  Deno.exit(2);
}
const threads = Number(values.threads);
const ctxs = values.ctx!.split(",").map(Number);
const nCtx = Math.max(...ctxs);
/** Layers cycled through, one per step: more than one makes the working set exceed the L3 cache, as in a model. */
const nLayers = Number(values.layers);
const cacheTypes: CacheType[] = values["cache-type"]!.split(",").map((t) => parseCacheType(t));

const loadavg = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");

/** Fills `a` with a repeated block of normal-ish random values (a prime-length block, so rows differ). */
function fillRandom(a: Float32Array | Float16Array, seed: number) {
  const blk = new Float32Array(1048573);
  let s = seed;
  for (let i = 0; i < blk.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    const u = s / 4294967296;
    blk[i] = (u - 0.5) * 3.4 * (u > 0.98 || u < 0.02 ? 3 : 1);
  }
  for (let i = 0; i < a.length; i += blk.length) a.set(blk.subarray(0, Math.min(blk.length, a.length - i)), i);
}

/** Rounds in which every mode is timed in turn (see {@link timeModes}). */
const ROUNDS = 5;

/**
 * Fastest milliseconds per call of each of `fs`, timed in turn over {@link ROUNDS} rounds (at least 3 calls and
 * 60 ms per mode and round, after warm-up calls that let the engine tier the kernels up to optimised code). The
 * minimum, not the median: on a shared machine the other processes only ever add time; and interleaved, so a
 * slow spell of the host falls on every mode instead of on whichever ran then.
 */
function timeModes(fs: (() => void)[]): number[] {
  for (const f of fs) for (let i = 0; i < 3; i++) f();
  const best = fs.map(() => Infinity);
  for (let r = 0; r < ROUNDS; r++) {
    fs.forEach((f, m) => {
      const t0 = performance.now();
      for (let n = 0; n < 3 || (performance.now() - t0 < 60 && n < 20); n++) {
        const t = performance.now();
        f();
        best[m] = Math.min(best[m], performance.now() - t);
      }
    });
  }
  return best;
}

const rt = await createRuntime({ threads, hugePages: values["huge-pages"] });
for (const cacheType of cacheTypes) {
  console.log(
    `attention benchmark: ${threads} threads, ${rt.relaxed ? "relaxed-SIMD" : "SIMD"} build, ${cacheType} cache${
      rt.hugePages ? ", huge pages" : ""
    }`,
  );
  for (const shapeName of values.shape!.split(",")) {
    const sh = SHAPES[shapeName];
    const config = {
      name: shapeName,
      nLayer: nLayers,
      nHead: sh.nHead,
      nHeadKv: sh.nHeadKv,
      headDim: sh.headDim,
      headDimV: sh.headDim,
    } as ModelConfig;
    const sparqSpec = parseAttentionSpec("sparq");
    const bytes = nLayers * KvCache.bytesPerLayer(config, nCtx, sparqSpec, cacheType) +
      DenseAttention.scratchBytes(config, nCtx, threads) + RATIOS.length * sparqScratchBytes(config, nCtx) +
      2 * prefillTok * sh.nHead * sh.headDim * 4 + (4 << 20);
    const shard: Shard = rt.newShard(bytes);
    const cache = new KvCache({ config, nCtx, shardOf: () => shard, cacheType, ...KvCache.requirements(sparqSpec) });
    const d = sh.headDim, kvElems = sh.nHeadKv * nCtx * d;
    // Cache elements as numbers (an f16 view rounds what is written to it).
    const view = (p: number) =>
      cacheType === "f16" ? new Float16Array(shard.f32(0, 0).buffer, p, kvElems) : shard.f32(p, kvElems);
    for (let l = 0; l < nLayers; l++) {
      fillRandom(view(cache.k(l)), 1 + 3 * l);
      fillRandom(view(cache.v(l)), 2 + 3 * l);
      fillRandom(view(cache.kt(l)), 3 + 3 * l);
    }
    const q = shard.alloc(sh.nHead * d * 4), out = shard.alloc(sh.nHead * d * 4);
    fillRandom(shard.f32(q, sh.nHead * d), 4);
    const qp = shard.alloc(prefillTok * sh.nHead * d * 4), outp = shard.alloc(prefillTok * sh.nHead * d * 4);
    fillRandom(shard.f32(qp, prefillTok * sh.nHead * d), 5);
    const ctx = { config, cache, shardOf: () => shard, threads };
    const dense = new DenseAttention(ctx);
    const modes: [AttentionSpec, AttentionMode][] = [[{ kind: "dense" }, dense]];
    for (const R of RATIOS) {
      const spec = parseAttentionSpec(`sparq:ratio=1/${R}`) as Extract<AttentionSpec, { kind: "sparq" }>;
      modes.push([spec, new SparqAttention({ spec, config, cache, shardOf: () => shard, dense })]);
    }
    console.log(`\n${sh.what}; ${cacheType} cache ${(cache.totalBytes / 2 ** 20).toFixed(0)} MiB (K, Kt, V)`);
    console.log("     S  mode              ms/step  speedup  transfer 1/x  MB read   GB/s   loadavg");
    for (const S of ctxs) {
      cache.length = S;
      let layer = 0;
      const times = timeModes(modes.map(([, mode]) => () => mode.decode(layer = (layer + 1) % nLayers, S - 1, q, out)));
      const denseMs = times[0];
      modes.forEach(([spec, mode], m) => {
        const ms = times[m];
        mode.resetCounters();
        mode.decode(0, S - 1, q, out);
        const b = mode.bytes;
        const mb = (b.k + b.v + b.index) / 1e6;
        const pred = predictedTransfer({ kind: "dense" }, d, S) / predictedTransfer(spec, d, S);
        console.log(
          `${String(S).padStart(6)}  ${mode.name.padEnd(16)} ${ms.toFixed(3).padStart(8)}  ${
            (denseMs / ms).toFixed(2).padStart(6)
          }×  ${pred.toFixed(2).padStart(11)}  ${mb.toFixed(1).padStart(7)}  ${
            (mb / ms).toFixed(1).padStart(5)
          }   ${loadavg()}`,
        );
      });
      if (prefillTok > 0 && prefillTok <= S) {
        // A prompt batch's last prefillTok tokens at positions S − prefillTok … S − 1 (best of 3: a call takes seconds).
        dense.prefill(0, S - prefillTok, prefillTok, qp, outp);
        let ms = Infinity;
        for (let i = 0; i < 3; i++) {
          const t = performance.now();
          dense.prefill(0, S - prefillTok, prefillTok, qp, outp);
          ms = Math.min(ms, performance.now() - t);
        }
        // q·K and p·V: 2·d multiply-adds per (token, head, visible position).
        const flop = 4 * d * sh.nHead * prefillTok * (S - prefillTok + (prefillTok + 1) / 2);
        console.log(
          `${String(S).padStart(6)}  dense prefill of ${prefillTok} tokens: ${ms.toFixed(1)} ms (${
            (flop / ms / 1e6).toFixed(1)
          } GFLOP/s)   ${loadavg()}`,
        );
      }
    }
  }
}
rt.close();
