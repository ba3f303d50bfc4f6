/**
 * The forward pass on the GPU (WebGPU compute shaders), with the same `evaluate` contract as the
 * wasm model. Weights are uploaded once in their GGUF quantized form (split by rows where a tensor
 * exceeds `maxStorageBufferBindingSize`) and dequantized inside the matmul kernels; activations are
 * f32; the KV cache lives on the GPU. All dispatches of a step (embedding → layers → logits) are
 * recorded at load time and replayed into one compute pass and one submit per batch; only the
 * logits, or the argmax or sampled token (the sampler runs on the GPU: lib/webgpu/sampling.ts), are
 * read back.
 * @module
 */
import { SparqError } from "../errors.ts";
import { GgmlType } from "../ggml_types.ts";
import { type GgufFile, type GgufTensorInfo, openGguf, readTensorInto } from "../gguf.ts";
import { configFromGguf, type ModelConfig } from "../model_config.ts";
import { type AttentionSpec, formatAttentionSpec, parseAttentionSpec } from "../attention/spec.ts";
import type { AttentionBytes } from "../attention/mode.ts";
import { getGpu, type Gpu, subgroupMode } from "./device.ts";
import { Kernels, type Op, type StepValues } from "./kernels.ts";
import { GpuAttention } from "./attention.ts";
import { MAX_CHUNKS } from "./shaders/attention.ts";
import { checkGpuType, ggufRowBytes, gpuRowBytes, repack, usesVecView } from "./shaders/quant.ts";
import {
  gemmTile,
  getRowsWgsl,
  groupRows,
  type MatmulShape,
  matmulWgsl,
  MATVEC_ROWS,
  ropeFusable,
  type RopeStore,
} from "./shaders/matmul.ts";
import { actWgsl, argmaxWgsl, normWgsl, ropeWgsl } from "./shaders/elementwise.ts";
import { f32Lit } from "./shaders/common.ts";
import { SAMPLE_BYTES, SAMPLE_MAX_K, sampleWgsl } from "./shaders/sample.ts";
import { type DeviceSampling, gpuSamples, GpuSampling, type SampledSteps, samplingEnv } from "./sampling.ts";
import type { Sampler } from "../sampler.ts";
import { submitFloor } from "./probe.ts";
import { tuningEnv } from "../env.ts";
import { type CacheType, parseCacheType } from "../kv_cache.ts";
import type { CacheElem } from "./shaders/kv_cache.ts";

/** SPARQ_GPU_TRACE=1 traces GPU steps (read only where --allow-env grants it: generate runs with --allow-read only). */
const TRACE = tuningEnv("SPARQ_GPU_TRACE") === "1";

/**
 * SPARQ_GPU_FUSE_ROPE=0 keeps RoPE and the K/V append in their own dispatch on decode steps (default: in the
 * qkv matvec's store where it applies: llama RoPE, Q4_0 vec kernels). Read at each load (bench sections set it).
 */
const fuseRopeEnv = () => tuningEnv("SPARQ_GPU_FUSE_ROPE") !== "0";
const gemmEnv = () => tuningEnv("SPARQ_GPU_GEMM") !== "0";
/** SPARQ_GPU_GEMM_TILE=64|128: the GEMM's tile instead of the one the workgroup memory limit allows. */
const gemmTileEnv = () => {
  const t = tuningEnv("SPARQ_GPU_GEMM_TILE");
  return t === "64" || t === "128" ? Number(t) : undefined;
};

/**
 * SPARQ_GPU_MATVEC=vec:64x8 (mode:threads×rows[wWorkgroup]; modes vec, dp4a, dp4s, word, block) or just the mode
 * overrides the matvec shape (benchmarks; the gated FFN matvec uses half the rows; w: threads per workgroup, vec modes).
 * SPARQ_GPU_MATVEC_QKV, _WO, _GATE (the gated gate·up: rows as given), _DOWN and _OUT override one matvec only.
 */
function matvecOverride(name = "SPARQ_GPU_MATVEC"): Partial<MatmulShape> {
  const m = tuningEnv(name)?.match(/^(vec|dp4a|dp4s|word|block)(?::(\d+)x(\d+)(?:w(\d+))?)?$/);
  if (!m) return {};
  const mode = { mvMode: m[1] as MatmulShape["mvMode"], ...(m[4] ? { mvWg: Number(m[4]) } : {}) };
  return m[2] ? { ...mode, mvThreads: Number(m[2]), mvRows: Number(m[3]) } : mode;
}

/** Options of {@link loadGpuModel}. */
export interface GpuModelOptions {
  /** Context length (KV-cache positions); default min(ctxTrain, 2048). */
  ctx?: number;
  /** Attention spec (`dense`, `sparq:ratio=1/8`, …); default dense. */
  attention?: string | AttentionSpec;
  /**
   * Most tokens per prompt batch (default 512), fewer where a batch's buffers would exceed the
   * adapter's largest storage binding.
   */
  batch?: number;
  /** Device to use (default: the process-wide one). */
  gpu?: Gpu;
  /**
   * KV-cache element type (default f32). f16 halves the cache: stored as f16 through `shader-f16` where the
   * device has it (unless SPARQ_GPU_SHADER_F16=0), else as halves packed in u32 words; computed in f32 either way.
   */
  cacheType?: CacheType;
  /**
   * Fused decode kernels (default true): RMSNorm inside the matvecs that read it, q/k/v as one
   * matrix, gate/up/activation in one dispatch. false runs each op alone (tests compare the two).
   */
  fuse?: boolean;
  /**
   * Prompt batches through the tiled GEMM (default: on a hardware adapter, unless SPARQ_GPU_GEMM=0);
   * false runs them through the decode matvec, a token per workgroup (tests compare the two).
   * llvmpipe takes ~10 s to compile each GEMM shape (its workgroup memory), so it is off there.
   */
  gemm?: boolean;
}

/** Running totals of a GPU model (since load or `resetCounters()`). */
export interface GpuCounters {
  /** Tokens evaluated (prompt and decode). */
  tokens: number;
  /** Batches submitted (one submit each). */
  submits: number;
  /** Compute dispatches recorded. */
  dispatches: number;
  /** Weight bytes read by the kernels (each matrix once per batch). */
  weightBytes: number;
  /** KV-cache and index bytes read by attention. */
  kv: AttentionBytes;
  /** Wall-clock milliseconds spent in `evaluate` (includes the readback). */
  ms: number;
}

