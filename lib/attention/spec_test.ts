import { deepStrictEqual as assertEquals, ok, throws } from "node:assert/strict";
import { SparqError } from "../errors.ts";
import {
  attentionSpecFromFlags,
  formatAttentionSpec,
  parseAttentionSpec,
  predictedTransfer,
  resolveParams,
  sparqParams,
  usesDense,
} from "./spec.ts";

const bad = (s: string, part: string) =>
  throws(() => parseAttentionSpec(s), (e: unknown) => e instanceof SparqError && e.message.includes(part));

Deno.test("parseAttentionSpec: every mode, canonical names round-trip", () => {
  assertEquals(parseAttentionSpec("dense"), { kind: "dense" });
  const s = parseAttentionSpec("sparq:ratio=1/8");
  assertEquals(s, {
    kind: "sparq",
    ratio: 1 / 8,
    r: undefined,
    k: undefined,
    window: undefined,
    reallocate: true,
    keepCurrent: true,
  });
  for (
    const t of [
      "sparq",
      "sparq:ratio=1/8",
      "sparq:r=16,k=256,window=0,reallocate=off",
      "sparq:k=0.125",
      "sparq:r=8,k=8,window=0,reallocate=off,current=off",
      "h2o:ratio=1/4",
      "h2o:k=100,window=10",
      "streaming:sinks=4,window=60",
      "streaming:ratio=1/16,sinks=4",
      "topk:k=64",
    ]
  ) {
    const spec = parseAttentionSpec(t);
    assertEquals(parseAttentionSpec(formatAttentionSpec(spec)), spec, t);
  }
  assertEquals(formatAttentionSpec(parseAttentionSpec("sparq:ratio=0.125")), "sparq:ratio=1/8");
  assertEquals(parseAttentionSpec("sparq:k=0.125").kind === "sparq" && parseAttentionSpec("sparq:k=0.125"), {
    kind: "sparq",
    ratio: undefined,
    r: undefined,
    k: { fraction: 0.125 },
    window: undefined,
    reallocate: true,
    keepCurrent: true,
  });
});

Deno.test("parseAttentionSpec: errors name the bad part", () => {
  bad("flash", '"flash"');
  bad("sparq:ratio=8", "ratio=8");
  bad("sparq:r=0", "r=0");
  bad("sparq:k=-3", "k=-3");
  bad("sparq:reallocate=maybe", "reallocate=maybe");
  bad("sparq:sinks=4", '"sinks=4"');
  bad("sparq:r", '"r"');
  bad("sparq:r=1,r=2", '"r" given twice');
  bad("topk:window=3", '"window=3"');
});

Deno.test("attentionSpecFromFlags merges --sparq-* flags and names the flag", () => {
  assertEquals(
    formatAttentionSpec(attentionSpecFromFlags("sparq", { r: "16", k: "0.25", reallocate: "off" })),
    "sparq:r=16,k=0.25,reallocate=off",
  );
  throws(() => attentionSpecFromFlags("sparq", { k: "x" }), /--sparq-k x/);
  throws(() => attentionSpecFromFlags("dense", { ratio: "1/8" }), /--sparq-ratio applies only/);
});

Deno.test("sparqParams: ratio 1/R gives r = d/R, k = S/(2R), window k/4; explicit sizes win", () => {
  const spec = parseAttentionSpec("sparq:ratio=1/8");
  if (spec.kind !== "sparq") throw new Error();
  assertEquals(sparqParams(spec, 128, 8192), { r: 16, k: 512, window: 128 });
  const ex = parseAttentionSpec("sparq:ratio=1/8,r=32,k=0.25,window=3");
  if (ex.kind !== "sparq") throw new Error();
  assertEquals(sparqParams(ex, 128, 1000), { r: 32, k: 250, window: 3 });
  // Dense while every position would be kept (k + 1 ≥ S).
  const fixed = parseAttentionSpec("sparq:r=8,k=128");
  ok(usesDense(fixed, 64, 129) && !usesDense(fixed, 64, 130));
  assertEquals(resolveParams(parseAttentionSpec("streaming:ratio=1/8"), 64, 1600), {
    r: 64,
    k: 200,
    window: 196,
    sinks: 4,
  });
  // A ratio never resolves below 128 positions: dense while the context is that short.
  const r8 = parseAttentionSpec("sparq:ratio=1/8");
  if (r8.kind !== "sparq") throw new Error();
  assertEquals(sparqParams(r8, 128, 1000), { r: 16, k: 128, window: 32 });
  ok(usesDense(r8, 128, 129) && !usesDense(r8, 128, 130));
});

Deno.test("predictedTransfer follows sparq.md §2.3", () => {
  const d = 128, S = 8192;
  assertEquals(predictedTransfer({ kind: "dense" }, d, S), 2 * S * d + 2 * d);
  const spec = parseAttentionSpec("sparq:ratio=1/8");
  assertEquals(predictedTransfer(spec, d, S), S * 16 + 2 * 512 * d + 4 * d);
  const ratio = predictedTransfer(spec, d, S) / predictedTransfer({ kind: "dense" }, d, S);
  ok(Math.abs(ratio - 1 / 8) < 0.01, `${ratio}`);
});
