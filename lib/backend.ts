/**
 * One interface over the two backends (WebAssembly on the CPU, WebGPU), for the commands that only
 * feed tokens and read logits: `generate` and `compare`. The wasm `Model` is synchronous; the GPU
 * model returns promises, so `evaluate` here is always awaited.
 * @module
 */
import { loadModel, type Model } from "./model.ts";
import { loadGpuModel } from "./webgpu/model.ts";
import { openGguf } from "./gguf.ts";
import { type Tokenizer, tokenizerFromGguf } from "./tokenizer.ts";
import type { ModelConfig } from "./model_config.ts";
import type { AttentionBytes } from "./attention/mode.ts";
import type { AttentionSpec } from "./attention/spec.ts";
import { SparqError } from "./errors.ts";
import type { CacheType } from "./kv_cache.ts";
import type { Sampler } from "./sampler.ts";
import type { DeviceSampling } from "./webgpu/sampling.ts";

/** The backends `--backend` accepts. */
export const BACKENDS = ["wasm", "webgpu"] as const;
/** One of {@link BACKENDS}. */
export type BackendName = typeof BACKENDS[number];

/** What `generate` and `compare` need from a loaded model. */
export interface LanguageModel {
  readonly backend: BackendName;
  readonly config: ModelConfig;
  readonly tokenizer: Tokenizer;
  /** Context length (KV-cache positions). */
  readonly nCtx: number;
  /** Positions evaluated so far in this sequence. */
  readonly pos: number;
  readonly loadSeconds: number;
  /** Canonical attention spec. */
  readonly attentionName: string;
  /** One line for the statistics: backend, threads or adapter. */
  readonly description: string;
  /** Logits of the last token (`[nVocab]`) or of every token with `allLogits`. */
  evaluate(tokens: readonly number[], opts?: { allLogits?: boolean }): Promise<Float32Array>;
  /**
   * Samples on the device, evaluating ahead (webgpu; see lib/webgpu/sampling.ts), or undefined:
   * then generation reads the logits and samples on the CPU.
   */
  sampleOnDevice?(prompt: readonly number[], sampler: Sampler, maxSamples: number): DeviceSampling | undefined;
  /** Attention bytes read since the last `resetCounters()`. */
  attentionBytes(): AttentionBytes;
  resetCounters(): void;
  /** Starts a new sequence. */
  reset(): void;
  close(): void;
}

/** Options of {@link openModel}. */
export interface OpenModelOptions {
  backend?: BackendName;
  threads?: number;
  ctx?: number;
  batch?: number;
  attention?: string | AttentionSpec;
  /** KV cache element type (default f32). */
  cacheType?: CacheType;
}

/** Parses a `--backend` value. */
export function parseBackend(v: string | undefined): BackendName {
  const b = v ?? "wasm";
  if (!(BACKENDS as readonly string[]).includes(b)) {
    throw new SparqError(`--backend ${b}: unknown backend (backends: ${BACKENDS.join(", ")})`);
  }
  return b as BackendName;
}

/** Loads `path` on the chosen backend (default wasm). */
export async function openModel(path: string, opts: OpenModelOptions = {}): Promise<LanguageModel> {
  if ((opts.backend ?? "wasm") === "wasm") {
    return wasmModel(await loadModel(path, opts));
  }
  const t0 = performance.now();
  const tokenizer = tokenizerFromGguf(await openGguf(path));
  const gpu = await loadGpuModel(path, {
    ctx: opts.ctx,
    batch: opts.batch,
    attention: opts.attention,
    cacheType: opts.cacheType,
  });
  const loadSeconds = (performance.now() - t0) / 1000;
  return {
    backend: "webgpu",
    config: gpu.config,
    tokenizer,
    get nCtx() {
      return gpu.ctx;
    },
    get pos() {
      return gpu.pos;
    },
    loadSeconds,
    attentionName: gpu.attention,
    description: `webgpu${
      gpu.cacheElem === "f32" ? "" : `, f16 KV cache${gpu.cacheElem === "f16p" ? " (packed)" : ""}`
    }`,
    evaluate: (tokens, o) => gpu.evaluate([...tokens], o),
    sampleOnDevice: (prompt, sampler, maxSamples) => gpu.sampleOnDevice(prompt, sampler, maxSamples),
    attentionBytes: () => ({ ...gpu.counters.kv }),
    resetCounters: () => gpu.resetCounters(),
    reset: () => gpu.reset(),
    close: () => gpu.close(),
  };
}

/** The wasm {@link Model} behind the {@link LanguageModel} interface. */
export function wasmModel(model: Model): LanguageModel {
  return {
    backend: "wasm",
    config: model.config,
    tokenizer: model.tokenizer,
    nCtx: model.nCtx,
    get pos() {
      return model.pos;
    },
    loadSeconds: model.loadSeconds,
    attentionName: model.attention.name,
    description: `wasm${model.runtime.relaxed ? " relaxed-simd" : " simd"}, ${model.runtime.threads} threads${
      model.cache.cacheType === "f16" ? ", f16 KV cache" : ""
    }`,
    evaluate: (tokens, o) => Promise.resolve(model.evaluate(tokens, o)),
    attentionBytes: () => ({ ...model.attention.bytes }),
    resetCounters: () => model.resetCounters(),
    reset: () => model.reset(),
    close: () => model.close(),
  };
}
