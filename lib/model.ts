/**
 * Loading a GGUF model into WebAssembly memory and running it: {@link loadModel} and the one
 * forward pass ({@link Model.evaluate}), written to be read top to bottom like llama2.c's `forward`.
 *
 * The forward pass is parameterised only by {@link ModelConfig}:
 * - llama: RMSNorm, RoPE on adjacent pairs (optionally `rope_freqs` factors, Llama 3), SwiGLU, MHA or GQA;
 * - qwen2: llama + q/k/v biases and NEOX RoPE;
 * - gemma: embedding × sqrt(n_embd), NEOX RoPE, GeGLU, output tied to the embedding;
 * - gptneox: LayerNorm with bias, fused qkv rows `[Q; K; V]`, partial NEOX RoPE, biases on every
 *   linear, plain GELU MLP, parallel residual `x + attn(ln1(x)) + ffn(ln2(x))`.
 *
 * A batch of several tokens (prompt processing) goes through the matrix × matrix kernels and the
 * causal prefill attention; a single token (generation) through matrix × vector and the attention
 * mode's decode step, which is where SparQ and the baselines apply.
 *
 * Memory: every tensor is read from disk straight into the WebAssembly memory of the shard that
 * holds its layer. A model larger than one wasm32 memory is split by layer over several shards
 * (≤ {@link SHARD_BUDGET} bytes each); the residual stream is copied between shards at layer
 * boundaries (a few KB per token).
 * @module
 */
import { SparqError } from "./errors.ts";
import { GgmlType, ggmlTypeInfo, ggmlTypeName } from "./ggml_types.ts";
import { type GgufFile, type GgufTensorInfo, openGguf, readTensorInto } from "./gguf.ts";
import { configFromGguf, type ModelConfig } from "./model_config.ts";
import { createRuntime, type Runtime, type Shard } from "./wasm_runtime.ts";
import * as K from "./kernels.ts";
import { type CacheType, KvCache } from "./kv_cache.ts";
import type { AttentionMode } from "./attention/mode.ts";
import { type AttentionSpec, formatAttentionSpec, parseAttentionSpec } from "./attention/spec.ts";
import { attentionScratchBytes, createAttention } from "./attention/create.ts";
import { type Tokenizer, tokenizerFromGguf } from "./tokenizer.ts";

/** Largest amount of weights + cache + scratch put in one shard (one wasm32 memory holds < 4 GiB). */
export const SHARD_BUDGET = 3.5 * 1024 ** 3;
/** Most tokens per prompt-processing batch (as llama.cpp's default n_batch/n_ubatch). */
export const DEFAULT_BATCH = 512;
/**
 * ggml-cpu evaluates GELU through an fp16 lookup table (GGML_GELU_FP16); using the same table
 * makes gemma/gptneox logits match llama.cpp to ~1e-3 instead of ~1e-2.
 */
const GELU_F16_TABLE = true;

/** Options of {@link loadModel}. */
export interface LoadOptions {
  /** Kernel threads (default: all cores); ignored when `runtime` is given. */
  threads?: number;
  /** Back the model's memories with transparent huge pages (see lib/huge_pages.ts); ignored when `runtime` is given. */
  hugePages?: boolean;
  /** Context length (KV cache positions); default min(training context, 4096). */
  ctx?: number;
  /** Attention mode: a spec string (`dense`, `sparq:ratio=1/8`, …) or a parsed spec; default dense. */
  attention?: string | AttentionSpec;
  /**
   * Further attention modes the model may switch to with {@link Model.setAttention} (their cache
   * layout and scratch are planned at load, so profile and compare need one model, not one each).
   */
  alsoAttention?: (string | AttentionSpec)[];
  /** KV cache element type (default f32). */
  cacheType?: CacheType;
  /** Tokens per prompt-processing batch (default 512, at most the context). */
  batch?: number;
  /** An existing runtime to load into (the model then does not close it). */
  runtime?: Runtime;
  /** Largest shard in bytes (tests force several shards on a tiny model). */
  shardBudget?: number;
}

/** Options of {@link Model.evaluate}. */
export interface EvaluateOptions {
  /** Return the logits of every position (`[nTok][nVocab]`) instead of only the last one. */
  allLogits?: boolean;
}

/** Time and traffic counters since load or `resetCounters()` (for `sparq profile` and the stats line). */
export interface ModelCounters {
  /** Tokens evaluated in batches of more than one (prompt processing) and the time they took. */
  prefillTokens: number;
  prefillMs: number;
  /** Tokens evaluated one at a time (decode steps) and the time they took. */
  decodeTokens: number;
  decodeMs: number;
  /** Weight bytes read by the decode steps (every matrix once per step, plus one embedding row). */
  decodeWeightBytes: number;
}

