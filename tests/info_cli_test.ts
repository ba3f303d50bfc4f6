import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { repoRoot, sharedPath } from "./testing.ts";
import { fixtureModels, REAL_MODELS } from "./fixture_table.ts";

/** Runs `deno run -A cli.ts ARGS`; returns exit code, stdout, stderr. */
async function sparq(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-webgpu", `${repoRoot}cli.ts`, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** The `  key  value` lines of the hyperparameter block. */
function hyper(text: string): Record<string, string> {
  const block = text.split("hyperparameters:\n")[1].split("\ntokenizer:")[0];
  return Object.fromEntries(block.split("\n").map((l) => l.trim().split(/\s+(.*)/s).slice(0, 2)));
}

Deno.test("sparq info prints the README hyperparameters for every fixture and real model", async () => {
  const rows = fixtureModels();
  if (!rows) return;
  const all = [...rows, ...REAL_MODELS].map((r) => ({ r, path: sharedPath(r.file) })).filter((x) => x.path);
  const results = await Promise.all(all.map(({ path }) => sparq("info", path!)));
  all.forEach(({ r }, i) => {
    const { code, stdout, stderr } = results[i];
    assertEquals([code, stderr], [0, ""], r.file);
    ok(stdout.includes(`architecture:  ${r.arch}\n`), r.file);
    const h = hyper(stdout);
    assertEquals({
      n_vocab: h.n_vocab,
      n_embd: h.n_embd,
      n_layer: h.n_layer,
      n_head: h.n_head,
      n_head_kv: h.n_head_kv,
      head_dim: h.head_dim,
      n_ff: h.n_ff,
      rope_dims: h.rope_dims,
      rope_base: h.rope_base,
      n_ctx_train: h.n_ctx_train,
      tied_output: h.tied_output,
    }, {
      n_vocab: String(r.nVocab),
      n_embd: String(r.nEmbd),
      n_layer: String(r.nLayer),
      n_head: String(r.nHead),
      n_head_kv: String(r.nHeadKv),
      head_dim: String(r.headDim),
      n_ff: String(r.nFf),
      rope_dims: String(r.ropeDims),
      rope_base: String(r.ropeBase),
      n_ctx_train: String(r.ctxTrain),
      tied_output: r.tied ? "yes" : "no",
    }, r.file);
    ok(/^totals: .* bits per weight$/m.test(stdout), r.file);
  });
});

Deno.test("sparq info --json: metadata as stored, long arrays summarised, tensor table with offsets", async () => {
  const path = sharedPath("fixtures/models/llama3-gqa.gguf");
  if (!path) return;
  const { code, stdout } = await sparq("info", path, "--json");
  assertEquals(code, 0);
  const j = JSON.parse(stdout);
  assertEquals(j.metadata["general.architecture"], "llama");
  assertEquals(j.metadata["llama.rope.freq_base"], 500000);
  assertEquals(j.metadata["tokenizer.ggml.pre"], "llama-bpe");
  assertEquals(j.metadata["tokenizer.ggml.tokens"], { type: "string", length: 512 });
  assertEquals(j.metadata["tokenizer.ggml.merges"], { type: "string", length: 254 });
  assertEquals(j.tensors.length, 21);
  assertEquals(j.tensors[0], {
    name: "token_embd.weight",
    type: "F32",
    shape: [128, 512],
    offset: j.tensors[0].offset,
    bytes: 262144,
  });
  ok(j.tensors.every((t: { offset: number }) => t.offset % 32 === 0));
});

Deno.test("sparq info on an unsupported architecture (vocab-only GPT-2) still prints its metadata", async () => {
  const path = sharedPath("fixtures/tokenizer/ggml-vocab-gpt-2.gguf");
  if (!path) return;
  const { code, stdout } = await sparq("info", path);
  assertEquals(code, 0);
  ok(stdout.includes('architecture "gpt2" is not supported'));
  ok(/gpt2\.embedding_length\s+768/.test(stdout));
  ok(stdout.includes("tokenizer:     BPE (gpt2), 50257 tokens, pre gpt-2, 50000 merges"));
});

Deno.test("sparq synth writes a model that sparq info reads; --gpu reports an adapter or says why not", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = `${dir}/tiny.gguf`;
    const s = await sparq("synth", "--shape", "tiny", "--type", "q8_0", "-o", out, "--seed", "5");
    assertEquals([s.code, s.stderr], [0, ""]); // not a TTY: no progress bar
    const i = await sparq("info", out, "--gpu");
    assertEquals(i.code, 0);
    ok(i.stdout.includes("name:          synth-tiny"));
    ok(/blk\.1\.ffn_down\.weight\s+Q8_0\s+\[192, 64\]\s+13056/.test(i.stdout));
    ok(/^gpu: {11}(none — |vendor|device|description)/m.test(i.stdout), i.stdout.split("gpu:")[1]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sparq synth interrupted with SIGINT exits 130 and leaves no file, not even a temporary one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${repoRoot}cli.ts`,
        "synth",
        "--shape",
        "llama2-7b",
        "--type",
        "f32",
        "-o",
        `${dir}/big.gguf`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // Wait until the temporary file exists, then interrupt.
    for (let i = 0; i < 200 && [...Deno.readDirSync(dir)].length === 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill("SIGINT");
    const out = await child.output();
    assertEquals(out.code, 130, new TextDecoder().decode(out.stderr));
    ok(new TextDecoder().decode(out.stderr).includes("synth: interrupted"));
    assertEquals([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
