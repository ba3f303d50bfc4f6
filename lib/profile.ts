/**
 * `sparq profile`: decode speed against the memory-bandwidth wall. For every (threads, attention,
 * context) combination the KV cache is filled to the context length — by prompt processing, or with
 * random K/V written straight into the cache (`fill: "random"`, much faster, labelled as such) — and
 * then `nTokens` decode steps are timed per mode — the modes interleaved token by token, so that a shared
 * machine's drifting speed affects them alike and their ratios hold. Each row reports:
 *
 * - tokens/s and ms per token (wall clock of `Model.evaluate` on one token);
 * - bytes read per token: weights (every matrix once plus one embedding row, `Model.weightBytesPerToken`),
 *   K and V (the attention mode's own counters of what it touched), other (norm/bias vectors and the
 *   mode's index data); achieved GB/s = bytes / time, and its % of a bandwidth probe run in the same
 *   process with the same threads (lib/bandwidth.ts; on webgpu lib/webgpu/probe.ts);
 * - time per op group from the runtime's per-kernel timers: matvec (matmul_* and activation
 *   quantization), attention (attn_*, sparq_*), norm/rope/other (every other kernel), and the untimed
 *   rest (JavaScript between kernels: cache append, dispatch). On webgpu the groups come from
 *   `GpuModel.profileOps` (each op kind of one step replayed alone on the GPU);
 * - for sparse modes, the attention transfer ratio vs dense, predicted (sparq.md §2.3 formula,
 *   `predictedTransfer`) and measured (bytes touched / bytes dense touched at the same context), and
 *   the attention speedup (dense attention ms / this mode's attention ms).
 * @module
 */
import { SparqError } from "./errors.ts";
import { ggmlTypeName } from "./ggml_types.ts";
import { measureBandwidth } from "./bandwidth.ts";
import { type GgufFile, openGguf } from "./gguf.ts";
import { configFromGguf } from "./model_config.ts";
import { loadModel, type Model } from "./model.ts";
import type { CacheType } from "./kv_cache.ts";
import { createRuntime, type Shard } from "./wasm_runtime.ts";
import { type AttentionSpec, parseAttentionSpec, predictedTransfer } from "./attention/spec.ts";
import { type PlotSeries, svgLinePlot } from "./svg_plot.ts";

/** How the KV cache is brought to the context length before timing. */
export type FillMode = "prompt" | "random";
/** Where the model runs. */
export type Backend = "wasm" | "webgpu";

/** Options of {@link runProfile}. */
export interface ProfileOptions {
  /** Path of the GGUF model. */
  model: string;
  /** Context lengths (positions in the cache when timing starts). */
  contexts: number[];
  /** Attention specs (`dense`, `sparq:ratio=1/8`, …). */
  attention: string[];
  /** Thread counts (wasm). */
  threads: number[];
  /** Default wasm. The webgpu backend always fills the cache with random values (`GpuModel.benchDecode`). */
  backend?: Backend;
  /** KV cache element type (wasm; default f32). */
  cacheType?: CacheType;
  /** Decode steps timed per combination. */
  nTokens: number;
  fill: FillMode;
  /** Seed of the random tokens / cache contents. */
  seed?: number;
  /** Size of the bandwidth probe's buffer (default lib/bandwidth.ts's 1 GiB; tests use less). */
  probeBytes?: number;
  /** Transparent huge pages for every wasm memory (model, cache, probe); see lib/huge_pages.ts. */
  hugePages?: boolean;
  /** Progress lines (stderr in the CLI). */
  log?: (line: string) => void;
}

/** Milliseconds per token by op group. */
export interface OpTimes {
  matvec: number;
  attention: number;
  /** Norms, RoPE, activations, adds, embedding: every other kernel. */
  other: number;
  /** Wall time not inside any timed kernel (JavaScript between kernels). */
  untimed: number;
}

/** Bytes read per decode step. */
export interface TokenBytes {
  weights: number;
  k: number;
  v: number;
  other: number;
  total: number;
}