/** Result of {@link GpuModel.benchDecode}. */
export interface DecodeBench {
  steps: number;
  /** Context length at the first timed step. */
  context: number;
  seconds: number;
  /** Of which: recording the command buffers on the CPU (the GPU runs behind it). */
  encodeSeconds: number;
  /** Of which: `queue.submit` calls on the CPU. */
  submitSeconds: number;
  /** CPU time until the last step was submitted (encode + submit + uniform writes). */
  cpuSeconds: number;
  /** GPU time of the same steps recorded beforehand and submitted at once (no CPU gaps). */
  gpuSeconds: number;
  /** How late an empty submit is reported done (Deno polls; included in `seconds`, not in `gpuSeconds`). */
  waitSeconds: number;
  tokensPerSecond: number;
  /** Bytes read per token: weights + KV/index. */
  bytesPerToken: number;
  weightBytesPerToken: number;
  kvBytesPerToken: number;
}

/** A model loaded on the GPU. */
export interface GpuModel {
  readonly config: ModelConfig;
  readonly ctx: number;
  /** Canonical attention spec. */
  readonly attention: string;
  /** How the KV cache is stored: f32, f16 (`shader-f16`) or f16 packed in u32 words. */
  readonly cacheElem: CacheElem;
  /** Number of positions in the KV cache (the next token's position). */
  readonly pos: number;
  readonly counters: GpuCounters;
  /**
   * Appends `tokens` at `pos` and returns the logits of the last token (`[nVocab]`), or of every
   * token (`[tokens.length][nVocab]`) with `allLogits`.
   */
  evaluate(tokens: number[], opts?: { allLogits?: boolean }): Promise<Float32Array>;
  /** Like `evaluate` but computes the argmax on the GPU and reads back only that token id. */
  evaluateArgmax(tokens: number[]): Promise<number>;
  /**
   * Evaluates `prompt` and samples with `sampler` on the GPU, steps running ahead of the reader
   * (see lib/webgpu/sampling.ts), or undefined where the GPU sampler lacks a setting (top-k 0 or
   * above 1024) or SPARQ_GPU_SAMPLE=0: then `evaluate` and the CPU sampler do it.
   */
  sampleOnDevice(prompt: readonly number[], sampler: Sampler, maxSamples: number): DeviceSampling | undefined;
  /**
   * Benchmark: fills positions [0, context) of the cache with random K/V (no prefill), then times
   * `steps` greedy decode steps submitted back to back (the argmax feeds the next step on the GPU).
   */
  benchDecode(context: number, steps: number): Promise<DecodeBench>;
  /**
   * Changes the attention of later decode steps without reloading: to dense always, to another
   * SparQ spec when the model was loaded with SparQ (same reallocation setting).
   */
  setAttention(spec: string | AttentionSpec): void;
  /**
   * Milliseconds of GPU time per op kind for one decode step, or a prompt batch of `nTok` tokens
   * (see the implementation); `wholeStep` adds the whole step replayed the same way ("step (all
   * ops, one pass)").
   */
  profileOps(repeats?: number, wholeStep?: boolean, nTok?: number): Promise<Record<string, number>>;
  /** Clears the cache (pos = 0). */
  reset(): void;
  resetCounters(): void;
  close(): void;
}

interface WeightPart {
  buf: GPUBuffer;
  row0: number;
  rows: number;
}

interface Weight {
  name: string;
  type: number;
  cols: number;
  rows: number;
  parts: WeightPart[];
  bytes: number;
}

function tensor(file: GgufFile, name: string): GgufTensorInfo {
  const t = file.tensorByName.get(name);
  if (!t) throw new SparqError(`${file.path}: missing tensor ${name}`);
  return t;
}

/**
 * Uploads the matrices `names` (same type and row length) as one matrix, their rows one after the
 * other (q, k and v become one matvec), split by rows where it exceeds the binding limit.
 */
async function uploadMatrix(k: Kernels, file: GgufFile, ...names: string[]): Promise<Weight> {
  const ts = names.map((n) => tensor(file, n));
  const t = ts[0], name = names.join("+");
  const cols = t.shape[0];
  const rowsOf = (x: GgufTensorInfo) => x.shape.slice(1).reduce((a, b) => a * b, 1);
  for (const x of ts) {
    if (x.type !== t.type || x.shape[0] !== cols) throw new Error(`uploadMatrix: ${name}: types or row lengths differ`);
  }
  const rows = ts.reduce((a, x) => a + rowsOf(x), 0);
  checkGpuType(t.type, cols, `${file.path}: ${name}`);
  const lim = k.gpu.limits;
  const maxBytes = Math.min(lim.maxStorageBufferBindingSize, lim.maxBufferSize);
  const rowBytes = gpuRowBytes(t.type, cols);
  const maxRows = Math.floor(maxBytes / rowBytes / MATVEC_ROWS) * MATVEC_ROWS;
  if (maxRows === 0) throw new SparqError(`${file.path}: ${name}: one row exceeds the GPU's buffer binding limit`);
  const src = ggufRowBytes(t.type, cols);
  const parts: WeightPart[] = [];
  for (let row0 = 0; row0 < rows; row0 += maxRows) {
    const n = Math.min(maxRows, rows - row0);
    const staging = new Uint8Array(n * src);
    // Copy the rows [row0, row0 + n) of the concatenation, tensor by tensor.
    let first = 0;
    for (const x of ts) {
      const lo = Math.max(row0, first), hi = Math.min(row0 + n, first + rowsOf(x));
      if (lo < hi) {
        const part = { ...x, offset: x.offset + (lo - first) * src, bytes: (hi - lo) * src };
        await readTensorInto(file, part, staging.subarray((lo - row0) * src, (hi - row0) * src));
      }
      first += rowsOf(x);
    }
    const data = repack(t.type, staging);
    const buf = k.buffer(data.length, undefined, `${name}[${row0}]`);
    k.device.queue.writeBuffer(buf, 0, data);
    parts.push({ buf, row0, rows: n });
  }
  return { name, type: t.type, cols, rows, parts, bytes: rows * rowBytes };
}

