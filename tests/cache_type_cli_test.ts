/**
 * `--cache-type f32|f16` on generate, logits, profile and compare: bad values are one-line errors with exit 2 (also
 * with --backend webgpu, which has both types: lib/webgpu/model_test.ts); f16 runs end to end and halves the K/V
 * bytes profile reports.
 */
import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { repoRoot } from "./testing.ts";

const root = repoRoot.replace(/\/$/, "");
const model = `${root}/testdata/stories260K.gguf`;

async function sparq(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-sys", `${root}/cli.ts`, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout), stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("--cache-type: bad values exit 2 with one line", async () => {
  const text = `${root}/README.md`;
  const cases: [string[], RegExp][] = [
    [["generate", "-m", model, "-p", "x", "--cache-type", "q8_0"], /^sparq: --cache-type q8_0: unknown KV cache type/],
    [["logits", "-m", model, "--ids", "1,2", "--cache-type", "F16"], /--cache-type F16: unknown KV cache type/],
    [["profile", "-m", model, "--cache-type", "bf16"], /--cache-type bf16: unknown KV cache type/],
    [["compare", "-m", model, "-f", text, "--cache-type", ""], /--cache-type : unknown KV cache type/],
    [["generate", "-m", model, "-p", "x", "--backend", "webgpu", "--cache-type", "f8"], /--cache-type f8: unknown/],
  ];
  for (const [args, re] of cases) {
    const r = await sparq(args);
    assertEquals(r.code, 2, `${args.join(" ")}: exit ${r.code}: ${r.stderr}`);
    ok(re.test(r.stderr) && r.stderr.trim().split("\n").length === 1, `${args.join(" ")}: ${r.stderr}`);
  }
});

Deno.test("--cache-type f16: generate runs, profile counts half the K/V bytes of f32", async () => {
  const g = await sparq([
    "generate",
    "-m",
    model,
    "-p",
    "Once upon a time",
    "-n",
    "24",
    "--temp",
    "0",
    "-t",
    "1",
    "--cache-type",
    "f16",
  ]);
  assertEquals(g.code, 0, g.stderr);
  ok(g.stdout.startsWith("Once upon a time,"), g.stdout);
  ok(/f16 KV cache/.test(g.stderr), g.stderr);
  const bytes = async (t: string) => {
    const r = await sparq([
      "profile",
      "-m",
      model,
      "-c",
      "64",
      "-n",
      "2",
      "-t",
      "1",
      "--fill",
      "random",
      "--probe-mb",
      "16",
      "--json",
      "--attention",
      "dense,sparq:r=8,k=16",
      "--cache-type",
      t,
    ]);
    assertEquals(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout).rows as { attention: string; bytesPerToken: { k: number; v: number } }[]);
  };
  const f32 = await bytes("f32"), f16 = await bytes("f16");
  assertEquals(f16.length, f32.length);
  for (let i = 0; i < f32.length; i++) {
    assertEquals(f16[i].bytesPerToken.k * 2, f32[i].bytesPerToken.k, f32[i].attention);
    if (f32[i].attention === "dense") assertEquals(f16[i].bytesPerToken.v * 2, f32[i].bytesPerToken.v);
    else ok(f16[i].bytesPerToken.v < f32[i].bytesPerToken.v, f32[i].attention);
  }
});
