/**
 * Random-weight models of real shapes (the benchmarks' models: no network here to download real
 * ones). Weights are N(0, 0.02) from a fast seeded generator, norm weights 1, biases 0. Every 2-D
 * weight (token_embd and output included) is stored in the chosen type and 1-D tensors in F32 —
 * what llama.cpp's `llama-quantize --pure` produces. (Its default recipe would keep output.weight
 * in Q6_K for Q4_0/Q8_0 files, a few per cent larger.) Tensors are generated and written one chunk
 * at a time, so memory use does not grow with the model.
 * @module
 */
import { type GgufMetaValue, GgufValueType, metaArray, openGguf } from "./gguf.ts";
import { GgmlType, ggmlTypeName } from "./ggml_types.ts";
import { type GgufTensorSource, meta, writeGguf } from "./gguf_writer.ts";
import { convertBf16, convertF16, quantizeQ4_0, quantizeQ8_0 } from "./quantize.ts";
import { type Arch, SUPPORTED_ARCHS } from "./model_config.ts";
import { SparqError } from "./errors.ts";

/** Hyperparameters of a model shape. */
export interface SynthShape {
  /** The architecture of the real model; undefined for `tiny`, which fits any architecture. */
  arch?: Arch;
  /** Where the figures come from. */
  source: string;
  nVocab: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  /** Per-head dimension; nEmbd / nHead when not given. */
  headDim?: number;
  nFf: number;
  ctx: number;
  ropeBase: number;
  /** Fraction of each head RoPE rotates (gptneox partial rotary); 1 when not given. */
  rotaryFraction?: number;
  normEps: number;
  /** Output projection tied to token_embd (no output.weight). */
  tied: boolean;
}

/** Shapes `sparq synth --shape` knows, from the models' published configurations. */
export const SHAPES: Record<string, SynthShape> = {
  "tiny": {
    source: "a small test shape",
    nVocab: 512,
    nEmbd: 64,
    nLayer: 2,
    nHead: 4,
    nHeadKv: 2,
    nFf: 192,
    ctx: 256,
    ropeBase: 10000,
    normEps: 1e-5,
    tied: false,
  },
  "tinyllama-1.1b": {
    arch: "llama",
    source: "TinyLlama-1.1B (v1.0)",
    nVocab: 32000,
    nEmbd: 2048,
    nLayer: 22,
    nHead: 32,
    nHeadKv: 4,
    nFf: 5632,
    ctx: 2048,
    ropeBase: 10000,
    normEps: 1e-5,
    tied: false,
  },
  "llama2-7b": {
    arch: "llama",
    source: "Llama-2-7B",
    nVocab: 32000,
    nEmbd: 4096,
    nLayer: 32,
    nHead: 32,
    nHeadKv: 32,
    nFf: 11008,
    ctx: 4096,
    ropeBase: 10000,
    normEps: 1e-5,
    tied: false,
  },
  "llama2-13b": {
    arch: "llama",
    source: "Llama-2-13B",
    nVocab: 32000,
    nEmbd: 5120,
    nLayer: 40,
    nHead: 40,
    nHeadKv: 40,
    nFf: 13824,
    ctx: 4096,
    ropeBase: 10000,
    normEps: 1e-5,
    tied: false,
  },
  "llama3-8b": {
    arch: "llama",
    source: "Meta-Llama-3-8B",
    nVocab: 128256,
    nEmbd: 4096,
    nLayer: 32,
    nHead: 32,
    nHeadKv: 8,
    nFf: 14336,
    ctx: 8192,
    ropeBase: 500000,
    normEps: 1e-5,
    tied: false,
  },
  "mistral-7b": {
    arch: "llama",
    source: "Mistral-7B-v0.1",
    nVocab: 32000,
    nEmbd: 4096,
    nLayer: 32,
    nHead: 32,
    nHeadKv: 8,
    nFf: 14336,
    ctx: 32768,
    ropeBase: 10000,
    normEps: 1e-5,
    tied: false,
  },
  "gemma-2b": {
    arch: "gemma",
    source: "gemma-2b",
    nVocab: 256000,
    nEmbd: 2048,
    nLayer: 18,
    nHead: 8,
    nHeadKv: 1,
    headDim: 256,
    nFf: 16384,
    ctx: 8192,
    ropeBase: 10000,
    normEps: 1e-6,
    tied: true,
  },
  "qwen2-0.5b": {
    arch: "qwen2",
    source: "Qwen2-0.5B",
    nVocab: 151936,
    nEmbd: 896,
    nLayer: 24,
    nHead: 14,
    nHeadKv: 2,
    nFf: 4864,
    ctx: 32768,
    ropeBase: 1000000,
    normEps: 1e-6,
    tied: true,
  },
  "pythia-160m": {
    arch: "gptneox",
    source: "EleutherAI pythia-160m",
    nVocab: 50304,
    nEmbd: 768,
    nLayer: 12,
    nHead: 12,
    nHeadKv: 12,
    nFf: 3072,
    ctx: 2048,
    ropeBase: 10000,
    rotaryFraction: 0.25,
    normEps: 1e-5,
    tied: false,
  },
};