/** Uploads the F32 vectors `names`, one after the other, as one buffer. */
async function uploadVector(k: Kernels, file: GgufFile, ...names: string[]): Promise<GPUBuffer> {
  const ts = names.map((n) => tensor(file, n));
  for (const [i, t] of ts.entries()) {
    if (t.type !== 0) {
      throw new SparqError(`${file.path}: ${names[i]}: 1-D tensors must be F32 for the webgpu backend`);
    }
  }
  const data = new Uint8Array(ts.reduce((a, t) => a + t.bytes, 0));
  let o = 0;
  for (const t of ts) {
    await readTensorInto(file, t, data.subarray(o, o + t.bytes));
    o += t.bytes;
  }
  const buf = k.buffer(data.length, undefined, names.join("+"));
  k.device.queue.writeBuffer(buf, 0, data);
  return buf;
}

/** RoPE (cos, sin) per position and pair, computed as ggml does (f32 θ, θ ← θ·base^(-2/n)). */
function ropeTable(cfg: ModelConfig, ctx: number): Float32Array {
  const { kind, factor } = cfg.ropeScaling;
  if (kind !== "none" && kind !== "linear") {
    throw new SparqError(`webgpu backend: RoPE scaling "${kind}" is not supported`);
  }
  const half = cfg.ropeDims / 2;
  const freqScale = Math.fround(kind === "linear" && factor > 0 ? 1 / factor : 1);
  const thetaScale = Math.fround(Math.pow(cfg.ropeBase, Math.fround(-2 / cfg.ropeDims)));
  const out = new Float32Array(ctx * half * 2);
  for (let p = 0; p < ctx; p++) {
    let theta = Math.fround(p);
    for (let i = 0; i < half; i++) {
      const th = Math.fround(theta * freqScale);
      out[(p * half + i) * 2] = Math.cos(th);
      out[(p * half + i) * 2 + 1] = Math.sin(th);
      theta = Math.fround(theta * thetaScale);
    }
  }
  return out;
}

/** How `gpu` stores a KV cache of type `t` (f16: typed where the device has `shader-f16`, else packed in u32s). */
export function gpuCacheElem(gpu: Gpu, t: CacheType): CacheElem {
  if (t === "f32") return "f32";
  return gpu.features.has("shader-f16") && tuningEnv("SPARQ_GPU_SHADER_F16") !== "0" ? "f16" : "f16p";
}

/** Loads the GGUF model at `path` onto the GPU. */
export async function loadGpuModel(path: string, opts: GpuModelOptions = {}): Promise<GpuModel> {
  const gpu = opts.gpu ?? await getGpu();
  const file = await openGguf(path);
  const cfg = configFromGguf(file);
  const spec = typeof opts.attention === "string"
    ? parseAttentionSpec(opts.attention)
    : opts.attention ?? { kind: "dense" as const };
  const ctx = opts.ctx ?? Math.min(cfg.ctxTrain, 2048);
  if (!Number.isInteger(ctx) || ctx < 1) throw new SparqError(`--ctx ${ctx}: must be a positive integer`);
  if (opts.batch !== undefined && (!Number.isInteger(opts.batch) || opts.batch < 1)) {
    throw new SparqError(`--batch ${opts.batch}: must be a positive integer`);
  }
  const elem = gpuCacheElem(gpu, parseCacheType(opts.cacheType));
  const k = new Kernels(gpu);
  try {
    return await GpuModelImpl.create(
      k,
      file,
      cfg,
      spec,
      ctx,
      elem,
      opts.batch ?? 512,
      opts.fuse ?? true,
      opts.gemm ?? (gemmEnv() && !gpu.info.isFallbackAdapter),
    );
  } catch (e) {
    k.destroy();
    throw e;
  }
}

/** Options of one matmul op of the model (see `build`). */
interface MatmulOpts {
  xStride: number;
  yStride: number;
  yOff?: number;
  acc?: boolean;
  bias?: GPUBuffer;
  out?: boolean;
  /** RMSNorm weight: x is the norm's input, normalized inside the matvec (tile 1). */
  norm?: GPUBuffer;
  /** Which matvec (SPARQ_GPU_MATVEC_<role> overrides its shape). */
  role?: "QKV" | "WO" | "DOWN" | "OUT";
}

interface Layer {
  attnNorm: GPUBuffer;
  attnNormB?: GPUBuffer;
  ffnNorm: GPUBuffer;
  ffnNormB?: GPUBuffer;
  qkv: { w: Weight; b?: GPUBuffer; off: number }[];
  wo: Weight;
  woB?: GPUBuffer;
  gate?: Weight;
  up: Weight;
  upB?: GPUBuffer;
  down: Weight;
  downB?: GPUBuffer;
}

class GpuModelImpl implements GpuModel, SampledSteps {
  pos = 0;
  counters: GpuCounters = GpuModelImpl.zero();
  attention: string;
  /** Ops per step kind: index 0 = decode (tile 1), 1 = prompt batch (the GEMM). */
  private pre: Op[][] = [[], []];
  private layerOps: { before: Op[][]; after: Op[][] }[] = [];
  private outOps: Op[][] = [[], []];
  private argmaxOp!: Op;
  private sampleOp!: Op;
  private layerWeightBytes = 0;
  private outWeightBytes = 0;
  private embRowBytes = 0;
  private readback: GPUBuffer;
  private closed = false;
  /** CPU milliseconds spent recording and submitting steps (benchDecode). */
  private timing = { encode: 0, submit: 0 };
  /** Pending trace run (SPARQ_GPU_TRACE=1): awaited before the step's own submit is read. */
  private tracing?: Promise<void>;

  private constructor(
    private k: Kernels,
    readonly config: ModelConfig,
    readonly ctx: number,
    private att: GpuAttention,
    private bufs: Record<string, GPUBuffer>,
    private batch: number,
  ) {
    this.attention = formatAttentionSpec(att.sparq ?? { kind: "dense" });
    this.readback = k.buffer(
      batch * config.nVocab * 4,
      GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      "logits readback",
    );
  }

  get cacheElem(): CacheElem {
    return this.att.shape.elem ?? "f32";
  }

  private static zero(): GpuCounters {
    return { tokens: 0, submits: 0, dispatches: 0, weightBytes: 0, kv: { k: 0, v: 0, index: 0 }, ms: 0 };
  }

