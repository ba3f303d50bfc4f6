/**
 * Hyperparameters of a model, read from GGUF metadata. The forward pass is parameterised only by
 * this object, so adding an architecture means adding a case here and any new tensor to the loader.
 * @module
 */
import { SparqError } from "./errors.ts";
import { type GgufFile, metaArray, metaBool, metaNumber, metaString } from "./gguf.ts";

/** Architectures the forward pass implements. */
export const SUPPORTED_ARCHS = ["llama", "gemma", "gptneox", "qwen2"] as const;
/** One of {@link SUPPORTED_ARCHS}. */
export type Arch = typeof SUPPORTED_ARCHS[number];

/** Llama 3 style RoPE frequency scaling (`rope_freqs` tensor or the llama3 formula). */
export interface RopeScaling {
  kind: "none" | "linear" | "yarn" | "llama3";
  /** Linear factor (positions are divided by it). */
  factor: number;
  /** Original training context for llama3/yarn. */
  origCtx: number;
}

/** Everything the forward pass needs to know about a model. */
export interface ModelConfig {
  arch: Arch;
  name: string;
  nVocab: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  /** Per-head dimension of Q and K (key_length). */
  headDim: number;
  /** Per-head dimension of V (value_length); equal to headDim for all supported archs. */
  headDimV: number;
  nFf: number;
  ctxTrain: number;
  /** Number of leading dimensions of each head that RoPE rotates (partial rotary for gptneox). */
  ropeDims: number;
  ropeBase: number;
  ropeScaling: RopeScaling;
  /** "norm": rotate adjacent pairs (llama); "neox": rotate (x[i], x[i + ropeDims/2]). */
  ropeType: "norm" | "neox";
  norm: "rms" | "layer";
  normEps: number;
  /** gptneox: x + attn(ln1(x)) + ffn(ln2(x)). */
  parallelResidual: boolean;
  /** silu-gated (llama, qwen2), gelu-gated (gemma), or plain gelu MLP (gptneox). */
  ffn: "swiglu" | "geglu" | "gelu";
  /** gemma multiplies the input embedding by sqrt(nEmbd). */
  embdScale: number;
  /** Whether output.weight is absent and token_embd is used for the logits. */
  tiedOutput: boolean;
  /** Whether Q/K/V projections have biases (qwen2; gptneox has biases everywhere). */
  qkvBias: boolean;
  /** gptneox: fused attn_qkv tensor. */
  fusedQkv: boolean;
}

/** Reads the model hyperparameters from GGUF metadata. */
export function configFromGguf(file: GgufFile): ModelConfig {
  const arch = metaString(file, "general.architecture");
  if (!(SUPPORTED_ARCHS as readonly string[]).includes(arch)) {
    throw new SparqError(
      `${file.path}: architecture "${arch}" is not supported (supported: ${SUPPORTED_ARCHS.join(", ")})`,
    );
  }
  const a = arch as Arch;
  const num = (k: string, d?: number) => metaNumber(file, `${a}.${k}`, d);
  const nEmbd = num("embedding_length");
  const nHead = num("attention.head_count");
  const nHeadKv = num("attention.head_count_kv", nHead);
  const headDim = num("attention.key_length", nEmbd / nHead);
  const headDimV = num("attention.value_length", headDim);
  const tokens = metaArray<{ length: number }>(file, "tokenizer.ggml.tokens");
  const embd = file.tensorByName.get("token_embd.weight");
  const nVocab = num("vocab_size", tokens?.length ?? embd?.shape[1] ?? 0);
  const ropeScalingType = metaString(file, `${a}.rope.scaling.type`, "none");
  const cfg: ModelConfig = {
    arch: a,
    name: metaString(file, "general.name", a),
    nVocab,
    nEmbd,
    nLayer: num("block_count"),
    nHead,
    nHeadKv,
    headDim,
    headDimV,
    nFf: num("feed_forward_length"),
    ctxTrain: num("context_length", 2048),
    ropeDims: num("rope.dimension_count", headDim),
    ropeBase: num("rope.freq_base", 10000),
    ropeScaling: {
      kind: file.tensorByName.has("rope_freqs.weight") ? "llama3" : (ropeScalingType as RopeScaling["kind"]),
      factor: num("rope.scaling.factor", 1),
      origCtx: num("rope.scaling.original_context_length", num("context_length", 2048)),
    },
    ropeType: a === "llama" ? "norm" : "neox",
    norm: a === "gptneox" ? "layer" : "rms",
    normEps: a === "gptneox"
      ? num("attention.layer_norm_epsilon", 1e-5)
      : num("attention.layer_norm_rms_epsilon", 1e-5),
    parallelResidual: a === "gptneox" ? metaBool(file, "gptneox.use_parallel_residual", true) : false,
    ffn: a === "gemma" ? "geglu" : a === "gptneox" ? "gelu" : "swiglu",
    embdScale: a === "gemma" ? Math.sqrt(nEmbd) : 1,
    tiedOutput: !file.tensorByName.has("output.weight"),
    qkvBias: a === "qwen2" || a === "gptneox",
    fusedQkv: a === "gptneox",
  };
  for (const [k, v] of Object.entries(cfg)) {
    if (typeof v === "number" && (!Number.isFinite(v) || v < 0)) {
      throw new SparqError(`${file.path}: hyperparameter ${k} = ${v} is invalid`);
    }
  }
  if (cfg.nHead === 0 || cfg.nHeadKv === 0 || cfg.nHead % cfg.nHeadKv !== 0) {
    throw new SparqError(`${file.path}: head_count ${cfg.nHead} is not a multiple of head_count_kv ${cfg.nHeadKv}`);
  }
  if (!Number.isInteger(cfg.headDim) || cfg.headDim === 0 || cfg.ropeDims > cfg.headDim || cfg.ropeDims % 2) {
    throw new SparqError(
      `${file.path}: head dimension ${cfg.headDim} / rope dimensions ${cfg.ropeDims} are inconsistent`,
    );
  }
  if (cfg.nVocab === 0) throw new SparqError(`${file.path}: vocabulary size unknown (no tokenizer and no token_embd)`);
  return cfg;
}
