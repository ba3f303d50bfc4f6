/**
 * The tokenizers against llama.cpp's own output (../shared): every case of the
 * fixtures/tokenizer/*.tokens.json files (real Llama-2 SPM and GPT-2 vocabularies and the tiny
 * vocabularies of the fixture models), llama.cpp's upstream .inp/.out vectors, and the trained
 * models' reference prompts and evaluation texts.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { openGguf } from "./gguf.ts";
import { type Tokenizer, tokenizerFromGguf } from "./tokenizer.ts";
import { readJson, sharedPath } from "../tests/testing.ts";

interface Case {
  source: string;
  text: string;
  ids: number[];
  ids_parse_special: number[];
  detokenized: string;
}

async function load(rel: string): Promise<Tokenizer | undefined> {
  const p = sharedPath(rel);
  return p ? tokenizerFromGguf(await openGguf(p)) : undefined;
}

const VOCABS: [string, string][] = [
  ["fixtures/tokenizer/ggml-vocab-llama-spm.gguf", "ggml-vocab-llama-spm"],
  ["fixtures/tokenizer/ggml-vocab-gpt-2.gguf", "ggml-vocab-gpt-2"],
  ["fixtures/models/llama-mha.gguf", "llama-mha"],
  ["fixtures/models/llama3-gqa.gguf", "llama3-gqa"],
  ["fixtures/models/qwen2.gguf", "qwen2"],
  ["fixtures/models/gptneox.gguf", "gptneox"],
];

for (const [model, name] of VOCABS) {
  Deno.test(`${name}: every llama.cpp case (ids, ids with parse_special, detokenized)`, async () => {
    const tok = await load(model);
    const json = sharedPath(`fixtures/tokenizer/${name}.tokens.json`);
    if (!tok || !json) return;
    const { cases } = readJson<{ cases: Case[] }>(json);
    for (const c of cases) {
      const what = `${name} ${JSON.stringify(c.text).slice(0, 60)}`;
      assertEquals(tok.encode(c.text, { addSpecial: false }), c.ids, what);
      assertEquals(tok.encode(c.text, { addSpecial: false, parseSpecial: true }), c.ids_parse_special, what);
      assertEquals(tok.decode(c.ids), c.detokenized, what);
    }
    console.log(`  ${name}: ${cases.length} cases × 3 checks passed`);
  });
}

for (const name of ["ggml-vocab-llama-spm", "ggml-vocab-gpt-2"]) {
  Deno.test(`${name}: llama.cpp's upstream .inp/.out vectors`, async () => {
    const tok = await load(`fixtures/tokenizer/${name}.gguf`);
    const inp = sharedPath(`fixtures/tokenizer/${name}.gguf.inp`);
    const out = sharedPath(`fixtures/tokenizer/${name}.gguf.out`);
    if (!tok || !inp || !out) return;
    // The .inp file separates cases with a marker line and ends with one.
    const texts = Deno.readTextFileSync(inp).split("\n__ggml_vocab_test__\n").slice(0, -1);
    const expected = Deno.readTextFileSync(out).split("\n").slice(0, texts.length)
      .map((l) => l.trim().split(/\s+/).filter((s) => s).map(Number));
    assertEquals(texts.length, expected.length);
    texts.forEach((text, i) =>
      assertEquals(tok.encode(text, { addSpecial: false }), expected[i], JSON.stringify(text))
    );
    console.log(`  ${name}: ${texts.length} upstream vectors passed`);
  });
}

Deno.test("stories260K: the reference prompts", async () => {
  const tok = await load("models/stories260K/stories260K.gguf");
  const refPath = sharedPath("models/stories260K/llama_cpp_reference.json");
  if (!tok || !refPath) return;
  assertEquals(tok.encode("Once upon a time"), [1, 403, 407, 261, 378]);
  const ref = readJson<{ prompt_logits: { text: string; tokens: number[] } }>(refPath);
  assertEquals(tok.encode(ref.prompt_logits.text), ref.prompt_logits.tokens);
});

Deno.test("pydoc4k (pydoc11M/pydoc21M): reference prompts and evaluation-text token counts", async () => {
  const tok11 = await load("models/pydoc11M/pydoc11M-f16.gguf");
  const tok21 = await load("models/pydoc21M/pydoc21M-f16.gguf");
  const evalDir = sharedPath("models/eval");
  if (!tok11 || !tok21 || !evalDir) return;
  // Each reference holds BOS + the first tokens of an evaluation file and the greedy prompt.
  const refs: [Tokenizer, string, string][] = [
    [tok21, "models/pydoc21M/llama_cpp_reference_2048.json", "tutorial__classes.txt"],
    [tok11, "models/pydoc11M/llama_cpp_reference_1024.json", "howto__functional.txt"],
    [tok11, "models/pydoc11M/llama_cpp_reference.json", "tutorial__classes.txt"],
  ];
  for (const [tok, rel, file] of refs) {
    const ref = readJson<
      { greedy: { prompt: string; prompt_tokens: number[] }; prompt_logits: { text: string; tokens: number[] } }
    >(
      sharedPath(rel)!,
    );
    const whole = tok.encode(Deno.readTextFileSync(`${evalDir}/${file}`));
    assertEquals(whole.slice(0, ref.prompt_logits.tokens.length), ref.prompt_logits.tokens, rel);
    assertEquals(tok.encode(ref.prompt_logits.text), ref.prompt_logits.tokens, rel);
    assertEquals(tok.encode(ref.greedy.prompt), ref.greedy.prompt_tokens, rel);
  }
  const manifest = readJson<{ passages: { file: string; tokens_pydoc4k: number }[] }>(`${evalDir}/manifest.json`);
  for (const p of manifest.passages) {
    const text = Deno.readTextFileSync(`${evalDir}/${p.file}`);
    const ids: number[] = tok11.encode(text);
    assertEquals(ids.length - 1, p.tokens_pydoc4k, p.file); // the manifest counts exclude BOS
    assertEquals(tok21.encode(text), ids, p.file);
    assertEquals(tok11.decode(ids.slice(1)), text, p.file); // detokenize round-trips
  }
  console.log(`  ${refs.length} reference prompts, ${manifest.passages.length} evaluation texts passed`);
});

Deno.test("streaming decode of every fixture case emits whole characters only", async () => {
  for (const [model, name] of VOCABS.slice(0, 2)) {
    const tok: Tokenizer | undefined = await load(model);
    const json = sharedPath(`fixtures/tokenizer/${name}.tokens.json`);
    if (!tok || !json) return;
    for (const c of readJson<{ cases: Case[] }>(json).cases) {
      const s = tok.streamDecoder();
      const chunks: string[] = c.ids.map((id) => s.push(id));
      chunks.push(s.flush());
      const bytes: number[] = c.ids.flatMap((id) => [...tok.pieceBytes(id)]);
      const whole: string = new TextDecoder().decode(new Uint8Array(bytes));
      assertEquals(chunks.join(""), whole, c.text);
      // Only text that is itself invalid UTF-8 may hold U+FFFD (e.g. a case cut inside a character).
      if (!whole.includes("\uFFFD")) assertEquals(chunks.filter((x) => x.includes("\uFFFD")), [], c.text);
    }
  }
});
