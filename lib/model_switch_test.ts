import assert from "node:assert/strict";
import { loadModel } from "./model.ts";
import { repoRoot } from "../tests/testing.ts";

const MODEL = `${repoRoot}testdata/stories260K.gguf`;

Deno.test("setAttention: a mode planned at load decodes exactly like a model loaded with it", async () => {
  const prompt = [1, 403, 407, 261, 378, 279, 293, 261, 260, 309, 288, 412];
  const steps = [352, 261, 493, 278, 305, 260];
  const run = async (attention: string, also: string[], switchTo?: string) => {
    const model = await loadModel(MODEL, { attention, alsoAttention: also, threads: 1, ctx: 64 });
    try {
      model.evaluate(prompt);
      if (switchTo) model.setAttention(switchTo);
      return steps.map((t) => Array.from(model.evaluate([t])));
    } finally {
      model.close();
    }
  };
  const spec = "sparq:r=4,k=4";
  const direct = await run(spec, []);
  const switched = await run("dense", [spec], spec);
  assert.deepEqual(switched, direct);
  const dense = await run("dense", []);
  assert.notDeepEqual(direct, dense); // the sparse mode really is in use
});

Deno.test("setAttention: an unplanned mode is a SparqError naming the planned ones", async () => {
  const model = await loadModel(MODEL, { threads: 1, ctx: 32 });
  try {
    assert.throws(() => model.setAttention("sparq:ratio=1/8"), /was not planned at load \(planned: dense\)/);
  } finally {
    model.close();
  }
});