/** Types synth can write, with their `general.file_type` (llama_ftype). */
export const SYNTH_TYPES: Record<string, { type: GgmlType; ftype: number }> = {
  f32: { type: GgmlType.F32, ftype: 0 },
  f16: { type: GgmlType.F16, ftype: 1 },
  bf16: { type: GgmlType.BF16, ftype: 32 },
  q8_0: { type: GgmlType.Q8_0, ftype: 7 },
  q4_0: { type: GgmlType.Q4_0, ftype: 2 },
};

/** How a tensor is filled. */
type Init = "normal" | "ones" | "zeros";

/** A tensor of the synthetic model. */
export interface SynthTensor {
  name: string;
  type: GgmlType;
  shape: number[];
  init: Init;
}

/** The tensor table of `arch` with `shape` (ggml order [in, out]), 2-D weights in `type`. */
export function synthTensors(arch: Arch, s: SynthShape, type: GgmlType): SynthTensor[] {
  const e = s.nEmbd, hd = headDim(s), q = s.nHead * hd, kv = s.nHeadKv * hd;
  const out: SynthTensor[] = [];
  const w = (name: string, ...shape: number[]) => out.push({ name, type, shape, init: "normal" });
  const norm = (name: string) => out.push({ name: `${name}.weight`, type: GgmlType.F32, shape: [e], init: "ones" });
  const bias = (name: string, n: number) => out.push({ name, type: GgmlType.F32, shape: [n], init: "zeros" });
  w("token_embd.weight", e, s.nVocab);
  for (let l = 0; l < s.nLayer; l++) {
    const b = `blk.${l}`;
    norm(`${b}.attn_norm`);
    if (arch === "gptneox") {
      bias(`${b}.attn_norm.bias`, e);
      w(`${b}.attn_qkv.weight`, e, q + 2 * kv);
      bias(`${b}.attn_qkv.bias`, q + 2 * kv);
      w(`${b}.attn_output.weight`, q, e);
      bias(`${b}.attn_output.bias`, e);
      norm(`${b}.ffn_norm`);
      bias(`${b}.ffn_norm.bias`, e);
      w(`${b}.ffn_up.weight`, e, s.nFf);
      bias(`${b}.ffn_up.bias`, s.nFf);
      w(`${b}.ffn_down.weight`, s.nFf, e);
      bias(`${b}.ffn_down.bias`, e);
      continue;
    }
    w(`${b}.attn_q.weight`, e, q);
    w(`${b}.attn_k.weight`, e, kv);
    w(`${b}.attn_v.weight`, e, kv);
    if (arch === "qwen2") {
      bias(`${b}.attn_q.bias`, q);
      bias(`${b}.attn_k.bias`, kv);
      bias(`${b}.attn_v.bias`, kv);
    }
    w(`${b}.attn_output.weight`, q, e);
    norm(`${b}.ffn_norm`);
    w(`${b}.ffn_gate.weight`, e, s.nFf);
    w(`${b}.ffn_up.weight`, e, s.nFf);
    w(`${b}.ffn_down.weight`, s.nFf, e);
  }
  norm("output_norm");
  if (arch === "gptneox") bias("output_norm.bias", e);
  // gemma always ties the output to token_embd.
  if (!s.tied && arch !== "gemma") w("output.weight", e, s.nVocab);
  return out;
}

function headDim(s: SynthShape): number {
  const d = s.headDim ?? s.nEmbd / s.nHead;
  if (!Number.isInteger(d)) throw new Error(`synth: n_embd ${s.nEmbd} is not a multiple of n_head ${s.nHead}`);
  return d;
}

