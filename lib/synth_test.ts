import { deepStrictEqual as assertEquals, notDeepStrictEqual, ok, rejects } from "node:assert/strict";
import { metaArray, metaNumber, openGguf } from "./gguf.ts";
import { GgmlType, tensorByteSize } from "./ggml_types.ts";
import { configFromGguf, SUPPORTED_ARCHS } from "./model_config.ts";
import { generatedVocab, SHAPES, synthModel, synthTensors } from "./synth.ts";
import { SparqError } from "./errors.ts";
import { sharedPath } from "../tests/testing.ts";

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("synth tiny: every architecture and type gives a file that loads with the right config", async () => {
  await withDir(async (dir) => {
    for (const arch of SUPPORTED_ARCHS) {
      for (const type of ["f32", "f16", "bf16", "q8_0", "q4_0"]) {
        const path = `${dir}/${arch}-${type}.gguf`;
        const size = await synthModel(path, { arch, shape: "tiny", type, seed: 3 });
        const f = await openGguf(path);
        assertEquals(f.fileSize, size);
        const c = configFromGguf(f);
        assertEquals([c.arch, c.nEmbd, c.nLayer, c.nFf, c.nVocab], [arch, 64, 2, 192, 512]);
        const want = synthTensors(arch, { ...SHAPES.tiny, nHeadKv: arch === "gptneox" ? 4 : 2 }, f.tensors[0].type);
        assertEquals(f.tensors.map((t) => [t.name, t.shape, t.type]), want.map((t) => [t.name, t.shape, t.type]));
        ok(f.tensors.every((t) => (t.shape.length === 1) === (t.type === GgmlType.F32) || type === "f32"));
      }
    }
    assertEquals([...Deno.readDirSync(dir)].filter((e) => e.name.includes(".tmp-")), []);
  });
});

Deno.test("synth weights: N(0, 0.02), norms 1, biases 0; same seed same bytes, other seed other bytes", async () => {
  await withDir(async (dir) => {
    const opts = { arch: "qwen2" as const, shape: "tiny", type: "f32", seed: 7 };
    await synthModel(`${dir}/a.gguf`, opts);
    await synthModel(`${dir}/b.gguf`, opts);
    await synthModel(`${dir}/c.gguf`, { ...opts, seed: 8 });
    const a = await Deno.readFile(`${dir}/a.gguf`);
    assertEquals(a, await Deno.readFile(`${dir}/b.gguf`));
    notDeepStrictEqual(a, await Deno.readFile(`${dir}/c.gguf`));
    const f = await openGguf(`${dir}/a.gguf`);
    const data = (name: string) => {
      const t = f.tensorByName.get(name)!;
      return new Float32Array(a.slice(t.offset, t.offset + t.bytes).buffer);
    };
    const w = data("blk.0.ffn_gate.weight");
    const mean = w.reduce((s, x) => s + x, 0) / w.length;
    const std = Math.sqrt(w.reduce((s, x) => s + (x - mean) ** 2, 0) / w.length);
    ok(Math.abs(mean) < 0.001 && Math.abs(std - 0.02) < 0.001, `mean ${mean} std ${std}`);
    ok(data("blk.1.attn_norm.weight").every((x) => x === 1));
    ok(data("blk.1.attn_q.bias").every((x) => x === 0));
    // Tensors get independent streams: no two weights start alike.
    notDeepStrictEqual(data("blk.0.attn_q.weight").subarray(0, 8), data("blk.0.attn_k.weight").subarray(0, 8));
  });
});

Deno.test("generated vocabulary: unk/bos/eos, 256 byte tokens, unique pieces each a merge of two shorter ones", () => {
  const md = new Map(generatedVocab(5000));
  const tokens = md.get("tokenizer.ggml.tokens")!.value as string[];
  assertEquals(tokens.length, 5000);
  assertEquals(tokens.slice(0, 4), ["<unk>", "<s>", "</s>", "<0x00>"]);
  assertEquals(tokens[258], "<0xFF>");
  assertEquals(new Set(tokens).size, 5000);
  const set = new Set(tokens.slice(259));
  for (const p of tokens.slice(259)) {
    const cps = [...p];
    ok(cps.length === 1 || set.has(cps.slice(0, -1).join("")) && set.has(cps.at(-1)!), p);
  }
  const types = md.get("tokenizer.ggml.token_type")!.value as Int32Array;
  assertEquals([types[0], types[1], types[3], types[300]], [2, 3, 6, 1]);
});

Deno.test("synth --vocab copies the tokenizer keys and takes the vocabulary size from them", async () => {
  const vocab = sharedPath("fixtures/tokenizer/ggml-vocab-llama-spm.gguf");
  if (!vocab) return;
  await withDir(async (dir) => {
    await synthModel(`${dir}/v.gguf`, { arch: "llama", shape: "tiny", type: "q8_0", seed: 1, vocab });
    const f = await openGguf(`${dir}/v.gguf`);
    const src = await openGguf(vocab);
    assertEquals(metaArray(f, "tokenizer.ggml.tokens"), metaArray(src, "tokenizer.ggml.tokens"));
    assertEquals(metaNumber(f, "llama.vocab_size"), 32000);
    assertEquals(f.tensorByName.get("token_embd.weight")!.shape, [64, 32000]);
  });
});

Deno.test("real shapes: TinyLlama-1.1B and Llama-2-7B parameter counts and pure Q4_0 sizes", () => {
  const count = (shape: string, type: GgmlType) => {
    const ts = synthTensors("llama", SHAPES[shape], type);
    return [
      ts.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0),
      ts.reduce((n, t) => n + tensorByteSize(t.type, t.shape), 0),
      ts.length,
    ];
  };
  assertEquals(count("tinyllama-1.1b", GgmlType.Q4_0), [1_100_048_384, 619_094_016, 201]);
  assertEquals(count("llama2-7b", GgmlType.Q4_0), [6_738_415_616, 3_791_273_984, 291]);
  assertEquals(count("llama2-7b", GgmlType.F16)[1], 6_738_415_616 * 2 + 65 * 4096 * 2);
});

Deno.test("synth: bad shape, type or arch is a SparqError naming the flag; nothing is written", async () => {
  await withDir(async (dir) => {
    const o = { arch: "llama" as const, shape: "tiny", type: "q4_0", seed: 1 };
    await rejects(
      synthModel(`${dir}/x`, { ...o, shape: "gpt5" }),
      (e) => e instanceof SparqError && /--shape/.test(e.message),
    );
    await rejects(synthModel(`${dir}/x`, { ...o, type: "q3_k" }), /--type: unknown type "q3_k"/);
    await rejects(synthModel(`${dir}/x`, { ...o, shape: "gemma-2b" }), /--arch: shape gemma-2b is a gemma model/);
    assertEquals([...Deno.readDirSync(dir)], []);
  });
});
