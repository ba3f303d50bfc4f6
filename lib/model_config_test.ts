import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { openGguf, parseGgufBytes } from "./gguf.ts";
import { configFromGguf } from "./model_config.ts";
import { ggufBytes, meta } from "./gguf_writer.ts";
import { SparqError } from "./errors.ts";
import { sharedPath } from "../tests/testing.ts";
import { fixtureModels, REAL_MODELS } from "../tests/fixture_table.ts";

Deno.test("configFromGguf gives the README hyperparameters for every fixture and real model", async () => {
  const rows = fixtureModels();
  if (!rows) return;
  for (const r of [...rows, ...REAL_MODELS]) {
    const path = sharedPath(r.file);
    if (!path) continue;
    const c = configFromGguf(await openGguf(path));
    assertEquals(
      {
        arch: c.arch,
        nVocab: c.nVocab,
        nEmbd: c.nEmbd,
        nLayer: c.nLayer,
        nHead: c.nHead,
        nHeadKv: c.nHeadKv,
        headDim: c.headDim,
        nFf: c.nFf,
        ropeDims: c.ropeDims,
        ropeBase: c.ropeBase,
        ctxTrain: c.ctxTrain,
        tied: c.tiedOutput,
      },
      {
        arch: r.arch,
        nVocab: r.nVocab,
        nEmbd: r.nEmbd,
        nLayer: r.nLayer,
        nHead: r.nHead,
        nHeadKv: r.nHeadKv,
        headDim: r.headDim,
        nFf: r.nFf,
        ropeDims: r.ropeDims,
        ropeBase: r.ropeBase,
        ctxTrain: r.ctxTrain,
        tied: r.tied,
      },
      r.file,
    );
    assertEquals(c.normEps, Math.fround(1e-5), r.file);
    assertEquals(c.ropeType, r.arch === "llama" ? "norm" : "neox", r.file);
  }
});

Deno.test("configFromGguf: architecture-specific switches of the fixtures", async () => {
  const dir = sharedPath("fixtures/models");
  if (!dir) return;
  const cfg = async (n: string) => configFromGguf(await openGguf(`${dir}/${n}.gguf`));
  const neox = await cfg("gptneox");
  assertEquals([neox.norm, neox.parallelResidual, neox.ffn, neox.fusedQkv, neox.qkvBias], [
    "layer",
    true,
    "gelu",
    true,
    true,
  ]);
  const gemma = await cfg("gemma");
  assertEquals([gemma.ffn, gemma.embdScale, gemma.tiedOutput], ["geglu", Math.sqrt(128), true]);
  const qwen = await cfg("qwen2");
  assertEquals([qwen.qkvBias, qwen.fusedQkv], [true, false]);
});

Deno.test("configFromGguf: unknown architecture and inconsistent heads are SparqErrors naming the file", () => {
  const file = (md: [string, ReturnType<typeof meta.u32>][]) => parseGgufBytes(ggufBytes(md, []), "x.gguf");
  throws(
    () => configFromGguf(file([["general.architecture", meta.str("mamba")]])),
    (e) =>
      e instanceof SparqError && /x\.gguf: architecture "mamba" is not supported \(supported: llama/.test(e.message),
  );
  const llama = (heads: number, kv: number) =>
    file([
      ["general.architecture", meta.str("llama")],
      ["llama.embedding_length", meta.u32(64)],
      ["llama.block_count", meta.u32(1)],
      ["llama.feed_forward_length", meta.u32(128)],
      ["llama.attention.head_count", meta.u32(heads)],
      ["llama.attention.head_count_kv", meta.u32(kv)],
      ["llama.vocab_size", meta.u32(10)],
    ]);
  assertEquals(configFromGguf(llama(4, 2)).headDim, 16);
  throws(() => configFromGguf(llama(4, 3)), /x\.gguf: head_count 4 is not a multiple of head_count_kv 3/);
});