/** Architecture metadata (`<arch>.*` and `general.*`) for a synthetic model. */
export function synthMetadata(arch: Arch, shapeName: string, s: SynthShape, ftype: number): [string, GgufMetaValue][] {
  const hd = headDim(s);
  const md: [string, GgufMetaValue][] = [
    ["general.architecture", meta.str(arch)],
    ["general.name", meta.str(`synth-${shapeName}`)],
    ["general.file_type", meta.u32(ftype)],
    [`${arch}.context_length`, meta.u32(s.ctx)],
    [`${arch}.embedding_length`, meta.u32(s.nEmbd)],
    [`${arch}.block_count`, meta.u32(s.nLayer)],
    [`${arch}.feed_forward_length`, meta.u32(s.nFf)],
    [`${arch}.attention.head_count`, meta.u32(s.nHead)],
    [`${arch}.attention.head_count_kv`, meta.u32(s.nHeadKv)],
    [`${arch}.rope.dimension_count`, meta.u32(Math.round(hd * (s.rotaryFraction ?? 1)))],
    [`${arch}.rope.freq_base`, meta.f32(s.ropeBase)],
  ];
  if (arch === "gptneox") {
    md.push([`${arch}.attention.layer_norm_epsilon`, meta.f32(s.normEps)]);
    md.push([`${arch}.use_parallel_residual`, meta.bool(true)]);
  } else {
    md.push([`${arch}.attention.layer_norm_rms_epsilon`, meta.f32(s.normEps)]);
  }
  if (arch === "gemma" || hd !== s.nEmbd / s.nHead) {
    md.push([`${arch}.attention.key_length`, meta.u32(hd)], [`${arch}.attention.value_length`, meta.u32(hd)]);
  }
  if (arch === "llama") md.push([`${arch}.vocab_size`, meta.u32(s.nVocab)]);
  if (ftype !== 0 && ftype !== 1 && ftype !== 32) md.push(["general.quantization_version", meta.u32(2)]);
  return md;
}

/** SentencePiece token types (llama.cpp's llama_token_type). */
const NORMAL = 1, UNKNOWN = 2, CONTROL = 3, BYTE = 6;
const ALPHABET = "▁etaoinshrdlucmfwypvbgkjqxzETAOINSHRDLUCMFWYPVBGKJQXZ0123456789.";

/**
 * A deterministic SentencePiece-style vocabulary of `n` tokens: `<unk>`, `<s>`, `</s>`, the 256
 * byte tokens `<0x00>`…`<0xFF>`, then every string over a 64-character alphabet by increasing
 * length (so every piece is the merge of two shorter ones, as llama.cpp's SPM merging requires).
 */
export function generatedVocab(n: number): [string, GgufMetaValue][] {
  if (n < 259 + ALPHABET.length) {
    throw new SparqError(`synth: vocabulary of ${n} tokens is too small (at least ${259 + ALPHABET.length})`);
  }
  const tokens = ["<unk>", "<s>", "</s>"];
  const types = [UNKNOWN, CONTROL, CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(BYTE);
  }
  const chars = [...ALPHABET];
  let level = chars;
  while (tokens.length < n) {
    for (const p of level) {
      if (tokens.length === n) break;
      tokens.push(p);
      types.push(NORMAL);
    }
    level = level.flatMap((p) => chars.map((c) => p + c)).slice(0, n);
  }
  const scores = new Float32Array(n);
  for (let i = 259; i < n; i++) scores[i] = -(i - 259);
  return [
    ["tokenizer.ggml.model", meta.str("llama")],
    ["tokenizer.ggml.tokens", meta.arr(GgufValueType.STRING, tokens)],
    ["tokenizer.ggml.scores", meta.arr(GgufValueType.FLOAT32, scores)],
    ["tokenizer.ggml.token_type", meta.arr(GgufValueType.INT32, new Int32Array(types))],
    ["tokenizer.ggml.bos_token_id", meta.u32(1)],
    ["tokenizer.ggml.eos_token_id", meta.u32(2)],
    ["tokenizer.ggml.unknown_token_id", meta.u32(0)],
    ["tokenizer.ggml.add_bos_token", meta.bool(true)],
    ["tokenizer.ggml.add_eos_token", meta.bool(false)],
  ];
}

/** The `tokenizer.ggml.*` entries of an existing GGUF and its vocabulary size. */
export async function vocabFrom(path: string): Promise<{ entries: [string, GgufMetaValue][]; nVocab: number }> {
  const f = await openGguf(path);
  const entries = [...f.metadata].filter(([k]) => k.startsWith("tokenizer.ggml."));
  const tokens = metaArray<{ length: number }>(f, "tokenizer.ggml.tokens");
  if (!tokens) throw new SparqError(`${path}: no tokenizer.ggml.tokens, so no vocabulary to copy`);
  return { entries, nVocab: tokens.length };
}

/**
 * xorshift32 stream mapped through a table of 65536 normal samples: two table lookups per 32-bit
 * draw, so a 7B model's weights take seconds, not minutes. The table and the stream of every
 * tensor derive from the seed, so the same seed gives the same file.
 */