/** One measured combination. */
export interface ProfileRow {
  backend: Backend;
  /** Kernel threads (wasm); 0 on the GPU. */
  threads: number;
  /** Attention spec as the mode names itself. */
  attention: string;
  /** Positions in the cache when the timed steps start. */
  ctx: number;
  fill: FillMode;
  nTokens: number;
  msPerToken: number;
  tokensPerSec: number;
  bytesPerToken: TokenBytes;
  /** bytesPerToken.total / time per token. */
  gbPerSec: number;
  /** Bandwidth probe of the same threads (wasm) or of the GPU (webgpu), GB/s. */
  probeGBps?: number;
  /** gbPerSec as a percentage of probeGBps. */
  pctOfProbe?: number;
  /** Per op group: wasm kernel timers; on webgpu each op kind replayed alone (`GpuModel.profileOps`). */
  ops?: OpTimes;
  /** Sum of the timed op groups per token, and its share of the wall time. */
  opSumMs?: number;
  opSumPct?: number;
  /** Sparse modes: predicted and measured attention transfer / dense, and dense attn ms / this attn ms. */
  predictedRatio?: number;
  measuredRatio?: number;
  attentionSpeedup?: number;
}

/** Everything `profile` measured. */
export interface ProfileReport {
  model: string;
  /** Architecture and size line, e.g. `llama 22 layers, 2048 embd, Q4_0`. */
  description: string;
  fill: FillMode;
  rows: ProfileRow[];
}

/** Kernel name (wasm export, or WebGPU op kind) → op group. */
export function opGroup(kernel: string): keyof Omit<OpTimes, "untimed"> {
  if (/^(matmul|matvec)[_ .]|^quantize_q8/.test(kernel)) return "matvec";
  if (/^(attn|sparq)[_.]/.test(kernel)) return "attention";
  return "other";
}

