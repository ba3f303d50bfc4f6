import { deepStrictEqual as assertEquals, ok, throws } from "node:assert/strict";
import { GgufValueType, metaArray, metaNumber, metaString, openGguf, parseGgufBytes, readTensorInto } from "./gguf.ts";
import { GgmlType, ggmlTypeName } from "./ggml_types.ts";
import { SparqError } from "./errors.ts";
import { readJson, sharedPath } from "./testing.ts";
import { allSharedGgufs } from "../tests/fixture_table.ts";

interface Spec {
  name: string;
  arch: string;
  vocab: string;
  n_vocab: number;
  tensors: Record<string, number[]>;
  n_params: number;
  tied: boolean;
}

Deno.test("every GGUF in ../shared parses, from disk and from memory alike", async () => {
  const files = allSharedGgufs();
  if (!files.length) return;
  ok(files.length >= 22, `found only ${files.length} GGUF files`);
  for (const path of files) {
    const f = await openGguf(path);
    ok(f.version === 3 || f.version === 2, path);
    assertEquals(f.fileSize, (await Deno.stat(path)).size);
    const m = parseGgufBytes(await Deno.readFile(path), path);
    assertEquals(m.tensors, f.tensors, path);
    assertEquals([...m.metadata.keys()], [...f.metadata.keys()], path);
    for (const t of f.tensors) ok(t.offset >= f.dataOffset && t.offset + t.bytes <= f.fileSize, t.name);
  }
});

Deno.test("fixture models: metadata and tensor table match models.json and the README", async () => {
  const dir = sharedPath("fixtures/models");
  if (!dir) return;
  const specs = readJson<Spec[]>(`${dir}/models.json`);
  assertEquals(specs.length, 6);
  for (const s of specs) {
    const f = await openGguf(`${dir}/${s.name}.gguf`);
    const a = s.arch;
    assertEquals(metaString(f, "general.architecture"), a);
    assertEquals(metaString(f, "general.name"), s.name);
    assertEquals(f.alignment, 32);
    ok(!f.metadata.has("general.alignment"));
    const keys = [
      "general.file_type",
      `${a}.context_length`,
      `${a}.embedding_length`,
      `${a}.block_count`,
      `${a}.feed_forward_length`,
      `${a}.attention.head_count`,
      `${a}.attention.head_count_kv`,
      `${a}.rope.dimension_count`,
      `${a}.rope.freq_base`,
      a === "gptneox" ? `${a}.attention.layer_norm_epsilon` : `${a}.attention.layer_norm_rms_epsilon`,
      "tokenizer.ggml.model",
      "tokenizer.ggml.tokens",
      "tokenizer.ggml.token_type",
      "tokenizer.ggml.bos_token_id",
      "tokenizer.ggml.eos_token_id",
      "tokenizer.ggml.add_bos_token",
      "tokenizer.ggml.add_eos_token",
    ];
    if (a === "llama") keys.push("llama.vocab_size");
    if (a === "gptneox") keys.push("gptneox.use_parallel_residual");
    if (a === "gemma") keys.push("gemma.attention.key_length", "gemma.attention.value_length");
    const spm = s.vocab === "spm";
    keys.push(...(spm ? ["tokenizer.ggml.scores", "tokenizer.ggml.unknown_token_id"] : ["tokenizer.ggml.pre"]));
    if (!spm) keys.push("tokenizer.ggml.merges");
    for (const k of keys) ok(f.metadata.has(k), `${s.name}: ${k}`);
    assertEquals(metaNumber(f, "general.file_type"), 0);
    assertEquals(metaString(f, "tokenizer.ggml.model"), spm ? "llama" : "gpt2");
    if (!spm) assertEquals(metaString(f, "tokenizer.ggml.pre"), s.vocab.split(":")[1]);
    assertEquals(metaArray<string[]>(f, "tokenizer.ggml.tokens")!.length, s.n_vocab);
    assertEquals(f.metadata.get("tokenizer.ggml.scores")?.itemType, spm ? GgufValueType.FLOAT32 : undefined);
    assertEquals(metaArray<Int32Array>(f, "tokenizer.ggml.token_type")!.length, s.n_vocab);
    const got = Object.fromEntries(f.tensors.map((t) => [t.name, t.shape]));
    assertEquals(got, s.tensors, s.name);
    ok(f.tensors.every((t) => t.type === GgmlType.F32), s.name);
    const params = f.tensors.reduce((n, t) => n + t.shape.reduce((x, y) => x * y, 1), 0);
    assertEquals(params, s.n_params, s.name);
    assertEquals(
      f.tensorByName.has("output.weight"),
      !readJson<Spec[] & { tied: boolean }[]>(`${dir}/models.json`)
        .find((x) => x.name === s.name)!.tied,
    );
  }
});