  static async create(
    k: Kernels,
    file: GgufFile,
    cfg: ModelConfig,
    spec: AttentionSpec,
    ctx: number,
    elem: CacheElem,
    maxBatch: number,
    fuse: boolean,
    gemm: boolean,
  ): Promise<GpuModelImpl> {
    const { nEmbd, nHead, nHeadKv: nKv, headDim: d, nFf, nVocab, nLayer } = cfg;
    if (cfg.headDimV !== d) throw new SparqError(`${file.path}: key and value head dimensions differ`);
    if (nEmbd % 32 !== 0) throw new SparqError(`${file.path}: embedding length ${nEmbd} is not a multiple of 32`);
    const qkvStride = (nHead + 2 * nKv) * d;
    // Fewer tokens per batch where the largest per-token buffer (attention partials, logits, FFN
    // activations or q/k/v) would exceed the adapter's largest storage binding.
    const perTok = 4 * Math.max(nHead * MAX_CHUNKS * (d + 2), nVocab, nFf, qkvStride);
    const batch = Math.max(1, Math.min(maxBatch, Math.floor(k.gpu.limits.maxStorageBufferBindingSize / perTok)));
    const f = (n: number) => k.buffer(batch * n * 4);
    const bufs: Record<string, GPUBuffer> = {
      x: f(nEmbd),
      h: f(nEmbd),
      h2: f(nEmbd),
      qkv: f(qkvStride),
      q: f(nHead * d),
      att: f(nHead * d),
      ffA: f(nFf),
      ffB: f(nFf),
      logits: f(nVocab),
      tokens: k.buffer(batch * 4),
      result: k.buffer(16),
      // The GPU sampler's token history (one sequence: prompt + sampled) and penalty marks.
      hist: k.buffer((ctx + 1) * 4),
      marks: k.buffer(nVocab * 4),
      candV: k.buffer(SAMPLE_MAX_K * 4),
      candI: k.buffer(SAMPLE_MAX_K * 4),
      sample: k.buffer(SAMPLE_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, "sampler"),
    };
    const rope = ropeTable(cfg, ctx);
    bufs.rope = k.buffer(rope.byteLength);
    k.device.queue.writeBuffer(bufs.rope, 0, rope);
    const att = new GpuAttention(k, { nLayer, nHead, nKv, d, ctx, batch, elem }, spec, bufs.q, bufs.att);
    const m = new GpuModelImpl(k, cfg, ctx, att, bufs, batch);
    await m.build(file, fuse, gemm);
    return m;
  }

