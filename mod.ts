/**
 * sparq: run GGUF language models on WebAssembly SIMD (CPU) and WebGPU, with SparQ Attention.
 *
 * ```ts
 * import { DEFAULT_SAMPLER, generate, loadModel } from "./mod.ts";
 * const model = await loadModel("testdata/stories260K.gguf", { attention: "sparq:ratio=1/8" });
 * const prompt = model.tokenizer.encode("Once upon a time");
 * const out = await generate(model, prompt, {
 *   maxTokens: 32,
 *   sampler: { ...DEFAULT_SAMPLER, temp: 0 },
 * });
 * console.log(out.text);
 * model.close();
 * ```
 * @module
 */
export { SparqError } from "./lib/errors.ts";
export * from "./lib/ggml_types.ts";
export * from "./lib/gguf.ts";
export { ggufBytes, type GgufTensorSpec, type GgufWriteOptions, writeGguf } from "./lib/gguf_writer.ts";
export { QUANTIZE_TYPES, quantizeTo } from "./lib/quantize.ts";
export { SHAPES, synthModel, type SynthOptions } from "./lib/synth.ts";
export * from "./lib/model_config.ts";
export { type Tokenizer, tokenizerFromGguf } from "./lib/tokenizer.ts";
export { createRuntime, type Runtime, type RuntimeOptions, type Shard } from "./lib/wasm_runtime.ts";
export { type EvaluateOptions, loadModel, type LoadOptions, Model } from "./lib/model.ts";
export { generate, type GenerateOptions, type GenerateResult } from "./lib/generate.ts";
export { DEFAULT_SAMPLER, Sampler, type SamplerOptions } from "./lib/sampler.ts";
export { KvCache } from "./lib/kv_cache.ts";
export type { AttentionBytes, AttentionMode } from "./lib/attention/mode.ts";
export { createAttention } from "./lib/attention/create.ts";
export {
  type AttentionSpec,
  formatAttentionSpec,
  parseAttentionSpec,
  predictedTransfer,
  resolveParams,
} from "./lib/attention/spec.ts";
export { compareModes, type CompareOptions, type CompareReport, formatCompareTable } from "./lib/compare.ts";
export { formatProfileTable, type ProfileOptions, type ProfileReport, runProfile } from "./lib/profile.ts";
export { pullFile, type PullOptions } from "./lib/pull.ts";
export { resolveModelPath } from "./lib/model_cache.ts";
export { type GpuModel, loadGpuModel } from "./lib/webgpu/model.ts";
export { describeGpu } from "./lib/webgpu/device.ts";
