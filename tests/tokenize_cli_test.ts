/** `sparq tokenize` and `sparq detokenize` end to end: output formats, flags, exit codes. */
import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { repoRoot, sharedPath } from "./testing.ts";
import { command as tokenize } from "../lib/commands/tokenize.ts";
import { command as detokenize } from "../lib/commands/detokenize.ts";

/** Runs `deno run -A cli.ts ARGS`; returns exit code, stdout, stderr. */
async function sparq(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${repoRoot}cli.ts`, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("sparq tokenize: formats and flags", async () => {
  const m = sharedPath("models/stories260K/stories260K.gguf");
  const gpt2 = sharedPath("fixtures/tokenizer/ggml-vocab-gpt-2.gguf");
  if (!m || !gpt2) return;
  const bad = await Deno.makeTempFile({ suffix: ".txt" });
  await Deno.writeFile(bad, new Uint8Array([0x4f, 0x6e, 0xff, 0x63, 0x65])); // "On\xFFce"
  try {
    const [ids, json, noBos, special, plain, table, file, pieces, bpe] = await Promise.all([
      sparq("tokenize", "-m", m, "-p", "Once upon a time", "--ids"),
      sparq("tokenize", "-m", m, "-p", "Once upon a time", "--json"),
      sparq("tokenize", "-m", m, "-p", "Once", "--no-bos", "--ids"),
      sparq("tokenize", "-m", m, "-p", "<s>Once", "--special", "--ids"),
      sparq("tokenize", "-m", m, "-p", "<s>Once", "--ids"),
      sparq("tokenize", "-m", m, "-p", "Once"),
      sparq("tokenize", "-m", m, "-f", bad, "--ids"),
      sparq("tokenize", "-m", m, "-p", "a\nb", "--pieces"),
      sparq("tokenize", "--model", gpt2, "--prompt", "Hello world", "--ids"),
    ]);
    assertEquals([ids.code, ids.stdout, ids.stderr], [0, "[1, 403, 407, 261, 378]\n", ""]);
    assertEquals(JSON.parse(json.stdout), {
      ids: [1, 403, 407, 261, 378],
      pieces: ["<s>", "▁Once", "▁upon", "▁a", "▁time"],
    });
    assertEquals(noBos.stdout, "[403]\n");
    assertEquals(special.stdout, "[1, 1, 403]\n");
    ok(!JSON.parse(plain.stdout).slice(1).includes(1), plain.stdout);
    assertEquals(table.stdout, "     1 -> '<s>'\n   403 -> ' Once'\n");
    // Invalid UTF-8 is replaced (one U+FFFD per bad byte here), with a warning naming the file.
    assertEquals(file.code, 0);
    ok(file.stderr.includes(`${bad}: invalid UTF-8 replaced by U+FFFD`), file.stderr);
    const same = await sparq("tokenize", "-m", m, "-p", "On\uFFFDce", "--ids");
    assertEquals(file.stdout, same.stdout);
    assertEquals(pieces.stdout.split("\n").slice(0, 2), ['"<s>"', '"▁a"']);
    assertEquals(bpe.stdout, "[15496, 995]\n");
  } finally {
    await Deno.remove(bad);
  }
});

Deno.test("sparq detokenize: ids in any list form, llama.cpp text, errors exit 2", async () => {
  const m = sharedPath("models/stories260K/stories260K.gguf");
  if (!m) return;
  const [spaced, commas, special, noNl, range, notInt, none] = await Promise.all([
    sparq("detokenize", "-m", m, "403", "407", "261", "378"),
    sparq("detokenize", "-m", m, "[1, 403, 407, 261, 378]"),
    sparq("detokenize", "-m", m, "--special", "1,403"),
    sparq("detokenize", "-m", m, "-n", "403"),
    sparq("detokenize", "-m", m, "1", "512"),
    sparq("detokenize", "-m", m, "1", "x"),
    sparq("detokenize", "-m", m),
  ]);
  assertEquals([spaced.code, spaced.stdout], [0, "Once upon a time\n"]);
  assertEquals(commas.stdout, " Once upon a time\n"); // BOS takes the first-token space strip
  assertEquals(special.stdout, "<s> Once\n");
  assertEquals(noNl.stdout, "Once");
  assertEquals([range.code, range.stdout], [2, ""]);
  ok(range.stderr.includes("token id 512 is out of range") && range.stderr.includes("512 tokens"), range.stderr);
  assertEquals(notInt.code, 2);
  ok(notInt.stderr.includes('"x" is not a token id'), notInt.stderr);
  assertEquals(none.code, 2);
});

Deno.test("sparq tokenize: bad input exits 2 with one line", async () => {
  const m = sharedPath("models/stories260K/stories260K.gguf");
  if (!m) return;
  const runs = await Promise.all([
    sparq("tokenize", "-m", m, "-p", ""),
    sparq("tokenize", "-p", "x"),
    sparq("tokenize", "-m", m),
    sparq("tokenize", "-m", m, "-p", "x", "--ids", "--json"),
    sparq("tokenize", "-m", m, "-f", "/nonexistent/prompt.txt"),
    sparq("tokenize", "-m", "/nonexistent/model.gguf", "-p", "x"),
    sparq("tokenize", "-m", m, "-p", "x", "--bogus"),
  ]);
  for (const r of runs) {
    assertEquals(r.code, 2, r.stderr);
    assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
    ok(r.stderr.startsWith("sparq: "), r.stderr);
  }
  ok(runs[0].stderr.includes("empty"));
  ok(runs[4].stderr.includes("/nonexistent/prompt.txt"));
});

Deno.test("--help of tokenize and detokenize lists every flag", () => {
  for (
    const flag of [
      "-m, --model",
      "-p, --prompt",
      "-f, --file",
      "--stdin",
      "--ids",
      "--pieces",
      "--json",
      "--no-bos",
      "--special",
    ]
  ) {
    ok(tokenize.help.includes(flag), `tokenize --help lacks ${flag}`);
  }
  for (const flag of ["-m, --model", "--special", "--remove-special", "-n, --no-newline"]) {
    ok(detokenize.help.includes(flag), `detokenize --help lacks ${flag}`);
  }
});