  private async build(file: GgufFile, fuse: boolean, gemm: boolean): Promise<void> {
    const { k, bufs, config: cfg } = this;
    const { nEmbd, nHead, nHeadKv: nKv, headDim: d, nFf, nVocab } = cfg;
    const has = (n: string) => file.tensorByName.has(n);
    const vec = (n: string) => uploadVector(k, file, n);
    const opt = async (n: string) => has(n) ? await vec(n) : undefined;
    const mat = (...n: string[]) => uploadMatrix(k, file, ...n);
    const qkvStride = (nHead + 2 * nKv) * d;

    const emb = await mat("token_embd.weight");
    const outW = has("output.weight") ? await mat("output.weight") : emb;
    const outNorm = await vec("output_norm.weight");
    const outNormB = await opt("output_norm.bias");
    this.embRowBytes = gpuRowBytes(emb.type, emb.cols);
    this.outWeightBytes = outW.bytes;

    // Tokens per matmul workgroup: decode 1, prompt batches the GEMM tile (or 1 without the GEMM).
    const tiles = [1, gemm ? gemmTileEnv() ?? gemmTile(this.k.gpu.limits.maxComputeWorkgroupStorageSize) : 1];
    const subgroups = await subgroupMode(this.k.gpu);
    // llvmpipe compiles the unrolled many-row matvec very slowly (minutes at 8 rows): 2 rows there.
    // Q4_0 decode: integer dot products with Q8_0 activations where WGSL has them (H200: matvecs
    // 15% faster than the word kernel, results as llama.cpp's), the activations quantized once per
    // workgroup (dp4s: another 12%); the word kernel elsewhere.
    const dp4a = navigator.gpu.wgslLanguageFeatures?.has("packed_4x8_integer_dot_product");
    const mv: Partial<MatmulShape> = {
      ...(dp4a ? { mvMode: "dp4s" as const } : {}),
      ...(this.k.gpu.info.isFallbackAdapter ? { mvRows: 2 } : {}),
      ...matvecOverride(),
    };
    const matmul = (
      w: Weight,
      x: GPUBuffer,
      y: GPUBuffer,
      o: MatmulOpts,
      tile: number,
    ): Op[] => w.parts.map((p) => matmulOp(w, p, x, y, o, tile));
    const matmulShape = (
      w: Weight,
      p: WeightPart,
      o: MatmulOpts,
      tile: number,
    ): MatmulShape => ({
      type: w.type,
      cols: w.cols,
      rows: p.rows,
      row0: (o.yOff ?? 0) + p.row0,
      biasRow0: p.row0,
      xStride: o.xStride,
      yStride: o.yStride,
      tile,
      accumulate: !!o.acc,
      bias: !!o.bias,
      tokens: o.out ? "nOut" : "nTok",
      subgroups,
      ...(tile === 1 ? { ...mv, ...(o.role ? matvecOverride(`SPARQ_GPU_MATVEC_${o.role}`) : {}) } : {}),
      ...(o.norm ? { rmsNorm: { eps: cfg.normEps } } : {}),
    });
    const matmulOp = (
      w: Weight,
      p: WeightPart,
      x: GPUBuffer,
      y: GPUBuffer | undefined,
      o: MatmulOpts,
      tile: number,
      rope?: { store: RopeStore; buffers: Record<number, GPUBuffer | undefined> },
    ): Op => {
      const tokens = o.out ? "nOut" as const : "nTok" as const;
      const shape: MatmulShape = { ...matmulShape(w, p, o, tile), ...(rope ? { rope: rope.store } : {}) };
      const wgsl = matmulWgsl(shape);
      const entries: Record<number, GPUBuffer | undefined> = { 0: p.buf, 1: x, 2: y, ...rope?.buffers };
      if (usesVecView(w.type)) entries[5] = p.buf;
      if (o.bias) entries[4] = o.bias;
      if (o.norm) entries[8] = o.norm;
      return k.op(`matmul ${w.name}`, wgsl, entries, 3, (s) => [
        Math.ceil(p.rows / groupRows(shape)),
        Math.ceil(s[tokens] / tile),
        1,
      ]);
    };
    const perTok = (s: Required<StepValues>): [number, number, number] => [s.nTok, 1, 1];
    const norm = (x: GPUBuffer, y: GPUBuffer, w: GPUBuffer, b?: GPUBuffer, out = false) =>
      k.op(
        "norm",
        normWgsl({ n: nEmbd, eps: cfg.normEps, kind: cfg.norm, bias: !!b, tokens: out ? "nOut" : "nTok" }),
        b ? { 0: x, 1: y, 3: w, 4: b } : { 0: x, 1: y, 3: w },
        2,
        out ? (s) => [s.nOut, 1, 1] : perTok,
      );

    // Embedding lookup (rows of token_embd, dequantized, times gemma's scale).
    const embOps = emb.parts.map((p) =>
      k.op(
        "embed",
        getRowsWgsl(emb.type, emb.cols, p.rows, p.row0, f32Lit(cfg.embdScale)),
        { 0: p.buf, 1: bufs.tokens, 2: bufs.x, 5: usesVecView(emb.type) ? p.buf : undefined },
        3,
        perTok,
      )
    );
    this.pre = [embOps, embOps];

    // Decode steps fold RMSNorm (no bias) into the matvecs that read its output: one dispatch less per norm.
    const fusedNorm = (tile: number, b?: GPUBuffer) => fuse && tile === 1 && cfg.norm === "rms" && !b;
    for (let l = 0; l < cfg.nLayer; l++) {
      const n = (s: string) => `blk.${l}.${s}`;
      // Separate q, k, v of one type (and bias all or none) are uploaded as one matrix: one matvec.
      const qkvNames = ["attn_q", "attn_k", "attn_v"].map((t) => n(`${t}.weight`));
      const qkvBias = ["attn_q", "attn_k", "attn_v"].map((t) => n(`${t}.bias`));
      const oneQkv = fuse && !cfg.fusedQkv && !has(n("attn_qkv.weight")) &&
        qkvNames.every((x) => {
          const t = file.tensorByName.get(x), t0 = file.tensorByName.get(qkvNames[0]);
          return t && t0 && t.type === t0.type && t.shape[0] === t0.shape[0];
        }) && (qkvBias.every(has) || !qkvBias.some(has));
      const L: Layer = {
        attnNorm: await vec(n("attn_norm.weight")),
        attnNormB: await opt(n("attn_norm.bias")),
        ffnNorm: await vec(n("ffn_norm.weight")),
        ffnNormB: await opt(n("ffn_norm.bias")),
        qkv: cfg.fusedQkv || has(n("attn_qkv.weight"))
          ? [{ w: await mat(n("attn_qkv.weight")), b: await opt(n("attn_qkv.bias")), off: 0 }]
          : oneQkv
          ? [{
            w: await mat(...qkvNames),
            b: has(qkvBias[0]) ? await uploadVector(k, file, ...qkvBias) : undefined,
            off: 0,
          }]
          : [
            { w: await mat(n("attn_q.weight")), b: await opt(n("attn_q.bias")), off: 0 },
            { w: await mat(n("attn_k.weight")), b: await opt(n("attn_k.bias")), off: nHead * d },
            { w: await mat(n("attn_v.weight")), b: await opt(n("attn_v.bias")), off: (nHead + nKv) * d },
          ],
        wo: await mat(n("attn_output.weight")),
        woB: await opt(n("attn_output.bias")),
        gate: cfg.ffn === "gelu" ? undefined : await mat(n("ffn_gate.weight")),
        up: await mat(n("ffn_up.weight")),
        upB: await opt(n("ffn_up.bias")),
        down: await mat(n("ffn_down.weight")),
        downB: await opt(n("ffn_down.bias")),
      };
      const qkvRows = L.qkv.reduce((a, e) => a + e.w.rows, 0);
      if (qkvRows !== qkvStride) throw new SparqError(`${file.path}: blk.${l} q/k/v rows ${qkvRows} ≠ ${qkvStride}`);
      const ws = [...L.qkv.map((e) => e.w), L.wo, L.up, L.down, ...(L.gate ? [L.gate] : [])];
      this.layerWeightBytes += ws.reduce((a, w) => a + w.bytes, 0);

      const before: Op[][] = [], after: Op[][] = [];
      for (const [vi, tile] of tiles.entries()) {
        const fuseAttnNorm = fusedNorm(tile, L.attnNormB);
        const b: Op[] = fuseAttnNorm ? [] : [norm(bufs.x, bufs.h, L.attnNorm, L.attnNormB)];
        if (cfg.parallelResidual) b.push(norm(bufs.x, bufs.h2, L.ffnNorm, L.ffnNormB));
        const qkvOpts = (e: Layer["qkv"][number]): MatmulOpts => ({
          xStride: nEmbd,
          yStride: qkvStride,
          yOff: e.off,
          bias: e.b,
          norm: fuseAttnNorm ? L.attnNorm : undefined,
          role: "QKV",
        });
        // Decode steps (list 0: one token): RoPE and the K/V append in the qkv matvec's store where it can.
        const cache = this.att.layers[l];
        const rope: RopeStore = {
          nHead,
          nKv,
          d,
          ropeDims: cfg.ropeDims,
          ctx: this.ctx,
          kt: !!cache.kt,
          vsum: !!cache.vsum,
          elem: this.att.shape.elem,
        };
        const storageBuffers = (e: Layer["qkv"][number]) =>
          7 + (e.b ? 1 : 0) + (fuseAttnNorm ? 1 : 0) + (rope.kt ? 1 : 0) + (rope.vsum ? 1 : 0);
        const fuseRope = vi === 0 && fuse && fuseRopeEnv() && cfg.ropeType === "norm" &&
          L.qkv.every((e) =>
            storageBuffers(e) <= k.gpu.limits.maxStorageBuffersPerShaderStage &&
            e.w.parts.every((p) => ropeFusable(matmulShape(e.w, p, qkvOpts(e), tile), rope))
          );
        if (fuseRope) {
          const buffers = {
            9: bufs.rope,
            10: bufs.q,
            11: cache.k,
            12: cache.v,
            13: cache.kt,
            14: cache.vsum,
          };
          for (const e of L.qkv) {
            b.push(
              ...e.w.parts.map((p) =>
                matmulOp(e.w, p, fuseAttnNorm ? bufs.x : bufs.h, undefined, qkvOpts(e), tile, { store: rope, buffers })
              ),
            );
          }
        } else {
          for (const e of L.qkv) b.push(...matmul(e.w, fuseAttnNorm ? bufs.x : bufs.h, bufs.qkv, qkvOpts(e), tile));
          b.push(k.op(
            "rope+kv",
            ropeWgsl({
              nHead,
              nKv,
              d,
              ropeDims: cfg.ropeDims,
              neox: cfg.ropeType === "neox",
              ctx: this.ctx,
              qkvStride,
              kt: !!cache.kt,
              vsum: !!cache.vsum,
              elem: this.att.shape.elem,
            }),
            {
              0: bufs.qkv,
              1: bufs.q,
              2: cache.k,
              3: cache.v,
              5: bufs.rope,
              ...(cache.kt ? { 6: cache.kt! } : {}),
              ...(cache.vsum ? { 7: cache.vsum! } : {}),
            },
            4,
            (s) => [s.nTok, nHead + nKv, 1],
          ));
        }
        before.push(b);

        const a: Op[] = [];
        a.push(
          ...matmul(
            L.wo,
            bufs.att,
            bufs.x,
            { xStride: nHead * d, yStride: nEmbd, acc: true, bias: L.woB, role: "WO" },
            tile,
          ),
        );
        const fuseFfnNorm = !cfg.parallelResidual && fusedNorm(tile, L.ffnNormB);
        const ffIn = cfg.parallelResidual ? bufs.h2 : fuseFfnNorm ? bufs.x : bufs.h;
        const ffNorm = fuseFfnNorm ? L.ffnNorm : undefined;
        if (!cfg.parallelResidual && !fuseFfnNorm) a.push(norm(bufs.x, bufs.h, L.ffnNorm, L.ffnNormB));
        const gated = fuse && tile === 1 && L.gate && !L.upB && cfg.ffn !== "gelu" && L.gate.parts.length === 1 &&
          L.up.parts.length === 1 && L.gate.type === GgmlType.Q4_0 && L.up.type === GgmlType.Q4_0 &&
          mv.mvMode !== "block";
        if (gated) {
          // Decode: gate, up and the activation in one dispatch (ffA = act(gate·x)·(up·x)).
          const shape: MatmulShape = {
            type: GgmlType.Q4_0,
            cols: nEmbd,
            rows: nFf,
            row0: 0,
            biasRow0: 0,
            xStride: nEmbd,
            yStride: nFf,
            tile: 1,
            accumulate: false,
            bias: false,
            tokens: "nTok",
            subgroups,
            gated: cfg.ffn as "swiglu" | "geglu",
            ...mv,
            ...(mv.mvRows ? { mvRows: Math.max(1, mv.mvRows / 2) } : {}),
            ...matvecOverride("SPARQ_GPU_MATVEC_GATE"),
            ...(ffNorm ? { rmsNorm: { eps: cfg.normEps } } : {}),
          };
          const g = L.gate!.parts[0].buf, u = L.up.parts[0].buf;
          a.push(k.op(
            `matmul ${L.gate!.name}+up`,
            matmulWgsl(shape),
            { 0: g, 1: ffIn, 2: bufs.ffA, 5: g, 6: u, 7: u, ...(ffNorm ? { 8: ffNorm } : {}) },
            3,
            (s) => [Math.ceil(nFf / groupRows(shape)), s.nTok, 1],
          ));
        } else if (L.gate) {
          a.push(...matmul(L.gate, ffIn, bufs.ffA, { xStride: nEmbd, yStride: nFf, norm: ffNorm }, tile));
          a.push(...matmul(L.up, ffIn, bufs.ffB, { xStride: nEmbd, yStride: nFf, bias: L.upB, norm: ffNorm }, tile));
        } else {
          a.push(...matmul(L.up, ffIn, bufs.ffA, { xStride: nEmbd, yStride: nFf, bias: L.upB, norm: ffNorm }, tile));
        }
        if (!gated) {
          a.push(k.op(
            "act",
            actWgsl(cfg.ffn, nFf),
            { 0: bufs.ffA, 1: L.gate ? bufs.ffB : undefined },
            2,
            (s) => {
              const g = Math.ceil((s.nTok * nFf) / 256);
              return [Math.min(g, 65535), Math.ceil(g / 65535), 1];
            },
          ));
        }
        a.push(
          ...matmul(
            L.down,
            bufs.ffA,
            bufs.x,
            { xStride: nFf, yStride: nEmbd, acc: true, bias: L.downB, role: "DOWN" },
            tile,
          ),
        );
        after.push(a);
      }
      this.layerOps.push({ before, after });
    }
    this.outOps = tiles.map((tile) =>
      fusedNorm(tile, outNormB)
        ? matmul(
          outW,
          bufs.x,
          bufs.logits,
          { xStride: nEmbd, yStride: nVocab, out: true, norm: outNorm, role: "OUT" },
          tile,
        )
        : [
          norm(bufs.x, bufs.h, outNorm, outNormB, true),
          ...matmul(outW, bufs.h, bufs.logits, { xStride: nEmbd, yStride: nVocab, out: true, role: "OUT" }, tile),
        ]
    );
    this.argmaxOp = k.op("argmax", argmaxWgsl(nVocab), { 0: bufs.logits, 1: bufs.tokens, 2: bufs.result }, 3, () => [
      1,
      1,
      1,
    ]);
    this.sampleOp = k.op(
      "sample",
      sampleWgsl(nVocab),
      {
        0: bufs.logits,
        1: bufs.tokens,
        2: bufs.result,
        3: bufs.hist,
        4: bufs.marks,
        5: bufs.sample,
        7: bufs.candV,
        8: bufs.candI,
      },
      6,
      () => [1, 1, 1],
    );
    await k.device.queue.onSubmittedWorkDone();
    k.throwIfFailed();
  }