/** A small deterministic PRNG (xorshift32) so runs with one seed see the same tokens and cache. */
function rng(seed: number): () => number {
  let s = (seed >>> 0) || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

/** Shard of the model's layer `layer` (the model's shards are the runtime's first ones). */
function layerShard(model: Model, layer: number): Shard {
  return model.runtime.shards[model.plan.layerShard[layer]];
}

/**
 * Writes `n` positions of random K and V (uniform in [-1, 1)) into every layer through
 * `KvCache.append`, so the transposed K copy and the running V sum stay consistent, then moves the
 * model to position `n` (`Model.seekForBenchmark`).
 */
export function fillRandom(model: Model, n: number, seed: number): void {
  const cache = model.cache;
  if (n >= model.nCtx) throw new SparqError(`--fill random: ${n} positions do not fit the context of ${model.nCtx}`);
  model.reset();
  const r = rng(seed);
  const kw = cache.nKv * cache.headDim, vw = cache.nKv * cache.headDimV;
  // Staging rows live in each shard's free tail (append copies from shard memory); released after.
  const staging = new Map<Shard, { mark: number; k: number; v: number }>();
  let chunk = Math.min(256, n);
  for (let l = 0; l < cache.nLayer; l++) {
    const shard = layerShard(model, l);
    if (staging.has(shard)) continue;
    chunk = Math.min(chunk, Math.floor((shard.capacity - shard.used - 256) / ((kw + vw) * 4)));
    staging.set(shard, { mark: shard.mark(), k: 0, v: 0 });
  }
  if (chunk < 1 && n > 0) throw new SparqError("--fill random: no free room in the model's memory to stage a row");
  try {
    for (const [shard, st] of staging) {
      st.k = shard.alloc(chunk * kw * 4);
      st.v = shard.alloc(chunk * vw * 4);
    }
    for (let p = 0; p < n; p += chunk) {
      const m = Math.min(chunk, n - p);
      for (let l = 0; l < cache.nLayer; l++) {
        const shard = layerShard(model, l);
        const st = staging.get(shard)!;
        const k = shard.f32(st.k, m * kw), v = shard.f32(st.v, m * vw);
        for (let i = 0; i < k.length; i++) k[i] = 2 * r() - 1;
        for (let i = 0; i < v.length; i++) v[i] = 2 * r() - 1;
        cache.append(l, p, m, st.k, st.v);
      }
      cache.length = p + m;
    }
  } finally {
    for (const [shard, st] of staging) shard.release(st.mark);
  }
  model.seekForBenchmark(n); // cache.length is n already: nothing is zeroed, only the position moves
}

/** Fills the cache to `n` positions by evaluating `n` random tokens (prompt processing). */
function fillPrompt(model: Model, n: number, seed: number): void {
  model.reset();
  if (n === 0) return;
  const r = rng(seed);
  const tokens = Array.from({ length: n }, () => Math.floor(r() * model.config.nVocab));
  model.evaluate(tokens);
}

interface Measured {
  msPerToken: number;
  kernels: Map<string, number>;
  attnBytes: { k: number; v: number; index: number };
}

/**
 * Times `n` decode steps of every mode from position `ctx` (after one untimed warm-up round), interleaved: round i
 * decodes token i at position ctx + i with each mode in turn, the previous mode's step being dropped first. A drift
 * in machine speed (other tenants, clocks) then affects every mode alike, so their ratios hold on a shared machine.
 */
function timeDecodeInterleaved(model: Model, specs: AttentionSpec[], ctx: number, n: number, seed: number): Measured[] {
  const r = rng(seed ^ 0x5bd1e995);
  const toks = Array.from({ length: n + 1 }, () => Math.floor(r() * model.config.nVocab));
  const out = specs.map(() => ({ ms: 0, kernels: new Map<string, number>(), k: 0, v: 0, index: 0 }));
  for (let i = 0; i <= n; i++) {
    for (const [j, spec] of specs.entries()) {
      model.truncate(ctx + i);
      model.setAttention(spec);
      model.resetCounters();
      model.runtime.resetTimers();
      const t0 = performance.now();
      model.evaluate([toks[i]]);
      const ms = performance.now() - t0;
      if (i === 0) continue;
      const o = out[j];
      o.ms += ms;
      for (const [name, t] of model.runtime.timers) o.kernels.set(name, (o.kernels.get(name) ?? 0) + t.ms);
      const b = model.attention.bytes;
      o.k += b.k;
      o.v += b.v;
      o.index += b.index;
    }
  }
  return out.map((o) => ({ msPerToken: o.ms / n, kernels: o.kernels, attnBytes: { k: o.k, v: o.v, index: o.index } }));
}

/** Bytes of 1-D tensors (norm weights, biases): read once per token besides the matrices. */
function vectorBytes(model: Model): number {
  let b = 0;
  for (const t of model.file.tensors) if (t.shape.length === 1 || (t.shape[1] ?? 1) === 1) b += t.bytes;
  return b;
}

function describeFile(file: GgufFile): string {
  const c = configFromGguf(file);
  const types = new Map<string, number>();
  for (const t of file.tensors) {
    if (t.shape.length < 2) continue;
    const name = ggmlTypeName(t.type);
    types.set(name, (types.get(name) ?? 0) + t.bytes);
  }
  const main = [...types].sort((a, b) => b[1] - a[1])[0]?.[0] ?? "?";
  return `${c.arch} ${c.nLayer} layers, ${c.nEmbd} embd, ${c.nHead}/${c.nHeadKv} heads × ${c.headDim}, ` +
    `ffn ${c.nFf}, vocab ${c.nVocab}, mostly ${main}`;
}

/** Runs the whole profile; see the module comment. */
export async function runProfile(opts: ProfileOptions): Promise<ProfileReport> {
  if (opts.backend === "webgpu") return await runGpuProfile(opts);
  const log = opts.log ?? (() => {});
  const seed = opts.seed ?? 1;
  const maxCtx = Math.max(...opts.contexts);
  const specs = opts.attention.map((a) => parseAttentionSpec(a));
  const rows: ProfileRow[] = [];
  let description = "";
  for (const threads of opts.threads) {
    // One model per thread count with every mode planned at load (cache layout and scratch for all),
    // so each context is filled once and every mode decodes from the same cache contents.
    const runtime = await createRuntime({ threads, hugePages: opts.hugePages });
    try {
      const model = await loadModel(opts.model, {
        runtime,
        ctx: maxCtx + opts.nTokens + 1,
        attention: specs[0],
        alsoAttention: specs.slice(1),
        batch: opts.fill === "prompt" ? undefined : 1,
        cacheType: opts.cacheType,
      });
      description ||= describeFile(model.file);
      const probe = measureBandwidth(runtime, opts.probeBytes);
      log(`threads ${threads}: bandwidth probe ${probe.toFixed(2)} GB/s`);
      if (opts.hugePages) {
        log(`huge pages advised for ${(runtime.hugePageBytes / 2 ** 30).toFixed(2)} GiB of wasm memory`);
      }
      const other = vectorBytes(model);
      if (specs[0].kind !== "dense") log("note: list dense first to get measured ratios and speedups");
      for (const ctx of [...opts.contexts].sort((a, b) => a - b)) {
        const t0 = performance.now();
        if (opts.fill === "random") fillRandom(model, ctx, seed + ctx);
        else fillPrompt(model, ctx, seed + ctx);
        log(`t=${threads} ctx ${ctx}: filled (${opts.fill}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        let dense: { ms: number; bytes: number } | undefined;
        log(`t=${threads} ctx ${ctx}: timing ${opts.nTokens} tokens per mode, modes interleaved token by token`);
        const measured = timeDecodeInterleaved(model, specs, ctx, opts.nTokens, seed + ctx);
        model.truncate(ctx);
        for (const [si, spec] of specs.entries()) {
          model.setAttention(spec);
          const m = measured[si];
          const n = opts.nTokens;
          const ops: OpTimes = { matvec: 0, attention: 0, other: 0, untimed: 0 };
          for (const [k, ms] of m.kernels) ops[opGroup(k)] += ms / n;
          const opSum = ops.matvec + ops.attention + ops.other;
          ops.untimed = m.msPerToken - opSum;
          const bytes: TokenBytes = {
            weights: model.weightBytesPerToken,
            k: m.attnBytes.k / n,
            v: m.attnBytes.v / n,
            other: other + m.attnBytes.index / n,
            total: 0,
          };
          bytes.total = bytes.weights + bytes.k + bytes.v + bytes.other;
          const gbps = bytes.total / (m.msPerToken / 1000) / 1e9;
          const row: ProfileRow = {
            backend: "wasm",
            threads,
            attention: model.attention.name,
            ctx,
            fill: opts.fill,
            nTokens: n,
            msPerToken: m.msPerToken,
            tokensPerSec: 1000 / m.msPerToken,
            bytesPerToken: bytes,
            gbPerSec: gbps,
            probeGBps: probe,
            pctOfProbe: (100 * gbps) / probe,
            ops,
            opSumMs: opSum,
            opSumPct: (100 * opSum) / m.msPerToken,
          };
          const attnBytes = bytes.k + bytes.v + m.attnBytes.index / n;
          if (spec.kind === "dense") {
            dense = { ms: ops.attention, bytes: attnBytes };
          } else {
            // Mid-range position of the timed steps: S = ctx + 2 .. ctx + n + 1 (after the warm-up).
            const S = ctx + 1 + Math.ceil(n / 2);
            const d = model.config.headDim;
            row.predictedRatio = predictedTransfer(spec, d, S) / predictedTransfer({ kind: "dense" }, d, S);
            if (dense) {
              row.measuredRatio = attnBytes / dense.bytes;
              row.attentionSpeedup = dense.ms / ops.attention;
            }
          }
          rows.push(row);
        }
      }
      model.close();
    } finally {
      runtime.close();
    }
  }
  return { model: opts.model, description, fill: opts.fill, rows };
}

/** The webgpu variant: `GpuModel.benchDecode` (random K/V fill, steps submitted back to back). */
async function runGpuProfile(opts: ProfileOptions): Promise<ProfileReport> {
  if (opts.fill !== "random") throw new SparqError("--backend webgpu: only --fill random is available");
  const { loadGpuModel } = await import("./webgpu/model.ts");
  const { getGpu } = await import("./webgpu/device.ts");
  const { gpuBandwidthProbe } = await import("./webgpu/probe.ts");
  const gpu = await getGpu();
  const probe = (await gpuBandwidthProbe(gpu, opts.probeBytes)).bytesPerSecond / 1e9;
  opts.log?.(`webgpu: bandwidth probe ${probe.toFixed(1)} GB/s`);
  const file = await openGguf(opts.model);
  let other = 0;
  for (const t of file.tensors) if (t.shape.length === 1 || (t.shape[1] ?? 1) === 1) other += t.bytes;
  const maxCtx = Math.max(...opts.contexts);
  const rows: ProfileRow[] = [];
  const dense = new Map<number, { bytes: number; ms: number }>();
  for (const a of opts.attention) {
    const spec = parseAttentionSpec(a);
    const model = await loadGpuModel(opts.model, {
      ctx: maxCtx + opts.nTokens + 1,
      attention: spec,
      gpu,
      cacheType: opts.cacheType,
    });
    try {
      for (const ctx of [...opts.contexts].sort((x, y) => x - y)) {
        const b = await model.benchDecode(ctx, opts.nTokens);
        const kv = { ...model.counters.kv };
        // GPU time per op kind of one more step, each kind replayed alone (GPU timers, not wall time).
        const ops: OpTimes = { matvec: 0, attention: 0, other: 0, untimed: 0 };
        for (const [kind, ms] of Object.entries(await model.profileOps(5))) ops[opGroup(kind)] += ms;
        const n = b.steps;
        const bytes: TokenBytes = {
          weights: b.weightBytesPerToken,
          k: kv.k / n,
          v: kv.v / n,
          other: other + kv.index / n,
          total: 0,
        };
        bytes.total = bytes.weights + bytes.k + bytes.v + bytes.other;
        const row: ProfileRow = {
          backend: "webgpu",
          threads: 0,
          attention: model.attention,
          ctx,
          fill: "random",
          nTokens: n,
          msPerToken: (1000 * b.seconds) / n,
          tokensPerSec: b.tokensPerSecond,
          bytesPerToken: bytes,
          gbPerSec: (bytes.total * b.tokensPerSecond) / 1e9,
          probeGBps: probe,
          ops,
        };
        row.pctOfProbe = (100 * row.gbPerSec) / probe;
        row.opSumMs = ops.matvec + ops.attention + ops.other;
        ops.untimed = row.msPerToken - row.opSumMs;
        row.opSumPct = (100 * row.opSumMs) / row.msPerToken;
        if (spec.kind === "dense") dense.set(ctx, { bytes: b.kvBytesPerToken, ms: ops.attention });
        else {
          const S = ctx + 1 + Math.ceil(n / 2), d = model.config.headDim;
          row.predictedRatio = predictedTransfer(spec, d, S) / predictedTransfer({ kind: "dense" }, d, S);
          const dk = dense.get(ctx);
          if (dk) {
            row.measuredRatio = b.kvBytesPerToken / dk.bytes;
            row.attentionSpeedup = dk.ms / ops.attention;
          }
        }
        opts.log?.(`${row.attention} webgpu ctx ${ctx}: ${row.tokensPerSec.toFixed(2)} tok/s`);
        rows.push(row);
      }
    } finally {
      model.close();
    }
  }
  return { model: opts.model, description: describeFile(file), fill: "random", rows };
}

const MB = (b: number) => (b / 1e6).toFixed(b >= 1e8 ? 0 : b >= 1e6 ? 1 : 3);
const f = (x: number | undefined, digits: number) => (x === undefined || !Number.isFinite(x) ? "" : x.toFixed(digits));

/** The llama-bench-style Markdown table of a report. */
export function formatProfileTable(report: ProfileReport): string {
  const head = [
    "attention",
    "backend",
    "t",
    "ctx",
    "fill",
    "tok/s",
    "ms/tok",
    "weights MB",
    "K MB",
    "V MB",
    "other MB",
    "GB/s",
    "% probe",
    "matvec ms",
    "attn ms",
    "other ms",
    "untimed ms",
    "ops/wall",
    "xfer pred",
    "xfer meas",
    "attn speedup",
  ];
  const right = new Set(head.slice(2));
  const body = report.rows.map((r) => [
    r.attention,
    r.backend,
    r.backend === "webgpu" ? "" : String(r.threads),
    String(r.ctx),
    r.fill,
    f(r.tokensPerSec, 2),
    f(r.msPerToken, 1),
    MB(r.bytesPerToken.weights),
    MB(r.bytesPerToken.k),
    MB(r.bytesPerToken.v),
    MB(r.bytesPerToken.other),
    f(r.gbPerSec, 2),
    f(r.pctOfProbe, 0),
    f(r.ops?.matvec, 1),
    f(r.ops?.attention, 2),
    f(r.ops?.other, 2),
    f(r.ops?.untimed, 2),
    r.opSumPct === undefined ? "" : `${f(r.opSumPct, 0)}%`,
    f(r.predictedRatio, 3),
    f(r.measuredRatio, 3),
    r.attentionSpeedup === undefined ? "" : `${f(r.attentionSpeedup, 2)}x`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (right.has(head[i]) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(" | ")} |`;
  const rule = `|${
    widths.map((w, i) => (right.has(head[i]) ? `${"-".repeat(w + 1)}:` : "-".repeat(w + 2))).join("|")
  }|`;
  const probes = [
    ...new Set(
      report.rows.filter((r) => r.probeGBps).map((r) =>
        `${r.backend === "webgpu" ? "webgpu" : `t=${r.threads}`}: ${r.probeGBps!.toFixed(2)} GB/s`
      ),
    ),
  ];
  const probeLine = probes.length > 0 ? `bandwidth probe (streaming read): ${probes.join(", ")}` : "";
  const fillLine = report.fill === "random" ? "KV cache filled with random values (--fill random), not a prompt" : "";
  return [
    `model: ${report.model} (${report.description})`,
    [probeLine, fillLine].filter((x) => x).join("; "),
    "",
    line(head),
    rule,
    ...body.map(line),
  ].join("\n");
}

/** tokens/s against context length for each (attention, threads), with each one's bandwidth limit dashed. */
export function profileSvg(report: ProfileReport): string {
  const groups = new Map<string, ProfileRow[]>();
  const multiT = new Set(report.rows.map((r) => r.threads)).size > 1;
  for (const r of report.rows) {
    const key = r.backend === "webgpu"
      ? `${r.attention} (webgpu)`
      : multiT
      ? `${r.attention} (t=${r.threads})`
      : r.attention;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const series: PlotSeries[] = [];
  const palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
  [...groups].forEach(([name, rows], i) => {
    const color = palette[i % palette.length];
    const sorted = [...rows].sort((a, b) => a.ctx - b.ctx);
    series.push({ name, color, points: sorted.map((r) => [r.ctx, r.tokensPerSec]) });
    const limited = sorted.filter((r) => r.probeGBps !== undefined);
    if (limited.length > 0) {
      series.push({
        name: `bandwidth limit: ${name}`,
        color,
        dashed: true,
        points: limited.map((r) => [r.ctx, (r.probeGBps! * 1e9) / r.bytesPerToken.total]),
      });
    }
  });
  return svgLinePlot({
    title: `decode speed vs context — ${report.model.split("/").pop()}${
      report.fill === "random" ? " (random KV fill)" : ""
    }`,
    xLabel: "context length (positions in the KV cache)",
    yLabel: "tokens / s",
    logX: true,
    series,
  });
}
