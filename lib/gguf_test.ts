import { deepStrictEqual as assertEquals, ok, throws } from "node:assert/strict";
import {
  GgufStringArray,
  GgufValueType,
  isUtf8,
  metaArray,
  metaNumber,
  metaString,
  openGguf,
  parseGgufBytes,
  readTensorInto,
  stringItems,
} from "./gguf.ts";
import { ggufBytes, meta } from "./gguf_writer.ts";
import { GgmlType, ggmlTypeName } from "./ggml_types.ts";
import { SparqError } from "./errors.ts";
import { readJson, sharedPath } from "../tests/testing.ts";
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
  // Kept as bytes, decoded on demand.
  const st = metaArray<GgufStringArray>(spm, "tokenizer.ggml.tokens")!;
  ok(st instanceof GgufStringArray);
  assertEquals([0, 1, 13, 29871, 31999].map((i) => st.get(i)), ["<unk>", "<s>", "<0x0A>", "▁", "给"]);
  const bt = metaArray<GgufStringArray>(bpe, "tokenizer.ggml.tokens")!;
  const bm = metaArray<GgufStringArray>(bpe, "tokenizer.ggml.merges")!;
  assertEquals([bt.get(0), bt.get(220), bt.get(50256)], ["!", "Ġ", "<|endoftext|>"]);
  assertEquals([bm.get(0), bm.get(49999)], ["Ġ t", "Ġg azed"]);
  assertEquals(bt.toArray(), [...bt]);
});

Deno.test("vocab-only fixtures parse within 2 × the file size (no JS string per vocabulary item)", () => {
  const dir = sharedPath("fixtures/tokenizer");
  if (!dir) return;
  for (const name of ["ggml-vocab-gpt-2.gguf", "ggml-vocab-llama-spm.gguf"]) {
    const bytes = Deno.readFileSync(`${dir}/${name}`);
    const m0 = Deno.memoryUsage();
    const f = parseGgufBytes(bytes, name);
    const m1 = Deno.memoryUsage();
    const grew = m1.heapUsed + m1.external - m0.heapUsed - m0.external;
    ok(grew < 2 * bytes.length, `${name}: ${grew} bytes for a ${bytes.length}-byte file`);
    ok(f.metadata.size > 0);
  }
});

Deno.test("GgufStringArray: get, iteration, toArray, itemBytes, stringItems; writer round trip keeps the bytes", () => {
  const a = GgufStringArray.from(["a", "", "héllo", "▁給"]);
  assertEquals(a.length, 4);
  assertEquals([a.get(0), a.get(1), a.get(2), a.get(3)], ["a", "", "héllo", "▁給"]);
  assertEquals([...a], a.toArray());
  assertEquals(a.itemBytes(2), new TextEncoder().encode("héllo"));
  throws(() => a.get(4), RangeError);
  throws(() => a.get(-1), RangeError);
  throws(() => new GgufStringArray(new Uint8Array(2), new Uint32Array([0, 3])), RangeError);
  assertEquals(stringItems(a), ["a", "", "héllo", "▁給"]);
  assertEquals(stringItems(["x"]), ["x"]);
  assertEquals(stringItems(new Int32Array(2)), undefined);
  assertEquals(stringItems([1]), undefined);
  assertEquals(GgufStringArray.from([]).toArray(), []);
  // An item that is not UTF-8 (short: decoded with U+FFFD, as before) survives a rewrite byte for byte.
  const raw = new GgufStringArray(new Uint8Array([0x61, 0xff, 0x62]), new Uint32Array([0, 1, 3]));
  const f = parseGgufBytes(ggufBytes([["s", meta.arr(GgufValueType.STRING, raw)]], []), "s.gguf");
  const back = metaArray<GgufStringArray>(f, "s")!;
  assertEquals(back.toArray(), ["a", "\uFFFDb"]);
  assertEquals(back.itemBytes(1), new Uint8Array([0xff, 0x62]));
  const again = parseGgufBytes(ggufBytes([...f.metadata], []), "s2.gguf");
  assertEquals(metaArray(again, "s"), back);
});

Deno.test("isUtf8 agrees with a fatal TextDecoder (overlongs, surrogates, > U+10FFFF, cut sequences)", () => {
  const strict = new TextDecoder("utf-8", { fatal: true });
  const valid = (b: Uint8Array) => {
    try {
      strict.decode(b);
      return true;
    } catch {
      return false;
    }
  };
  const pool = [
    0x41,
    0x80,
    0x8f,
    0x90,
    0x9f,
    0xa0,
    0xbf,
    0xc0,
    0xc1,
    0xc2,
    0xdf,
    0xe0,
    0xe1,
    0xed,
    0xef,
    0xf0,
    0xf4,
    0xf5,
  ];
  let s = 12345;
  const rand = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8;
  for (let t = 0; t < 20000; t++) {
    const b = Uint8Array.from({ length: rand() % 6 }, () => pool[rand() % pool.length]);
    assertEquals(isUtf8(b), valid(b), String(b));
  }
});

Deno.test("a long string array item that is not UTF-8 is refused; bool arrays are 0/1 bytes; nested arrays bounded", () => {
  const long = new Uint8Array((1 << 16) + 10).fill(0x61);
  long[60000] = 0xff;
  const bad = new GgufStringArray(long, new Uint32Array([0, long.length]));
  throws(
    () => parseGgufBytes(ggufBytes([["k", meta.arr(GgufValueType.STRING, bad)]], []), "u.gguf"),
    (e) => e instanceof SparqError && e.message === "u.gguf: k[0] (65546 bytes) is not valid UTF-8",
  );
  const f = parseGgufBytes(ggufBytes([["b", meta.arr(GgufValueType.BOOL, [true, false, true])]], []), "b.gguf");
  assertEquals(metaArray(f, "b"), new Uint8Array([1, 0, 1]));
  const nested = (n: number) =>
    new Map([["n", meta.arr(GgufValueType.ARRAY, Array.from({ length: n }, () => meta.arr(GgufValueType.INT8, [1])))]]);
  assertEquals(metaArray<unknown[]>(parseGgufBytes(ggufBytes(nested(256), [])), "n")!.length, 256);
  throws(
    () => parseGgufBytes(ggufBytes(nested(257), []), "n.gguf"),
    /^SparqError: n\.gguf: metadata n: more than 256 nested arrays in the file is implausible$/,
  );
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
