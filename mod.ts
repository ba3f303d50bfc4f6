/**
 * sparq: run GGUF language models on WebAssembly SIMD (CPU) and WebGPU, with SparQ Attention.
 *
 * ```ts
 * import { openGguf, configFromGguf } from "./mod.ts";
 * const file = await openGguf("testdata/stories260K.gguf");
 * console.log(configFromGguf(file));
 * ```
 * @module
 */
export { SparqError } from "./lib/errors.ts";
export * from "./lib/ggml_types.ts";
export * from "./lib/gguf.ts";
export * from "./lib/model_config.ts";