/** One weight tensor in a shard. */
interface Weight {
  name: string;
  type: GgmlType;
  ptr: number;
  /** Row length (ggml ne[0]) and number of rows (ne[1]; 1 for vectors). */
  cols: number;
  rows: number;
  bytes: number;
}

/** The weights of one transformer block (absent tensors are undefined). */
interface Layer {
  shard: Shard;
  attnNorm: Weight;
  attnNormB?: Weight;
  wq?: Weight;
  wk?: Weight;
  wv?: Weight;
  bq?: Weight;
  bk?: Weight;
  bv?: Weight;
  wqkv?: Weight;
  bqkv?: Weight;
  wo: Weight;
  bo?: Weight;
  ffnNorm: Weight;
  ffnNormB?: Weight;
  wGate?: Weight;
  wUp: Weight;
  bUp?: Weight;
  wDown: Weight;
  bDown?: Weight;
}

/** Per-shard activation buffers (byte pointers), each `[batch][width]` f32. */
interface Buffers {
  /** Residual stream. */
  x: number;
  /** Normalised input of attention / FFN. */
  xb: number;
  /** Second normalised copy (parallel residual's FFN input). */
  xb2: number;
  q: number;
  k: number;
  v: number;
  /** Fused qkv output (gptneox). */
  qkv: number;
  /** Attention output before / after the output projection. */
  att: number;
  attOut: number;
  /** FFN hidden (gate, up) and output. */
  hb: number;
  hb2: number;
  ffnOut: number;
  /** Logits `[batch][nVocab]` (output shard only). */
  logits: number;
  /** Rope frequency factors (llama3), 0 when absent. */
  ropeFreqs: number;
}

/** What {@link planModel} decides before anything is allocated. */
export interface ModelPlan {
  config: ModelConfig;
  nCtx: number;
  batch: number;
  /** Shard index of each layer. */
  layerShard: number[];
  /** Bytes each shard needs (weights + cache + scratch). */
  shardBytes: number[];
  weightBytes: number;
  kvBytes: number;
  scratchBytes: number;
}

/** A loaded model bound to one sequence (its KV cache). */
export class Model {
  readonly config: ModelConfig;
  readonly file: GgufFile;
  readonly tokenizer: Tokenizer;
  readonly runtime: Runtime;
  readonly cache: KvCache;
  #attention: AttentionMode;
  /** Every planned mode by its canonical name (the first is the one loaded with). */
  readonly #modes: Map<string, AttentionMode>;
  /** Context length (positions the cache holds). */
  readonly nCtx: number;
  /** Largest prompt-processing batch. */
  readonly batch: number;
  /** Seconds spent loading (open, plan, read tensors). */
  loadSeconds = 0;
  /** Weight bytes of one decode step (all matrices once + one embedding row). */
  readonly weightBytesPerToken: number;
  readonly plan: ModelPlan;
  counters: ModelCounters = emptyCounters();

  readonly #layers: Layer[];
  readonly #embd: Weight;
  readonly #embdShard: Shard;
  readonly #outNorm: Weight;
  readonly #outNormB?: Weight;
  readonly #output: Weight;
  readonly #outShard: Shard;
  readonly #buf: Map<Shard, Buffers>;
  readonly #ownsRuntime: boolean;
  #pos = 0;
  #closed = false;

  /** @internal Use {@link loadModel}. */
  constructor(init: {
    config: ModelConfig;
    file: GgufFile;
    tokenizer: Tokenizer;
    runtime: Runtime;
    ownsRuntime: boolean;
    cache: KvCache;
    attentions: AttentionMode[];
    plan: ModelPlan;
    layers: Layer[];
    embd: Weight;
    embdShard: Shard;
    outNorm: Weight;
    outNormB?: Weight;
    output: Weight;
    outShard: Shard;
    buffers: Map<Shard, Buffers>;
  }) {
    this.config = init.config;
    this.file = init.file;
    this.tokenizer = init.tokenizer;
    this.runtime = init.runtime;
    this.#ownsRuntime = init.ownsRuntime;
    this.cache = init.cache;
    this.#attention = init.attentions[0];
    this.#modes = new Map(init.attentions.map((m) => [m.name, m]));
    this.plan = init.plan;
    this.nCtx = init.plan.nCtx;
    this.batch = init.plan.batch;
    this.#layers = init.layers;
    this.#embd = init.embd;
    this.#embdShard = init.embdShard;
    this.#outNorm = init.outNorm;
    this.#outNormB = init.outNormB;
    this.#output = init.output;
    this.#outShard = init.outShard;
    this.#buf = init.buffers;
    let w = init.output.bytes + init.embd.bytes / init.embd.rows;
    for (const L of init.layers) {
      for (const t of [L.wq, L.wk, L.wv, L.wqkv, L.wo, L.wGate, L.wUp, L.wDown]) if (t) w += t.bytes;
    }
    this.weightBytesPerToken = w;
  }

