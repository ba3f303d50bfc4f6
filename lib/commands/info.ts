/**
 * `sparq info`: what a GGUF file holds — architecture, hyperparameters, tokenizer, tensor table
 * and totals — as text or as one JSON object for scripts; `--gpu` describes the WebGPU adapter.
 * @module
 */
import { type Command, parseFlags } from "./args.ts";
import { SparqError } from "../errors.ts";
import { type GgufFile, type GgufMetaValue, GgufStringArray, GgufValueType, metaArray, openGguf } from "../gguf.ts";
import { ggmlTypeName } from "../ggml_types.ts";
import { configFromGguf } from "../model_config.ts";
import { formatBytes } from "../progress.ts";

const HELP = `sparq info — describe a GGUF model

usage: sparq info <model.gguf> [--json] [--gpu]

  --json   print one JSON object: {"metadata": {key: value, …}, "tensors": [{name, type, shape,
           offset, bytes}, …]}. Values are as stored; arrays longer than ${"64"} items are summarised
           as {"type": "<item type>", "length": n}; 64-bit integers beyond 2^53 are strings;
           shapes are in ggml order (shape[0] is the row length); offsets are absolute.
  --gpu    also describe the WebGPU adapter (needs deno run --unstable-webgpu); the model may be
           omitted.`;

/** Arrays longer than this are summarised in `--json` output. */
const MAX_JSON_ARRAY = 64;

/** The `info` subcommand. */
export const command: Command = {
  name: "info",
  summary: "architecture, hyperparameters, tokenizer and tensor table of a GGUF model",
  help: HELP,
  async run(args) {
    const { values, positionals } = parseFlags("info", args, {
      json: { type: "boolean" },
      gpu: { type: "boolean" },
    }, true);
    if (positionals.length > 1) throw new SparqError(`info: one model file expected, got ${positionals.length}`);
    if (positionals.length === 0 && !values.gpu) {
      throw new SparqError("info: a model file is required (sparq info <model.gguf>)");
    }
    const gpu = values.gpu ? await describeGpu() : undefined;
    if (positionals.length === 0) {
      console.log(values.json ? JSON.stringify({ gpu }, null, 1) : textGpu(gpu!));
      return 0;
    }
    const file = await openGguf(positionals[0]);
    if (values.json) {
      console.log(JSON.stringify({ ...ggufToJson(file), ...(gpu ? { gpu } : {}) }, null, 1));
    } else {
      console.log(describe(file));
      if (gpu) console.log("\n" + textGpu(gpu));
    }
    return 0;
  },
};

/** `--json` form of a GGUF header: metadata as stored (long arrays summarised) and tensor infos. */
export function ggufToJson(file: GgufFile): { metadata: Record<string, unknown>; tensors: unknown[] } {
  const metadata: Record<string, unknown> = {};
  for (const [k, v] of file.metadata) metadata[k] = jsonValue(v);
  const tensors = file.tensors.map((t) => ({
    name: t.name,
    type: ggmlTypeName(t.type),
    shape: t.shape,
    offset: t.offset,
    bytes: t.bytes,
  }));
  return { metadata, tensors };
}

function jsonValue(v: GgufMetaValue): unknown {
  if (v.type !== GgufValueType.ARRAY) return jsonScalar(v.value);
  const value = v.value as ArrayLike<unknown> | GgufStringArray;
  if (value.length > MAX_JSON_ARRAY) return { type: typeName(v.itemType!), length: value.length };
  const items = value instanceof GgufStringArray ? value.toArray() : value;
  return Array.from(items, (x) => v.itemType === GgufValueType.ARRAY ? jsonValue(x as GgufMetaValue) : jsonScalar(x));
}

function jsonScalar(x: unknown): unknown {
  if (typeof x === "bigint") return Number.isSafeInteger(Number(x)) ? Number(x) : x.toString();
  if (typeof x === "number" && !Number.isFinite(x)) return String(x); // JSON has no NaN/Infinity
  return x;
}

/** gguf.h's name of a value type (`uint8`, `float32`, `string`, `array`, …). */
function typeName(t: GgufValueType): string {
  return (GgufValueType[t] ?? `type#${t}`).toLowerCase();
}