  private check(tokens: number[]): void {
    if (this.closed) throw new Error("GpuModel: used after close()");
    if (tokens.length === 0) throw new SparqError("evaluate: no tokens");
    if (this.pos + tokens.length > this.ctx) {
      throw new SparqError(
        `context full: ${this.pos} + ${tokens.length} tokens exceed --ctx ${this.ctx}`,
      );
    }
    for (const t of tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= this.config.nVocab) {
        throw new SparqError(`token id ${t} is out of range (vocabulary ${this.config.nVocab})`);
      }
    }
  }

  /** Records one batch (tokens already in the tokens buffer) into a command buffer and submits it. */
  private record(nTok: number, nOut: number, final?: Op, extra?: (e: GPUCommandEncoder) => void) {
    const t0 = performance.now();
    const cb = this.encodeStep(nTok, nOut, final, extra);
    const t1 = performance.now();
    this.k.device.queue.submit([cb]);
    this.timing.encode += t1 - t0;
    this.timing.submit += performance.now() - t1;
  }

  /**
   * Writes the step uniform of a batch of `nTok` tokens at the current position (with logits for the
   * last `nOut` of them, 0 or 1 or all) and returns it with the batch's ops in order, `final` (the
   * argmax or the sampler) last.
   */
  private stepOps(nTok: number, nOut: number, final?: Op): { s: Required<StepValues>; ops: Op[] } {
    const s = this.k.setStep({
      pos0: this.pos,
      nTok,
      nOut,
      outTok0: nOut === 1 ? nTok - 1 : 0,
      ...this.att.stepFields(this.pos, nTok),
    });
    const v = nTok === 1 ? 0 : 1;
    const ops = [...this.pre[v]];
    for (let l = 0; l < this.layerOps.length; l++) {
      ops.push(...this.layerOps[l].before[v], ...this.att.ops(l, nTok), ...this.layerOps[l].after[v]);
    }
    if (nOut > 0) ops.push(...this.outOps[v]);
    if (final) ops.push(final);
    return { s, ops };
  }

  /** Writes the step uniform and records one batch into a command buffer (counters updated, pos advanced). */
  private encodeStep(
    nTok: number,
    nOut: number,
    final?: Op,
    extra?: (e: GPUCommandEncoder) => void,
  ): GPUCommandBuffer {
    const { s, ops } = this.stepOps(nTok, nOut, final);
    if (TRACE) this.tracing = this.k.trace(ops, s);
    const enc = this.k.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    const n = this.k.encode(pass, ops, s);
    pass.end();
    extra?.(enc);
    const cb = enc.finish();
    const c = this.counters;
    c.kv = { ...this.att.bytes };
    c.submits++;
    c.dispatches += n;
    c.tokens += nTok;
    c.weightBytes += this.layerWeightBytes + nTok * this.embRowBytes + (nOut > 0 ? this.outWeightBytes : 0);
    this.pos += nTok;
    return cb;
  }

  async evaluate(tokens: number[], opts: { allLogits?: boolean } = {}): Promise<Float32Array> {
    this.check(tokens);
    const t0 = performance.now();
    const V = this.config.nVocab;
    const all = !!opts.allLogits;
    const result = new Float32Array((all ? tokens.length : 1) * V);
    for (let i = 0; i < tokens.length; i += this.batch) {
      const chunk = tokens.slice(i, i + this.batch);
      const last = i + this.batch >= tokens.length;
      const nOut = all ? chunk.length : last ? 1 : 0;
      this.k.device.queue.writeBuffer(this.bufs.tokens, 0, new Uint32Array(chunk));
      this.record(chunk.length, nOut, undefined, (enc) => {
        if (nOut > 0) enc.copyBufferToBuffer(this.bufs.logits, 0, this.readback, 0, nOut * V * 4);
      });
      if (this.tracing) await this.tracing;
      if (nOut > 0) {
        await this.readback.mapAsync(GPUMapMode.READ, 0, nOut * V * 4);
        result.set(new Float32Array(this.readback.getMappedRange(0, nOut * V * 4)), all ? i * V : 0);
        this.readback.unmap();
      }
    }
    this.k.throwIfFailed();
    this.counters.ms += performance.now() - t0;
    return result;
  }

  async evaluateArgmax(tokens: number[]): Promise<number> {
    this.check(tokens);
    const t0 = performance.now();
    this.submitToken(tokens, this.argmaxOp, this.readback);
    await this.readback.mapAsync(GPUMapMode.READ, 0, 4);
    const id = new Uint32Array(this.readback.getMappedRange(0, 4))[0];
    this.readback.unmap();
    this.k.throwIfFailed();
    this.counters.ms += performance.now() - t0;
    return id;
  }

  sampleOnDevice(prompt: readonly number[], sampler: Sampler, maxSamples: number): DeviceSampling | undefined {
    const env = samplingEnv(this.k.gpu.info.isFallbackAdapter);
    if (prompt.length === 0 || !gpuSamples(sampler.options) || !env.on) return undefined;
    this.check([...prompt]);
    return new GpuSampling(this, [...prompt], sampler, maxSamples, env.ahead);
  }

  get device(): GPUDevice {
    return this.k.device;
  }

  encodeSampled(uniform: ArrayBuffer, out: GPUBuffer): GPUCommandBuffer {
    if (this.pos >= this.ctx) throw new SparqError(`context full: --ctx ${this.ctx}`);
    this.k.device.queue.writeBuffer(this.bufs.sample, 0, uniform);
    return this.encodeStep(1, 1, this.sampleOp, (enc) => enc.copyBufferToBuffer(this.bufs.result, 0, out, 0, 4));
  }

  submitPromptSampled(prompt: number[], uniform: ArrayBuffer, out: GPUBuffer): void {
    const q = this.k.device.queue;
    q.writeBuffer(this.bufs.hist, 0, new Uint32Array(prompt));
    q.writeBuffer(this.bufs.sample, 0, uniform);
    const clear = this.k.device.createCommandEncoder();
    clear.clearBuffer(this.bufs.marks);
    q.submit([clear.finish()]);
    this.submitToken(prompt, this.sampleOp, out);
  }

  /**
   * Submits `tokens` in batches; after the last one's logits, `final` (the argmax or the sampler) puts
   * a token in `result`, copied to `out`.
   */
  private submitToken(tokens: number[], final: Op, out: GPUBuffer): void {
    for (let i = 0; i < tokens.length; i += this.batch) {
      const chunk = tokens.slice(i, i + this.batch);
      const last = i + this.batch >= tokens.length;
      this.k.device.queue.writeBuffer(this.bufs.tokens, 0, new Uint32Array(chunk));
      this.record(chunk.length, last ? 1 : 0, last ? final : undefined, (enc) => {
        if (last) enc.copyBufferToBuffer(this.bufs.result, 0, out, 0, 4);
      });
    }
  }

  rewind(pos: number): void {
    if (pos > this.pos) throw new Error(`GpuModel.rewind: ${pos} is past position ${this.pos}`);
    this.pos = pos;
    if (this.att.vsumOps.length === 0) return;
    const enc = this.k.device.createCommandEncoder();
    this.att.reset(enc);
    this.k.device.queue.submit([enc.finish()]);
    if (pos > 0) this.k.submit(this.att.vsumOps, this.k.setStep({ pos0: 0, nTok: pos }));
  }

  throwIfFailed(): void {
    this.k.throwIfFailed();
  }

  async benchDecode(context: number, steps: number): Promise<DecodeBench> {
    // The warm-up writes positions context … context + steps (one compile step, then `steps`).
    if (context < 1 || context + steps + 1 > this.ctx) {
      throw new SparqError(`--ctx ${this.ctx}: benchmark needs ${context} + ${steps} + 1 positions`);
    }
    this.reset();
    // Random K/V for positions [0, context); the V sum is rebuilt from them.
    const s = this.k.setStep({ pos0: 0, nTok: context, fillLen: context, seed: 12345 });
    this.k.submit(this.att.randomFillOps(), s);
    this.pos = context;
    this.k.device.queue.writeBuffer(this.bufs.tokens, 0, new Uint32Array([1]));
    await this.k.device.queue.onSubmittedWorkDone();
    // One untimed step compiles everything; then as many untimed steps as timed ones bring the GPU
    // to its working clocks (the first configuration measured after a load was ~30% slow without).
    await this.evaluateArgmax([1]);
    for (let i = 0; i < steps; i++) this.record(1, 1, this.argmaxOp);
    await this.k.device.queue.onSubmittedWorkDone();
    this.pos = context;
    this.resetCounters();
    this.timing = { encode: 0, submit: 0 };
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) this.record(1, 1, this.argmaxOp);
    const cpuSeconds = (performance.now() - t0) / 1000;
    await this.k.device.queue.onSubmittedWorkDone();
    const seconds = (performance.now() - t0) / 1000;
    const c = structuredClone(this.counters);
    const kv = (c.kv.k + c.kv.v + c.kv.index) / steps;
    const { encode, submit } = this.timing;
    const bytes = { ...this.att.bytes };
    // GPU time alone: the same steps recorded first, then handed over in one submit (they all see
    // the last step's uniform, which changes nothing in the work done), minus an empty submit's wait.
    const pos = this.pos;
    this.pos = context;
    const cbs: GPUCommandBuffer[] = [];
    for (let i = 0; i < steps; i++) cbs.push(this.encodeStep(1, 1, this.argmaxOp));
    const floor = await submitFloor(async () => {
      this.k.device.queue.submit([]);
      await this.k.device.queue.onSubmittedWorkDone();
    });
    const t1 = performance.now();
    this.k.device.queue.submit(cbs);
    await this.k.device.queue.onSubmittedWorkDone();
    const gpuSeconds = (performance.now() - t1) / 1000 - floor;
    this.pos = pos;
    this.counters = c;
    this.att.bytes = bytes;
    return {
      steps,
      context: context + 1,
      seconds,
      encodeSeconds: encode / 1000,
      submitSeconds: submit / 1000,
      cpuSeconds,
      gpuSeconds,
      waitSeconds: floor,
      tokensPerSecond: steps / seconds,
      bytesPerToken: c.weightBytes / steps + kv,
      weightBytesPerToken: c.weightBytes / steps,
      kvBytesPerToken: kv,
    };
  }

  setAttention(spec: string | AttentionSpec): void {
    const sp = typeof spec === "string" ? parseAttentionSpec(spec) : spec;
    this.att.setSpec(sp);
    this.attention = formatAttentionSpec(sp);
  }

  /**
   * GPU time per op kind of one decode step (or, with `nTok` > 1, one prompt batch of that many
   * tokens) at the current position: each kind's ops (all layers) are replayed `repeats` times in one
   * submit and timed (barriers between dispatches included); with `wholeStep`, last, the whole step's
   * ops the same way (pipeline changes between dispatches included).
   */
  async profileOps(repeats = 10, wholeStep = false, nTok = 1): Promise<Record<string, number>> {
    if (nTok > this.batch || this.pos + nTok > this.ctx) throw new SparqError(`profileOps: ${nTok} tokens do not fit`);
    const { s, ops: all } = this.stepOps(nTok, 1, this.argmaxOp);
    const kinds = new Map<string, Op[]>();
    // Ops skipped at this step (e.g. SparQ kernels for other context lengths) are left out.
    for (const op of all.filter((o) => o.groups(s).every((x) => x > 0))) {
      const kind = op.name.startsWith("matmul")
        ? `matmul ${op.name.includes(".") ? op.name.split(".").at(-2) : ""}`
        : op.name;
      kinds.set(kind, [...(kinds.get(kind) ?? []), op]);
    }
    const out: Record<string, number> = {};
    // The whole step in one pass (the kinds add up to less than a step's GPU time).
    if (wholeStep) kinds.set("step (all ops, one pass)", all.filter((o) => o.groups(s).every((x) => x > 0)));
    const runner = (ops: Op[]) => async (n: number) => {
      this.k.submit(ops, s, n);
      await this.k.device.queue.onSubmittedWorkDone();
    };
    const floor = await submitFloor(runner([]));
    for (const [kind, ops] of kinds) {
      const run = runner(ops);
      await run(1);
      // GPU timestamps where the adapter has them (wall time includes the CPU encode of every dispatch).
      const gpu = await this.k.gpuSeconds(ops, s, repeats);
      if (gpu !== undefined) {
        out[`${kind} ×${ops.length}`] = gpu * 1000 / repeats;
        continue;
      }
      const t0 = performance.now();
      await run(repeats);
      out[`${kind} ×${ops.length}`] = ((performance.now() - t0) / 1000 - floor) * 1000 / repeats;
    }
    return out;
  }

  reset(): void {
    this.pos = 0;
    const enc = this.k.device.createCommandEncoder();
    this.att.reset(enc);
    this.k.device.queue.submit([enc.finish()]);
  }

  resetCounters(): void {
    this.counters = GpuModelImpl.zero();
    this.att.bytes = { k: 0, v: 0, index: 0 };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.k.destroy();
  }
}
