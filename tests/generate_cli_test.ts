/**
 * `sparq generate` and `sparq logits` end to end: the demo story (llama.cpp's greedy reference),
 * `--json` lines, stop strings, and bad input (exit 2, one line naming the flag or file).
 */
import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { readJson, repoRoot, sharedPath } from "./testing.ts";

const root = repoRoot.replace(/\/$/, "");
const model = `${root}/testdata/stories260K.gguf`;

async function sparq(args: string[], stdin?: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-sys", `${root}/cli.ts`, ...args],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout), stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("generate: the demo prints llama.cpp's greedy story, stats on stderr", async () => {
  const r = await sparq(["generate", "-m", model, "-p", "Once upon a time", "-n", "120", "--temp", "0", "-t", "1"]);
  assertEquals(r.code, 0, r.stderr);
  const ref = sharedPath("models/stories260K/llama_cpp_reference.json");
  const expected = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";
  ok(r.stdout.startsWith(expected), r.stdout);
  if (ref) {
    // 120 of the reference's 200 greedy tokens: the printed text is a prefix of its full text.
    const full = readJson<{ greedy: { full_text: string } }>(ref).greedy.full_text;
    ok(r.stdout.trimEnd().length > 300 && full.startsWith(r.stdout.trimEnd()), r.stdout);
  }
  ok(
    /prompt 5 tokens .* tok\/s/.test(r.stderr) && /generated 120 tokens, decode 119 .* tok\/s/.test(r.stderr),
    r.stderr,
  );
});

Deno.test("generate: --json lines, stop strings, prompt from stdin", async () => {
  const r = await sparq(
    ["generate", "-m", model, "-n", "40", "--temp", "0", "-t", "1", "--json", "--stop", "Lily"],
    "Once upon a time",
  );
  assertEquals(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  const summary = lines.pop();
  assertEquals(lines[0], { id: 432, text: "," });
  ok(lines.every((l) => Number.isInteger(l.id) && typeof l.text === "string"));
  assertEquals(summary.stop, "stop");
  assertEquals(summary.text, ", there was a little girl named ");
  ok(summary.prompt_tokens === 5 && summary.decode_tokens_per_s > 0 && summary.load_s > 0, JSON.stringify(summary));
});

Deno.test("generate: sampling with a seed is reproducible; -n 0 only evaluates the prompt", async () => {
  const args = ["generate", "-m", model, "-p", "Once", "-n", "30", "--temp", "0.9", "--seed", "7", "-t", "1"];
  const a = await sparq(args), b = await sparq(args);
  assertEquals(a.code, 0, a.stderr);
  assertEquals(a.stdout, b.stdout);
  const z = await sparq(["generate", "-m", model, "-p", "Once", "-n", "0", "-t", "1"]);
  assertEquals(z.code, 0, z.stderr);
  assertEquals(z.stdout, "Once\n");
  ok(/generated 0 tokens/.test(z.stderr));
});

Deno.test("generate: a full context stops with a message", async () => {
  const r = await sparq([
    "generate",
    "-m",
    model,
    "-p",
    "Once upon a time",
    "-n",
    "50",
    "-c",
    "12",
    "--temp",
    "0",
    "-t",
    "1",
  ]);
  assertEquals(r.code, 0, r.stderr);
  ok(/generated 8 tokens.*stopped: context full \(12 positions/.test(r.stderr), r.stderr);
});

Deno.test("generate/logits: bad input exits 2 with one line naming the flag or file", async () => {
  const cases: [string[], RegExp][] = [
    [
      ["generate", "-m", model, "-p", "Once upon a time there was", "-c", "4"],
      /prompt has 7 tokens, more than the context of 4/,
    ],
    [["generate", "-m", model, "-p", "x", "--n-predict=-1"], /^sparq: -n: expected an integer >= 0, got "-1"/],
    [["generate", "-m", model, "-p", "x", "-n", "ten"], /^sparq: -n: expected an integer >= 0, got "ten"/],
    [["generate", "-m", model, "-p", "x", "--temp", "-1"], /--temp/],
    [["generate", "-m", model, "-p", "x", "--top-p", "1.5"], /--top-p/],
    [["generate", "-m", model, "-p", "x", "--min-p", "abc"], /--min-p/],
    [["generate", "-m", model, "-p", "x", "--repeat-penalty", "0"], /--repeat-penalty/],
    [["generate", "-m", model, "-p", "x", "--attention", "bogus"], /--attention bogus/],
    [["generate", "-m", model, "-p", "x", "--sparq-r", "4"], /--sparq-r applies only to --attention sparq/],
    [["generate", "-m", `${root}/no/such.gguf`, "-p", "x"], /no\/such\.gguf: no such file/],
    [["generate", "-p", "x"], /-m MODEL is required/],
    [["logits", "-m", model], /exactly one of -p TEXT or --ids/],
    [["logits", "-m", model, "--ids", "1,2,9999"], /token id 9999 is out of range/],
  ];
  for (const [args, re] of cases) {
    const r = await sparq(args);
    assertEquals(r.code, 2, `${args.join(" ")}: exit ${r.code}: ${r.stderr}`);
    ok(re.test(r.stderr) && r.stderr.trim().split("\n").length === 1, `${args.join(" ")}: ${r.stderr}`);
  }
});

Deno.test("logits: --json rows equal llama.cpp's prompt logits", async () => {
  const fx = sharedPath("fixtures/logits/llama-mha.json");
  if (!fx) return;
  const ref = readJson<{ prompt_token_ids: number[]; prompt_logits: number[][] }>(fx);
  const ids = ref.prompt_token_ids.slice(0, 12);
  const r = await sparq([
    "logits",
    "-m",
    sharedPath("fixtures/models/llama-mha.gguf")!,
    "--ids",
    ids.join(","),
    "--json",
    "-t",
    "1",
  ]);
  assertEquals(r.code, 0, r.stderr);
  const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assertEquals(rows.length, 12);
  rows.forEach((row, i) => {
    assertEquals([row.pos, row.id], [i, ids[i]]);
    const d = Math.max(...row.logits.map((x: number, j: number) => Math.abs(x - ref.prompt_logits[i][j])));
    ok(d < 2e-3, `pos ${i}: ${d}`);
  });
  const top = await sparq(["logits", "-m", model, "-p", "Once", "--top", "3", "--json", "-t", "1"]);
  const first = JSON.parse(top.stdout.split("\n")[0]);
  assertEquals(first.top.length, 3);
  ok(first.top[0][1] <= 0 && first.top[0][1] >= first.top[1][1]);
});

Deno.test("generate: Ctrl-C (SIGINT) stops cleanly with statistics", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", `${root}/cli.ts`, "generate", "-m", model, "-p", "Once", "-n", "100000", "-c", "512"],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Wait until text streams, then interrupt.
  const reader = child.stdout.getReader();
  let seen = "";
  while (seen.length < 40) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += new TextDecoder().decode(value);
  }
  child.kill("SIGINT");
  while (!(await reader.read()).done);
  const stderr = await new Response(child.stderr).text();
  const status = await child.status;
  assertEquals(status.code, 0, stderr);
  ok(/generated \d+ tokens.*stopped: interrupted/.test(stderr), stderr);
});