/** The text report of `sparq info`. */
export function describe(file: GgufFile): string {
  const out: string[] = [];
  const params = file.tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  const bytes = file.tensors.reduce((n, t) => n + t.bytes, 0);
  const arch = String(file.metadata.get("general.architecture")?.value ?? "(none)");
  out.push(
    `file:          ${file.path} (GGUF v${file.version}, ${
      formatBytes(file.fileSize)
    }, ${file.metadata.size} metadata keys, ` +
      `${file.tensors.length} tensors, alignment ${file.alignment})`,
  );
  out.push(`architecture:  ${arch}`);
  const name = file.metadata.get("general.name")?.value;
  if (name !== undefined) out.push(`name:          ${String(name)}`);
  out.push("hyperparameters:");
  try {
    const c = configFromGguf(file);
    const rows: [string, unknown][] = [
      ["n_vocab", c.nVocab],
      ["n_embd", c.nEmbd],
      ["n_layer", c.nLayer],
      ["n_head", c.nHead],
      ["n_head_kv", c.nHeadKv],
      ["head_dim", c.headDim],
      ["n_ff", c.nFf],
      ["rope_dims", c.ropeDims],
      ["rope_base", c.ropeBase],
      ["rope_type", c.ropeType],
      ["rope_scaling", c.ropeScaling.kind === "none" ? "none" : `${c.ropeScaling.kind} ×${c.ropeScaling.factor}`],
      ["n_ctx_train", c.ctxTrain],
      ["norm", `${c.norm} eps ${Number(c.normEps.toPrecision(6))}`],
      ["ffn", c.ffn],
      ["tied_output", c.tiedOutput ? "yes" : "no"],
      ["parallel_residual", c.parallelResidual ? "yes" : "no"],
      ["qkv_bias", c.qkvBias ? "yes" : "no"],
    ];
    for (const [k, v] of rows) out.push(`  ${k.padEnd(18)} ${v}`);
  } catch (e) {
    if (!(e instanceof SparqError)) throw e;
    // Unsupported architecture or incomplete metadata: show what the file says instead.
    out.push(`  (${e.message.replace(`${file.path}: `, "")}; metadata says:)`);
    for (const [k, v] of file.metadata) {
      if (k.startsWith(`${arch}.`)) out.push(`  ${k.padEnd(40)} ${shortValue(v)}`);
    }
  }
  out.push(`tokenizer:     ${tokenizerLine(file)}`);
  if (file.tensors.length) {
    const nameW = Math.max(4, ...file.tensors.map((t) => t.name.length));
    out.push("tensors:");
    out.push(`  ${"name".padEnd(nameW)}  ${"type".padEnd(7)} ${"shape".padEnd(22)} ${"bytes".padStart(12)}`);
    for (const t of file.tensors) {
      out.push(
        `  ${t.name.padEnd(nameW)}  ${ggmlTypeName(t.type).padEnd(7)} ${`[${t.shape.join(", ")}]`.padEnd(22)} ${
          String(t.bytes).padStart(12)
        }`,
      );
    }
  }
  const bpw = params ? ((bytes * 8) / params).toFixed(2) : "-";
  out.push(
    `totals:        ${params} parameters (${formatCount(params)}), ${bytes} bytes of tensor data (${
      formatBytes(bytes)
    }), ${bpw} bits per weight`,
  );
  return out.join("\n");
}

function tokenizerLine(file: GgufFile): string {
  const model = file.metadata.get("tokenizer.ggml.model")?.value;
  if (model === undefined) return "(none)";
  const kind = model === "llama" ? "SentencePiece (llama)" : model === "gpt2" ? "BPE (gpt2)" : String(model);
  const tokens = metaArray<{ length: number }>(file, "tokenizer.ggml.tokens");
  const parts = [kind, `${tokens?.length ?? 0} tokens`];
  const pre = file.metadata.get("tokenizer.ggml.pre")?.value;
  if (pre !== undefined) parts.push(`pre ${String(pre)}`);
  const merges = metaArray<{ length: number }>(file, "tokenizer.ggml.merges");
  if (merges) parts.push(`${merges.length} merges`);
  for (const k of ["bos", "eos", "unknown"]) {
    const id = file.metadata.get(`tokenizer.ggml.${k}_token_id`)?.value;
    if (id !== undefined) parts.push(`${k === "unknown" ? "unk" : k} ${String(id)}`);
  }
  return parts.join(", ");
}

function shortValue(v: GgufMetaValue): string {
  if (v.type !== GgufValueType.ARRAY) return String(v.value);
  const items = v.value as ArrayLike<unknown>;
  return `[${typeName(v.itemType!)} × ${items.length}]`;
}

function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} K`;
  return String(n);
}

/** What `--gpu` reports: the adapter, or why there is none. */
interface GpuReport {
  available: boolean;
  reason?: string;
  info?: Record<string, unknown>;
  features?: string[];
  limits?: Record<string, number>;
}

async function describeGpu(): Promise<GpuReport> {
  const gpu = (navigator as { gpu?: GPU }).gpu;
  if (!gpu) {
    return { available: false, reason: "navigator.gpu is undefined (run deno with --unstable-webgpu)" };
  }
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter();
  } catch (e) {
    return { available: false, reason: `requestAdapter() failed: ${(e as Error).message}` };
  }
  if (!adapter) return { available: false, reason: "no WebGPU adapter found (requestAdapter() returned null)" };
  const info: Record<string, unknown> = {};
  for (const k of ["vendor", "architecture", "device", "description", "subgroupMinSize", "subgroupMaxSize"]) {
    const v = (adapter.info as unknown as Record<string, unknown>)[k];
    if (v !== undefined && v !== "") info[k] = v;
  }
  const limits: Record<string, number> = {};
  for (const k in adapter.limits) {
    const v = (adapter.limits as unknown as Record<string, unknown>)[k];
    if (typeof v === "number") limits[k] = v;
  }
  return { available: true, info, features: [...adapter.features].sort(), limits };
}

function textGpu(g: GpuReport): string {
  if (!g.available) return `gpu:           none — ${g.reason}`;
  const info = Object.entries(g.info!).map(([k, v]) => `${k} ${v}`).join(", ");
  const out = [`gpu:           ${info || "(adapter without info)"}`];
  out.push(`  features:    ${g.features!.join(", ") || "(none)"}`);
  out.push("  limits:");
  for (const [k, v] of Object.entries(g.limits!)) out.push(`    ${k.padEnd(42)} ${v}`);
  return out.join("\n");
}