const QUANT: Record<string, [number, string]> = {
  F16: [1, "F16"],
  BF16: [32, "BF16"],
  Q8_0: [7, "Q8_0"],
  Q4_0: [2, "Q4_0"],
  Q4_1: [3, "Q4_1"],
  Q5_0: [8, "Q5_0"],
  Q5_1: [9, "Q5_1"],
  Q4_K: [14, "Q4_K"],
  Q5_K: [16, "Q5_K"],
  Q6_K: [18, "Q6_K"],
  "Q4_K_M-mixed": [15, "Q4_K"],
};

Deno.test("quantized fixtures: same tensors as the base, types and file_type as the README says", async () => {
  const dir = sharedPath("fixtures/models");
  if (!dir) return;
  const base = await openGguf(`${dir}/llama-gqa-q.gguf`);
  const mixedQ6 = ["token_embd.weight", "blk.1.attn_v.weight", "blk.1.ffn_down.weight"];
  for (const [name, [ftype, type]] of Object.entries(QUANT)) {
    const f = await openGguf(`${dir}/quant/llama-gqa-q.${name}.gguf`);
    assertEquals(metaNumber(f, "general.file_type"), ftype, name);
    const shapes = (g: typeof f) => Object.fromEntries(g.tensors.map((t) => [t.name, t.shape]));
    assertEquals(shapes(f), shapes(base), name);
    for (const t of f.tensors) {
      const want = t.shape.length === 1 ? "F32" : name === "Q4_K_M-mixed" && mixedQ6.includes(t.name) ? "Q6_K" : type;
      assertEquals(ggmlTypeName(t.type), want, `${name} ${t.name}`);
    }
  }
});

Deno.test("vocab-only fixtures: Llama-2 SPM (32000) and GPT-2 BPE (50257 tokens, 50000 merges)", async () => {
  const dir = sharedPath("fixtures/tokenizer");
  if (!dir) return;
  const spm = await openGguf(`${dir}/ggml-vocab-llama-spm.gguf`);
  assertEquals(spm.tensors.length, 0);
  assertEquals(metaString(spm, "tokenizer.ggml.model"), "llama");
  assertEquals(metaArray<string[]>(spm, "tokenizer.ggml.tokens")!.length, 32000);
  assertEquals(metaArray<Float32Array>(spm, "tokenizer.ggml.scores")!.length, 32000);
  const bpe = await openGguf(`${dir}/ggml-vocab-gpt-2.gguf`);
  assertEquals(metaString(bpe, "tokenizer.ggml.model"), "gpt2");
  assertEquals(metaString(bpe, "tokenizer.ggml.pre"), "gpt-2");
  assertEquals(metaArray<string[]>(bpe, "tokenizer.ggml.tokens")!.length, 50257);
  assertEquals(metaArray<string[]>(bpe, "tokenizer.ggml.merges")!.length, 50000);
});

Deno.test("readTensorInto copies exactly the tensor's bytes, into plain and shared memory", async () => {
  const path = sharedPath("fixtures/models/quant/llama-gqa-q.Q4_0.gguf");
  if (!path) return;
  const f = await openGguf(path);
  const all = await Deno.readFile(path);
  for (const t of f.tensors) {
    const want = all.subarray(t.offset, t.offset + t.bytes);
    const plain = new Uint8Array(t.bytes);
    await readTensorInto(f, t, plain);
    assertEquals(plain, want);
    const shared = new Uint8Array(new SharedArrayBuffer(t.bytes + 16), 16);
    await readTensorInto(f, t, shared);
    ok(shared.every((x, i) => x === want[i]), t.name);
  }
});

Deno.test("typed metadata getters: defaults, and a SparqError naming file and key on a wrong type", async () => {
  const path = sharedPath("fixtures/models/llama-mha.gguf");
  if (!path) return;
  const f = await openGguf(path);
  assertEquals(metaNumber(f, "llama.block_count"), 2);
  assertEquals(metaNumber(f, "no.such.key", 7), 7);
  throws(
    () => metaNumber(f, "general.name"),
    (e) => e instanceof SparqError && /llama-mha.gguf.*general\.name/.test(e.message),
  );
  throws(() => metaString(f, "no.such.key"), /missing metadata key no\.such\.key/);
  throws(() => metaArray(f, "general.name"), /should be an array/);
});

Deno.test("a metadata string over 16 MiB is refused even when the file holds it", () => {
  const n = (16 << 20) + 1;
  const b = new Uint8Array(24 + 8 + 4 + 4 + 8 + n);
  const v = new DataView(b.buffer);
  b.set([0x47, 0x47, 0x55, 0x46]); // "GGUF"
  v.setUint32(4, 3, true);
  v.setBigUint64(16, 1n, true); // one key, no tensors
  v.setBigUint64(24, 4n, true);
  b.set([0x6b, 0x65, 0x79, 0x31], 32); // "key1"
  v.setUint32(36, GgufValueType.STRING, true);
  v.setBigUint64(40, BigInt(n), true);
  throws(
    () => parseGgufBytes(b, "big.gguf"),
    /big\.gguf: value of key1 is 16777217 bytes long \(at most 16777216 allowed\)/,
  );
});