class NormalSource {
  private table = new Float32Array(65536);
  constructor(seed: number, std: number) {
    let s = mix(seed);
    const u = () => ((s = xorshift(s)) >>> 0) / 4294967296 + 1 / 8589934592; // (0, 1)
    for (let i = 0; i < this.table.length; i += 2) {
      const r = Math.sqrt(-2 * Math.log(u())) * std, t = 2 * Math.PI * u();
      this.table[i] = r * Math.cos(t);
      this.table[i + 1] = r * Math.sin(t);
    }
  }
  /** Fills `dst` from the stream state `s`; returns the next state. */
  fill(dst: Float32Array, s: number): number {
    const t = this.table;
    let i = 0;
    for (; i + 1 < dst.length; i += 2) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      dst[i] = t[s & 0xffff];
      dst[i + 1] = t[s >>> 16];
    }
    if (i < dst.length) dst[i] = t[(s = xorshift(s)) & 0xffff];
    return s;
  }
}

function xorshift(s: number): number {
  s ^= s << 13;
  s ^= s >>> 17;
  s ^= s << 5;
  return s;
}

/** A well-mixed non-zero 32-bit state from an integer (murmur3 finaliser). */
function mix(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  x ^= x >>> 16;
  return x || 0x9e3779b9;
}

/** Elements generated per chunk: a multiple of every block size, 4 MiB of f32. */
const CHUNK = 1 << 20;

/** Options of {@link synthModel}. */
export interface SynthOptions {
  arch: Arch;
  shape: string;
  /** Key of {@link SYNTH_TYPES}. */
  type: string;
  seed: number;
  /** Copy the tokenizer from this GGUF instead of generating one. */
  vocab?: string;
  onProgress?: (done: number, total: number) => void;
  /** Aborting stops the write; nothing is left on disk. */
  signal?: AbortSignal;
}

/** Writes a random-weight model to `path` (atomically); returns the file size. */
export async function synthModel(path: string, o: SynthOptions): Promise<number> {
  const base = SHAPES[o.shape];
  if (!base) throw new SparqError(`--shape: unknown shape "${o.shape}" (known: ${Object.keys(SHAPES).join(", ")})`);
  if (!(SUPPORTED_ARCHS as readonly string[]).includes(o.arch)) {
    throw new SparqError(`--arch: unknown architecture "${o.arch}" (supported: ${SUPPORTED_ARCHS.join(", ")})`);
  }
  if (base.arch && base.arch !== o.arch) {
    throw new SparqError(`--arch: shape ${o.shape} is a ${base.arch} model, not ${o.arch}`);
  }
  const t = SYNTH_TYPES[o.type];
  if (!t) throw new SparqError(`--type: unknown type "${o.type}" (known: ${Object.keys(SYNTH_TYPES).join(", ")})`);
  const vocab = o.vocab ? await vocabFrom(o.vocab) : undefined;
  const shape = { ...base, nVocab: vocab?.nVocab ?? base.nVocab };
  if (o.arch === "gptneox") {
    // GPT-NeoX has no grouped KV heads (one fused QKV) and rotates a quarter of each head.
    shape.nHeadKv = shape.nHead;
    shape.rotaryFraction ??= 0.25;
  }
  const md = [
    ...synthMetadata(o.arch, o.shape, shape, t.ftype),
    ...(vocab?.entries ?? generatedVocab(shape.nVocab)),
  ];
  const normal = new NormalSource(o.seed, 0.02);
  const f32 = new Float32Array(CHUNK);
  const encoded = new Uint8Array(CHUNK * 4);
  const tensors: GgufTensorSource[] = synthTensors(o.arch, shape, t.type).map((spec, index) => ({
    ...spec,
    data: function* () {
      const n = spec.shape.reduce((a, b) => a * b, 1);
      let state = mix(o.seed * 65537 + index + 1);
      for (let done = 0; done < n; done += CHUNK) {
        const x = f32.subarray(0, Math.min(CHUNK, n - done));
        if (spec.init === "normal") state = normal.fill(x, state);
        else x.fill(spec.init === "ones" ? 1 : 0);
        yield encode(spec.type, x, encoded);
      }
    },
  }));
  return await writeGguf(path, md, tensors, { onProgress: o.onProgress, signal: o.signal });
}

/** `x` in `type`, written into `scratch` (valid until the next call). */
function encode(type: GgmlType, x: Float32Array, scratch: Uint8Array): Uint8Array {
  switch (type) {
    case GgmlType.F32:
      return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
    case GgmlType.F16:
      return convertF16(x, scratch).subarray(0, x.length * 2);
    case GgmlType.BF16:
      return convertBf16(x, scratch).subarray(0, x.length * 2);
    case GgmlType.Q8_0:
      return quantizeQ8_0(x, scratch).subarray(0, (x.length / 32) * 34);
    case GgmlType.Q4_0:
      return quantizeQ4_0(x, scratch).subarray(0, (x.length / 32) * 18);
  }
  throw new Error(`synth: cannot encode ${ggmlTypeName(type)}`);
}
