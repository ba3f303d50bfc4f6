/**
 * GGUF fuzz test (CI size): 10,000 mutated variants of the fixture models and vocabulary-only
 * GGUFs (GPT-2 and Llama-2 vocabularies: 100,000 metadata strings, the worst case for memory) through
 * parseGgufBytes, 1 in 100 also written to disk and read with openGguf. Every case must end in a
 * SparqError or a valid parse, within 5 s, growing heapUsed + external by less than 2 × the
 * variant's size + 1 MiB. Longer campaigns: `deno run -A tools/fuzz_gguf.ts --seed N --count N`.
 */
import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { fuzz, ggufsIn } from "../tools/fuzz_gguf.ts";
import { sharedPath } from "./testing.ts";

Deno.test("fuzz: 10,000 mutated fixture GGUFs end in a SparqError or a valid parse, fast and small", async () => {
  const models = sharedPath("fixtures/models");
  if (!models) return;
  const vocabs = sharedPath("fixtures/tokenizer");
  const files = [...ggufsIn(models), ...ggufsIn(`${models}/quant`), ...(vocabs ? ggufsIn(vocabs) : [])];
  const tmpDir = await Deno.makeTempDir();
  try {
    const s = await fuzz({ files, seed: 20261123, count: 10_000, diskEvery: 100, tmpDir });
    const kinds = Object.entries(s.outcomes).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${n} ${k}`);
    console.log(
      `  ${s.cases} cases in ${s.seconds.toFixed(1)} s; max ${s.maxMs.toFixed(1)} ms/case; ` +
        `max growth ${(s.maxMemBytes / 1024).toFixed(0)} KiB (${(s.maxMemRatio * 100).toFixed(0)}% of a file)\n  ` +
        kinds.join(", "),
    );
    assertEquals(s.cases, 10_000);
    assertEquals(s.bugs, []);
    assertEquals(s.diskMismatches, []);
    // Every variant grows the heap by at most 2 × its size + MEM_SLACK (held result included).
    assertEquals(s.overBudget, []);
    ok(s.maxMs < 5000, `slowest case ${s.maxMs} ms: ${s.maxMsCase}`);
    ok(s.diskCases === 100);
    // The mutations must reach the parser's checks, not only the magic number.
    ok(Object.keys(s.outcomes).length >= 12, kinds.join(", "));
    ok((s.outcomes.valid ?? 0) > 100);
  } finally {
    await Deno.remove(tmpDir, { recursive: true });
  }
});
