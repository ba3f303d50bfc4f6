import assert from "node:assert/strict";
import { compareModes } from "../lib/compare.ts";
import { compareSvg } from "../lib/commands/compare.ts";
import { repoRoot } from "./testing.ts";
import { checkXml } from "../lib/xml_check.ts";

const MODEL = `${repoRoot}testdata/stories260K.gguf`;
const TEXT = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. " +
  "One day, she saw a big, red ball. She wanted to play with it, but it was too high. Lily's mom said, " +
  '"Lily, let\'s go to the park." Lily was sad and didn\'t know what to do. She said, "I want to play with your ball."';

Deno.test("compare: dense against dense gives KL 0 and top-1 100%, and transfer 1", async () => {
  const r = await compareModes({
    model: MODEL,
    text: TEXT,
    modes: ["dense", "dense"],
    tasks: ["ppl"],
    threads: 1,
    prefix: 8,
  });
  assert.equal(r.results.length, 2);
  const [ref, again] = r.results;
  assert.equal(again.mode, "dense");
  assert.equal(again.top1, 1);
  assert.ok(again.kl! < 1e-9, `KL ${again.kl}`);
  assert.equal(again.transfer!.measured, 1);
  assert.equal(again.ppl, ref.ppl);
  // stories260K predicts its own TinyStories text well (llama.cpp's reference NLL on such text: 0.63 nats).
  assert.ok(ref.nll! > 0.1 && ref.nll! < 2.5, `nll ${ref.nll}`);
});

Deno.test("compare: sparse modes report less transfer than dense and sane agreement", async () => {
  const r = await compareModes({
    model: MODEL,
    text: TEXT.repeat(3),
    modes: ["sparq:ratio=1/4", "h2o:ratio=1/4", "streaming:ratio=1/4", "topk:ratio=1/4"],
    tasks: ["ppl"],
    threads: 1,
    prefix: 16,
  });
  assert.deepEqual(r.results.map((m) => m.mode.split(":")[0]), ["dense", "sparq", "h2o", "streaming", "topk"]);
  for (const m of r.results.slice(1)) {
    assert.ok(m.transfer!.measured < 1, `${m.mode} measured transfer ${m.transfer!.measured}`);
    assert.ok(m.transfer!.predicted < 1, `${m.mode} predicted transfer ${m.transfer!.predicted}`);
    assert.ok(m.top1! > 0.3 && m.top1! <= 1, `${m.mode} top-1 ${m.top1}`);
    assert.ok(m.kl! >= 0, `${m.mode} KL ${m.kl}`);
  }
  const svg = compareSvg(r, "top1");
  assert.ok(checkXml(svg).includes("svg"));
  assert.match(svg, /<svg[\s\S]*<\/svg>\s*$/);
  for (const kind of ["sparq", "h2o", "streaming", "topk", "dense"]) assert.ok(svg.includes(kind), kind);
});

Deno.test("compare greedy: dense follows its own greedy tokens exactly; SparQ scores every step", async () => {
  const r = await compareModes({
    model: MODEL,
    text: TEXT.repeat(3),
    modes: ["dense", "dense", "sparq:r=2,k=16"],
    tasks: ["greedy"],
    threads: 1,
    greedyProbes: 3,
    greedyTokens: 12,
  });
  const [ref, again, sparq] = r.results;
  assert.equal(ref.greedy!.prompts.length, 3);
  assert.ok(ref.greedy!.prompts[0] < ref.greedy!.prompts[2], "prompts of increasing length");
  for (const m of [ref, again]) {
    assert.equal(m.greedy!.agreement, 1);
    assert.deepEqual(m.greedy!.firstDiff, [12, 12, 12]);
  }
  const g = sparq.greedy!;
  assert.equal(g.steps, 12);
  assert.equal(g.agreement, g.agreed.reduce((a, b) => a + b, 0) / 36);
  for (const [i, f] of g.firstDiff.entries()) assert.ok(f <= g.agreed[i] && f <= 12, `first diff ${f}`);
});

/** Runs `sparq compare` on the demo model and the sample text with extra flags. */
function compareCli(args: string[]): Promise<Deno.CommandOutput> {
  const base = ["run", "--allow-read", "--allow-env", `${repoRoot}cli.ts`, "compare", "-m", MODEL];
  return new Deno.Command(Deno.execPath(), {
    args: [...base, "-f", `${repoRoot}testdata/stories_sample.txt`, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
}

Deno.test("compare --json: one object with the documented fields", async () => {
  const out = await compareCli([
    "--attention",
    "dense,sparq:ratio=1/2,reallocate=off",
    "--task",
    "ppl,repetition",
    "--rep-probes",
    "2",
    "--rep-cue",
    "4",
    "--rep-tokens",
    "8",
    "-t",
    "1",
    "--json",
  ]);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const report = JSON.parse(new TextDecoder().decode(out.stdout));
  for (const k of ["model", "tokens", "prefix", "scored", "tasks", "results"]) assert.ok(k in report, k);
  const sparq = report.results[1];
  // Options after commas stay with their mode.
  assert.deepEqual(report.results.map((r: { mode: string }) => r.mode), ["dense", "sparq:ratio=1/2,reallocate=off"]);
  for (const k of ["mode", "ratio", "transfer", "nll", "ppl", "bpc", "top1", "kl", "repetition"]) {
    assert.ok(k in sparq, k);
  }
  assert.equal(sparq.repetition.matched.length, 2);
  assert.ok(sparq.transfer.predicted > 0 && sparq.transfer.predicted < 1);
});

Deno.test("compare: bad flags exit with code 2 and one line", async () => {
  for (const args of [["--task", "nope"], ["--attention", "bogus"], ["--ratios", "x"]]) {
    const out = await compareCli(args);
    assert.equal(out.code, 2, args.join(" "));
    const err = new TextDecoder().decode(out.stderr).trim();
    assert.equal(err.split("\n").length, 1, err);
  }
});