  /** The attention mode decode steps use. */
  get attention(): AttentionMode {
    return this.#attention;
  }

  /**
   * Switches decode steps to another attention mode planned at load (`alsoAttention`). The cache is
   * kept; modes with their own per-position state (H2O) start it from here, so call `reset()` or
   * `truncate()` first when that matters.
   */
  setAttention(spec: string | AttentionSpec): void {
    const name = formatAttentionSpec(typeof spec === "string" ? parseAttentionSpec(spec) : spec);
    const mode = this.#modes.get(name);
    if (!mode) {
      throw new SparqError(
        `attention ${name} was not planned at load (planned: ${[...this.#modes.keys()].join(", ")})`,
      );
    }
    this.#attention = mode;
  }

  /** Number of positions evaluated so far in this sequence. */
  get pos(): number {
    return this.#pos;
  }

  /** Starts a new sequence (clears the KV cache and the attention mode's state). */
  reset(): void {
    this.#pos = 0;
    this.cache.clear();
    this.attention.reset();
  }

  /** Rewinds the sequence to `pos` positions (later positions are dropped from the cache). */
  truncate(pos: number): void {
    if (!Number.isInteger(pos) || pos < 0 || pos > this.#pos) throw new Error(`truncate: bad position ${pos}`);
    this.#pos = pos;
    this.cache.length = pos;
  }

  /**
   * Moves to position `pos` as if `pos` tokens had been evaluated, keeping whatever the cache holds
   * there. Only for benchmarks: decode time at context S depends on S, not on the cached values,
   * so `bench/decode.ts` measures long contexts without prefilling them.
   */
  seekForBenchmark(pos: number): void {
    if (!Number.isInteger(pos) || pos < 0 || pos >= this.nCtx) throw new Error(`seek: bad position ${pos}`);
    const c = this.config, from = this.cache.length;
    // Skipped positions are zeroed: writing maps their pages, so later reads measure memory, not
    // the kernel's shared zero page that untouched memory reads from.
    for (let l = 0; l < c.nLayer && pos > from; l++) {
      const s = this.#layers[l].shard;
      for (let h = 0; h < c.nHeadKv; h++) {
        s.f32(this.cache.k(l) + (h * this.nCtx + from) * c.headDim * 4, (pos - from) * c.headDim).fill(0);
        s.f32(this.cache.v(l) + (h * this.nCtx + from) * c.headDimV * 4, (pos - from) * c.headDimV).fill(0);
      }
    }
    this.#pos = pos;
    this.cache.length = pos;
  }

  /** Clears the time/traffic counters (model and attention mode). */
  resetCounters(): void {
    this.counters = emptyCounters();
    this.attention.resetCounters();
  }

  /** Frees the worker threads (when the model created its runtime). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownsRuntime) this.runtime.close();
  }

  /**
   * Feeds `tokens` at positions `pos ..` and returns the next-token logits of the last one
   * (`[nVocab]`), or of every one with `allLogits` (`[nTok][nVocab]`, row i predicts position pos+i+1).
   * More than one token is processed in batches of up to `batch` (prefill); one token is a decode step.
   */
  evaluate(tokens: readonly number[], opts: EvaluateOptions = {}): Float32Array {
    if (this.#closed) throw new Error("evaluate: model is closed");
    const n = tokens.length;
    if (n === 0) throw new SparqError("evaluate: no tokens to evaluate");
    if (this.#pos + n > this.nCtx) {
      throw new SparqError(
        `context full: ${this.#pos} + ${n} tokens exceed the context of ${this.nCtx} (use a larger -c/--ctx)`,
      );
    }
    for (const id of tokens) {
      if (!Number.isInteger(id) || id < 0 || id >= this.config.nVocab) {
        throw new SparqError(`token id ${id} is out of range (vocabulary of ${this.config.nVocab})`);
      }
    }
    const nVocab = this.config.nVocab;
    const result = new Float32Array(opts.allLogits ? n * nVocab : nVocab);
    for (let i = 0; i < n; i += this.batch) {
      const chunk = tokens.slice(i, i + this.batch);
      const last = i + chunk.length === n;
      const wantRows = opts.allLogits ? chunk.length : last ? 1 : 0;
      const t0 = performance.now();
      const logits = this.#forward(chunk, wantRows);
      const ms = performance.now() - t0;
      if (chunk.length === 1) {
        this.counters.decodeTokens++;
        this.counters.decodeMs += ms;
        this.counters.decodeWeightBytes += this.weightBytesPerToken;
      } else {
        this.counters.prefillTokens += chunk.length;
        this.counters.prefillMs += ms;
      }
      if (opts.allLogits) result.set(logits, i * nVocab);
      else if (last) result.set(logits);
    }
    return result;
  }

  /**
   * The forward pass of `tokens` (at most `batch`) at positions `pos ..`; returns the logits of the
   * last `wantRows` tokens (a view into wasm memory, valid until the next call).
   */
  #forward(tokens: readonly number[], wantRows: number): Float32Array {
    const c = this.config;
    const nTok = tokens.length;
    const pos0 = this.#pos;
    const decode = nTok === 1;
    const E = c.nEmbd, hd = c.headDim;
    const qDim = c.nHead * hd, kvDim = c.nHeadKv * hd;

    // Token embeddings (× sqrt(n_embd) for gemma), in the shard that holds token_embd.
    let shard = this.#embdShard;
    let b = this.#buf.get(shard)!;
    for (let t = 0; t < nTok; t++) K.embedRow(shard, this.#embd.type, this.#embd.ptr, tokens[t], E, b.x + t * E * 4);
    if (c.embdScale !== 1) K.scale(shard, b.x, b.x, c.embdScale, nTok * E);

    for (let l = 0; l < c.nLayer; l++) {
      const L = this.#layers[l];
      if (L.shard !== shard) {
        // Layer boundary between two memories: carry the residual stream over.
        const nb = this.#buf.get(L.shard)!;
        L.shard.f32(nb.x, nTok * E).set(shard.f32(b.x, nTok * E));
        shard = L.shard;
        b = nb;
      }
      const s = shard;
      const linear = (w: Weight, x: number, y: number, bias?: Weight) => {
        if (decode) K.matvec(s, w.type, w.ptr, w.rows, w.cols, x, y);
        else K.matmul(s, w.type, w.ptr, w.rows, w.cols, x, nTok, y);
        if (bias) K.addBias(s, y, bias.ptr, w.rows, nTok);
      };
      const norm = (w: Weight, bias: Weight | undefined, y: number) => {
        if (c.norm === "rms") K.rmsnorm(s, y, b.x, w.ptr, E, c.normEps, nTok);
        else K.layernorm(s, y, b.x, w.ptr, bias!.ptr, E, c.normEps, nTok);
      };

      // Attention: norm → q, k, v (+ bias) → RoPE → append k, v to the cache → attention → wo.
      norm(L.attnNorm, L.attnNormB, b.xb);
      if (L.wqkv) {
        // gptneox: one fused projection whose rows are [Q (all heads); K; V].
        linear(L.wqkv, b.xb, b.qkv, L.bqkv);
        const rowLen = qDim + 2 * kvDim;
        const qkv = s.f32(b.qkv, nTok * rowLen);
        const q = s.f32(b.q, nTok * qDim), k = s.f32(b.k, nTok * kvDim), v = s.f32(b.v, nTok * kvDim);
        for (let t = 0; t < nTok; t++) {
          const r = t * rowLen;
          q.set(qkv.subarray(r, r + qDim), t * qDim);
          k.set(qkv.subarray(r + qDim, r + qDim + kvDim), t * kvDim);
          v.set(qkv.subarray(r + qDim + kvDim, r + rowLen), t * kvDim);
        }
      } else {
        linear(L.wq!, b.xb, b.q, L.bq);
        linear(L.wk!, b.xb, b.k, L.bk);
        linear(L.wv!, b.xb, b.v, L.bv);
      }
      this.#rope(s, b.q, c.nHead, nTok, pos0, b.ropeFreqs);
      this.#rope(s, b.k, c.nHeadKv, nTok, pos0, b.ropeFreqs);
      this.cache.append(l, pos0, nTok, b.k, b.v);
      if (decode) this.attention.decode(l, pos0, b.q, b.att);
      else this.attention.prefill(l, pos0, nTok, b.q, b.att);
      linear(L.wo, b.att, b.attOut, L.bo);

      // Feed-forward, then the residual connections.
      if (c.parallelResidual) {
        // gptneox: x ← x + (attn(ln1(x)) + ffn(ln2(x))), both branches read the same x.
        norm(L.ffnNorm, L.ffnNormB, b.xb2);
        this.#ffn(s, L, b, b.xb2, nTok, linear);
        K.add(s, b.attOut, b.attOut, b.ffnOut, nTok * E);
        K.add(s, b.x, b.x, b.attOut, nTok * E);
      } else {
        K.add(s, b.x, b.x, b.attOut, nTok * E);
        norm(L.ffnNorm, L.ffnNormB, b.xb);
        this.#ffn(s, L, b, b.xb, nTok, linear);
        K.add(s, b.x, b.x, b.ffnOut, nTok * E);
      }
    }
    this.#pos += nTok;
    this.cache.length = this.#pos;
    if (wantRows === 0) return new Float32Array(0);

    // Final norm and the output projection of the rows asked for.
    const o = this.#outShard;
    if (o !== shard) {
      const nb = this.#buf.get(o)!;
      o.f32(nb.x, nTok * E).set(shard.f32(b.x, nTok * E));
      b = nb;
    }
    const first = nTok - wantRows;
    const xRows = b.x + first * E * 4;
    if (c.norm === "rms") K.rmsnorm(o, b.xb, xRows, this.#outNorm.ptr, E, c.normEps, wantRows);
    else K.layernorm(o, b.xb, xRows, this.#outNorm.ptr, this.#outNormB!.ptr, E, c.normEps, wantRows);
    const W = this.#output;
    if (wantRows === 1) K.matvec(o, W.type, W.ptr, W.rows, W.cols, b.xb, b.logits);
    else K.matmul(o, W.type, W.ptr, W.rows, W.cols, b.xb, wantRows, b.logits);
    return o.f32(b.logits, wantRows * c.nVocab);
  }

  /** The MLP: SwiGLU / GeGLU `down(act(gate(x)) · up(x))` or gptneox's `down(gelu(up(x)))`, into ffnOut. */
  #ffn(
    s: Shard,
    L: Layer,
    b: Buffers,
    x: number,
    nTok: number,
    linear: (w: Weight, x: number, y: number, bias?: Weight) => void,
  ): void {
    const c = this.config;
    const n = nTok * c.nFf;
    linear(L.wUp, x, b.hb2, L.bUp);
    if (c.ffn === "gelu") {
      K.gelu(s, b.hb, b.hb2, n, GELU_F16_TABLE);
    } else {
      linear(L.wGate!, x, b.hb);
      if (c.ffn === "swiglu") K.swiglu(s, b.hb, b.hb, b.hb2, n, c.nFf);
      else K.geglu(s, b.hb, b.hb, b.hb2, n, GELU_F16_TABLE);
    }
    linear(L.wDown, b.hb, b.ffnOut, L.bDown);
  }

  /** RoPE in place on `[nTok][nHeads][headDim]` at positions pos0 .. pos0+nTok-1. */
  #rope(s: Shard, x: number, nHeads: number, nTok: number, pos0: number, freqs: number): void {
    const c = this.config;
    K.rope(s, x, nTok, nHeads, c.headDim, c.ropeDims, pos0, c.ropeBase, c.ropeType === "neox", freqs);
  }
}

function emptyCounters(): ModelCounters {
  return { prefillTokens: 0, prefillMs: 0, decodeTokens: 0, decodeMs: 0, decodeWeightBytes: 0 };
}

/** Tensor name → expected ggml shape (`[cols, rows]`, or `[n]`), for every tensor the forward pass reads. */
export function expectedTensors(c: ModelConfig, file: GgufFile): Map<string, { shape: number[]; optional: boolean }> {
  const m = new Map<string, { shape: number[]; optional: boolean }>();
  const E = c.nEmbd, hd = c.headDim, qDim = c.nHead * hd, kvDim = c.nHeadKv * hd, vDim = c.nHeadKv * c.headDimV;
  const need = (name: string, shape: number[]) => m.set(name, { shape, optional: false });
  const maybe = (name: string, shape: number[]) => m.set(name, { shape, optional: true });
  const layerNorm = c.norm === "layer";
  need("token_embd.weight", [E, c.nVocab]);
  need("output_norm.weight", [E]);
  if (layerNorm) need("output_norm.bias", [E]);
  if (!c.tiedOutput) need("output.weight", [E, c.nVocab]);
  if (c.ropeScaling.kind === "llama3" && file.tensorByName.has("rope_freqs.weight")) {
    need("rope_freqs.weight", [c.ropeDims / 2]);
  }
  for (let l = 0; l < c.nLayer; l++) {
    const p = `blk.${l}.`;
    need(p + "attn_norm.weight", [E]);
    if (layerNorm) need(p + "attn_norm.bias", [E]);
    if (c.fusedQkv) {
      need(p + "attn_qkv.weight", [E, qDim + kvDim + vDim]);
      need(p + "attn_qkv.bias", [qDim + kvDim + vDim]);
    } else {
      need(p + "attn_q.weight", [E, qDim]);
      need(p + "attn_k.weight", [E, kvDim]);
      need(p + "attn_v.weight", [E, vDim]);
      (c.arch === "qwen2" ? need : maybe)(p + "attn_q.bias", [qDim]);
      (c.arch === "qwen2" ? need : maybe)(p + "attn_k.bias", [kvDim]);
      (c.arch === "qwen2" ? need : maybe)(p + "attn_v.bias", [vDim]);
    }
    need(p + "attn_output.weight", [c.nHead * c.headDimV, E]);
    (c.arch === "gptneox" ? need : maybe)(p + "attn_output.bias", [E]);
    need(p + "ffn_norm.weight", [E]);
    if (layerNorm) need(p + "ffn_norm.bias", [E]);
    if (c.ffn !== "gelu") need(p + "ffn_gate.weight", [E, c.nFf]);
    need(p + "ffn_up.weight", [E, c.nFf]);
    need(p + "ffn_down.weight", [c.nFf, E]);
    if (c.arch === "gptneox") {
      need(p + "ffn_up.bias", [c.nFf]);
      need(p + "ffn_down.bias", [E]);
    }
  }
  return m;
}

/** Checks that every tensor the forward pass needs exists with the expected shape and a supported type. */
export function checkTensors(file: GgufFile, c: ModelConfig): GgufTensorInfo[] {
  const found: GgufTensorInfo[] = [];
  for (const [name, { shape, optional }] of expectedTensors(c, file)) {
    const t = file.tensorByName.get(name);
    if (!t) {
      if (optional) continue;
      throw new SparqError(`${file.path}: required tensor ${name} is missing (architecture ${c.arch})`);
    }
    const got = t.shape.length === 2 && t.shape[1] === 1 && shape.length === 1 ? [t.shape[0]] : t.shape;
    if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
      throw new SparqError(
        `${file.path}: tensor ${name} has shape [${t.shape.join(", ")}], expected [${shape.join(", ")}]`,
      );
    }
    if (!ggmlTypeInfo(t.type)?.supported) {
      throw new SparqError(`${file.path}: tensor ${name} has type ${ggmlTypeName(t.type)}, which sparq cannot run`);
    }
    if (shape.length === 1 && t.type !== GgmlType.F32) {
      throw new SparqError(`${file.path}: vector ${name} must be F32, found ${ggmlTypeName(t.type)}`);
    }
    found.push(t);
  }
  return found;
}

/** Bytes of activation scratch one shard needs for a batch of `batch` tokens. */
function bufferBytes(c: ModelConfig, batch: number, output: boolean, actBytes: number): number {
  const qDim = c.nHead * c.headDim, kvDim = c.nHeadKv * c.headDim;
  const widths = [
    c.nEmbd * 4, // x, xb, xb2, attOut
    qDim * 2, // q, att
    kvDim * 2,
    c.fusedQkv ? qDim + 2 * kvDim : 0,
    c.nFf * 2 + c.nEmbd, // hb, hb2, ffnOut
  ];
  let f = batch * widths.reduce((a, b) => a + b, 0);
  if (output) f += batch * c.nVocab;
  f += c.ropeDims;
  return f * 4 + 16 * 64 + actBytes;
}

/**
 * Decides the context, batch and the layer → shard assignment, and the bytes each shard needs.
 * Shards are filled in layer order; the embedding lives in the first shard (or, when the output is
 * tied to it, in the last, which needs it for the logits), the output norm and matrix in the last.
 */
export function planModel(
  file: GgufFile,
  c: ModelConfig,
  opts: {
    ctx?: number;
    batch?: number;
    threads: number;
    attention: AttentionSpec | AttentionSpec[];
    shardBudget?: number;
    cacheType?: CacheType;
  },
): ModelPlan {
  const nCtx = opts.ctx ?? Math.min(c.ctxTrain, 4096);
  if (!Number.isInteger(nCtx) || nCtx < 1) throw new SparqError(`--ctx ${nCtx}: must be a positive integer`);
  const batch = Math.min(opts.batch ?? DEFAULT_BATCH, nCtx);
  const budget = opts.shardBudget ?? SHARD_BUDGET;
  const bytesOf = (name: string) => {
    const t = file.tensorByName.get(name);
    return t ? t.bytes + 64 : 0;
  };
  const layerWeights = (l: number) =>
    file.tensors.filter((t) => t.name.startsWith(`blk.${l}.`)).reduce((a, t) => a + t.bytes + 64, 0);
  const specs = Array.isArray(opts.attention) ? opts.attention : [opts.attention];
  const kvPerLayer = KvCache.bytesPerLayer(c, nCtx, specs, opts.cacheType);
  // The matmul kernels keep quantized activations in a per-shard scratch that grows geometrically
  // (each growth leaves the old block behind): 4× the largest need bounds the total.
  let act = 0;
  for (const t of file.tensors) {
    if (t.shape.length === 2) act = Math.max(act, K.actScratchBytes(t.type, t.shape[0], batch));
  }
  const actBytes = 4 * act + (256 << 10);
  const fixedPerShard = bufferBytes(c, batch, false, actBytes) +
    specs.reduce((a, spec) => a + attentionScratchBytes(spec, c, nCtx, opts.threads), 0) + (1 << 20);
  const embd = bytesOf("token_embd.weight");
  const outBytes = bytesOf("output_norm.weight") + bytesOf("output_norm.bias") +
    (c.tiedOutput ? embd : bytesOf("output.weight")) + bytesOf("rope_freqs.weight") +
    (bufferBytes(c, batch, true, 0) - bufferBytes(c, batch, false, 0));

  const layerShard: number[] = [];
  const shardBytes: number[] = [fixedPerShard + (c.tiedOutput ? 0 : embd) + bytesOf("rope_freqs.weight")];
  for (let l = 0; l < c.nLayer; l++) {
    const need = layerWeights(l) + kvPerLayer;
    const cur = shardBytes.length - 1;
    // The last layer's shard also carries the output tensors.
    const extra = l === c.nLayer - 1 ? outBytes : 0;
    if (shardBytes[cur] + need + extra > budget && layerShard.includes(cur)) {
      shardBytes.push(fixedPerShard + bytesOf("rope_freqs.weight"));
    }
    const s = shardBytes.length - 1;
    shardBytes[s] += need;
    layerShard.push(s);
    if (shardBytes[s] + extra > budget) {
      throw new SparqError(
        `${file.path}: layer ${l} needs ${fmtBytes(need + extra)}, more than one WebAssembly memory can hold`,
      );
    }
  }
  shardBytes[shardBytes.length - 1] += outBytes;
  let weightBytes = 0;
  for (const t of file.tensors) weightBytes += t.bytes;
  return {
    config: c,
    nCtx,
    batch,
    layerShard,
    shardBytes,
    weightBytes,
    kvBytes: kvPerLayer * c.nLayer,
    scratchBytes: shardBytes.length * fixedPerShard,
  };
}

/** "1.23 GB". */
export function fmtBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e3).toFixed(1)} kB`;
}

/**
 * Opens `path`, checks it (tensors, shapes, memory), reads every tensor into WebAssembly memory,
 * and returns a {@link Model} with an empty KV cache of `ctx` positions and the attention mode.
 */
export async function loadModel(path: string, opts: LoadOptions = {}): Promise<Model> {
  const t0 = performance.now();
  const file = await openGguf(path);
  const config = configFromGguf(file);
  const toSpec = (a: string | AttentionSpec) => (typeof a === "string" ? parseAttentionSpec(a) : a);
  const specs = [toSpec(opts.attention ?? "dense"), ...(opts.alsoAttention ?? []).map(toSpec)];
  checkTensors(file, config);
  if ((config.ropeScaling.kind === "linear" || config.ropeScaling.kind === "yarn") && config.ropeScaling.factor !== 1) {
    throw new SparqError(
      `${path}: RoPE scaling "${config.ropeScaling.kind}" (factor ${config.ropeScaling.factor}) is not supported`,
    );
  }
  const tokenizer = tokenizerFromGguf(file);
  const threads = opts.runtime?.threads ?? opts.threads ?? navigator.hardwareConcurrency ?? 1;
  const plan = planModel(file, config, {
    ctx: opts.ctx,
    batch: opts.batch,
    threads,
    attention: specs,
    shardBudget: opts.shardBudget,
    cacheType: opts.cacheType,
  });
  checkMemory(path, plan);

  const runtime = opts.runtime ?? await createRuntime({ threads, hugePages: opts.hugePages });
  try {
    const shards = plan.shardBytes.map((bytes) => runtime.newShard(bytes));
    const load = async (name: string, shard: Shard): Promise<Weight> => {
      const t = file.tensorByName.get(name)!;
      const ptr = shard.alloc(t.bytes, 64);
      await readTensorInto(file, t, shard.u8(ptr, t.bytes));
      return { name, type: t.type, ptr, cols: t.shape[0], rows: t.shape[1] ?? 1, bytes: t.bytes };
    };
    const opt = (name: string, shard: Shard) => file.tensorByName.has(name) ? load(name, shard) : undefined;
    const last = shards[shards.length - 1];
    const embdShard = config.tiedOutput ? last : shards[0];
    const embd = await load("token_embd.weight", embdShard);
    const layers: Layer[] = [];
    for (let l = 0; l < config.nLayer; l++) {
      const s = shards[plan.layerShard[l]];
      const p = `blk.${l}.`;
      layers.push({
        shard: s,
        attnNorm: await load(p + "attn_norm.weight", s),
        attnNormB: await opt(p + "attn_norm.bias", s),
        wq: await opt(p + "attn_q.weight", s),
        wk: await opt(p + "attn_k.weight", s),
        wv: await opt(p + "attn_v.weight", s),
        bq: await opt(p + "attn_q.bias", s),
        bk: await opt(p + "attn_k.bias", s),
        bv: await opt(p + "attn_v.bias", s),
        wqkv: await opt(p + "attn_qkv.weight", s),
        bqkv: await opt(p + "attn_qkv.bias", s),
        wo: await load(p + "attn_output.weight", s),
        bo: await opt(p + "attn_output.bias", s),
        ffnNorm: await load(p + "ffn_norm.weight", s),
        ffnNormB: await opt(p + "ffn_norm.bias", s),
        wGate: config.ffn === "gelu" ? undefined : await load(p + "ffn_gate.weight", s),
        wUp: await load(p + "ffn_up.weight", s),
        bUp: await opt(p + "ffn_up.bias", s),
        wDown: await load(p + "ffn_down.weight", s),
        bDown: await opt(p + "ffn_down.bias", s),
      });
    }
    const outNorm = await load("output_norm.weight", last);
    const outNormB = await opt("output_norm.bias", last);
    const output = config.tiedOutput ? embd : await load("output.weight", last);

    const buffers = new Map<Shard, Buffers>();
    const ropeT = config.ropeScaling.kind === "llama3" ? file.tensorByName.get("rope_freqs.weight") : undefined;
    for (const s of shards) {
      const b = allocBuffers(s, config, plan.batch, s === last);
      if (ropeT) {
        b.ropeFreqs = s.alloc(ropeT.bytes);
        await readTensorInto(file, ropeT, s.u8(b.ropeFreqs, ropeT.bytes));
      }
      buffers.set(s, b);
    }
    const shardOf = (l: number) => layers[l].shard;
    const cache = new KvCache({
      config,
      nCtx: plan.nCtx,
      shardOf,
      cacheType: opts.cacheType,
      ...KvCache.requirements(specs),
    });
    const attentions: AttentionMode[] = [];
    for (const spec of specs) {
      const mode = createAttention(spec, { config, cache, shardOf, threads: runtime.threads });
      if (!attentions.some((m) => m.name === mode.name)) attentions.push(mode);
    }
    const model = new Model({
      config,
      file,
      tokenizer,
      runtime,
      ownsRuntime: !opts.runtime,
      cache,
      attentions,
      plan,
      layers,
      embd,
      embdShard,
      outNorm,
      outNormB,
      output,
      outShard: last,
      buffers,
    });
    model.loadSeconds = (performance.now() - t0) / 1000;
    return model;
  } catch (e) {
    if (!opts.runtime) runtime.close();
    throw e;
  }
}

function allocBuffers(s: Shard, c: ModelConfig, batch: number, output: boolean): Buffers {
  const qDim = c.nHead * c.headDim, kvDim = c.nHeadKv * c.headDim;
  const f = (n: number) => s.alloc(n * 4, 64);
  return {
    x: f(batch * c.nEmbd),
    xb: f(batch * c.nEmbd),
    xb2: f(batch * c.nEmbd),
    q: f(batch * qDim),
    k: f(batch * kvDim),
    v: f(batch * kvDim),
    qkv: c.fusedQkv ? f(batch * (qDim + 2 * kvDim)) : 0,
    att: f(batch * qDim),
    attOut: f(batch * c.nEmbd),
    hb: f(batch * c.nFf),
    hb2: f(batch * c.nFf),
    ffnOut: f(batch * c.nEmbd),
    logits: output ? f(batch * c.nVocab) : 0,
    ropeFreqs: 0,
  };
}

/**
 * Memory the system can give us: `Deno.systemMemoryInfo().available` (needs --allow-sys), else
 * MemAvailable from /proc/meminfo (needs read access), else Infinity with a warning (the check is
 * then skipped and allocating the shards would fail instead).
 */
function availableMemory(): number {
  try {
    return Deno.systemMemoryInfo().available;
  } catch { /* no --allow-sys */ }
  try {
    const m = /MemAvailable:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/meminfo"));
    if (m) return Number(m[1]) * 1024;
  } catch { /* not Linux, or no read access */ }
  console.error("sparq: memory check skipped (grant --allow-sys=systemMemoryInfo to refuse too-large models up front)");
  return Infinity;
}

/** Refuses to load (SparqError with the figures) when weights + KV cache + scratch exceed `available`. */
export function checkMemory(path: string, plan: ModelPlan, available: number = availableMemory()): void {
  const need = plan.shardBytes.reduce((a, b) => a + b, 0);
  if (need > available) {
    throw new SparqError(
      `${path}: needs ${fmtBytes(need)} (weights ${fmtBytes(plan.weightBytes)}, KV cache ${
        fmtBytes(plan.kvBytes)
      } for ${plan.nCtx} positions, scratch ${fmtBytes(plan.scratchBytes)}) but only ${
        fmtBytes(available)
      } of memory is available; use a smaller -c/--ctx or a smaller model`,
    );
  }
}
