import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { argmax, DEFAULT_SAMPLER, Sampler } from "./sampler.ts";
import { SparqError } from "./errors.ts";

const logits = Float32Array.from([1, 5, 3, 4.9, -2, 0]);

Deno.test("sampler: temp 0 is argmax, the penalty applies first", () => {
  const s = new Sampler({ ...DEFAULT_SAMPLER, temp: 0 }, logits.length);
  assertEquals(s.sample(logits, []), 1);
  const p = new Sampler({ ...DEFAULT_SAMPLER, temp: 0, repeatPenalty: 1.1 }, logits.length);
  // 5 / 1.1 = 4.545 < 4.9: the repeated token loses.
  assertEquals(p.sample(logits, [1]), 3);
  assertEquals(p.sample(logits, [1, 7, 7, 7]), 3);
  assertEquals(
    new Sampler({ ...DEFAULT_SAMPLER, temp: 0, repeatPenalty: 1.1, repeatLastN: 1 }, 6).sample(logits, [1, 2]),
    1,
  );
  assertEquals(argmax(logits), 1);
});

Deno.test("sampler: top-k 1 and min-p 1 are greedy; seeded draws repeat", () => {
  assertEquals(new Sampler({ ...DEFAULT_SAMPLER, topK: 1, seed: 3 }, 6).sample(logits, []), 1);
  assertEquals(new Sampler({ ...DEFAULT_SAMPLER, topK: 0, topP: 1, minP: 1, seed: 3 }, 6).sample(logits, []), 1);
  const draw = (seed: number) => {
    const s = new Sampler({ ...DEFAULT_SAMPLER, temp: 1.5, topK: 0, topP: 1, minP: 0, seed }, 6);
    return Array.from({ length: 200 }, () => s.sample(logits, []));
  };
  assertEquals(draw(42), draw(42));
  const counts = new Map<number, number>();
  for (const id of draw(7)) counts.set(id, (counts.get(id) ?? 0) + 1);
  // At temperature 1.5 tokens 1 and 3 (logits 5, 4.9) dominate, and are about equally likely.
  assert((counts.get(1) ?? 0) > 50 && (counts.get(3) ?? 0) > 50, JSON.stringify([...counts]));
  assert((counts.get(4) ?? 0) < 10);
});

Deno.test("sampler: top-p keeps the smallest set reaching p", () => {
  // Softmax of [5, 4.9, 4, 3, 1, 0] ≈ [.44, .40, .16, ...]: top-p 0.5 keeps tokens 1 and 3 only.
  const s = new Sampler({ ...DEFAULT_SAMPLER, temp: 1, topK: 0, topP: 0.5, minP: 0, seed: 1 }, 6);
  const seen = new Set(Array.from({ length: 300 }, () => s.sample(logits, [])));
  assertEquals([...seen].sort(), [1, 3]);
});

Deno.test("sampler: nonsense settings are SparqErrors naming the flag", () => {
  const bad = [{ temp: -1 }, { topP: 0 }, { topP: 1.5 }, { minP: 2 }, { topK: -3 }, { repeatPenalty: 0 }, {
    repeatLastN: -2,
  }, { seed: 1.5 }];
  for (const b of bad) {
    throws(
      () => new Sampler({ ...DEFAULT_SAMPLER, ...b }, 6),
      (e: unknown) => e instanceof SparqError && /^--/.test(e.message),
    );
  }
});
