import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { fillRandom, formatProfileTable, opGroup, profileSvg, runProfile } from "./profile.ts";
import { splitAttentionList } from "./commands/args.ts";
import { openGguf } from "./gguf.ts";
import { configFromGguf } from "./model_config.ts";
import { loadModel } from "./model.ts";
import { checkXml } from "./xml_check.ts";

const model = new URL("../testdata/stories260K.gguf", import.meta.url).pathname;

/** Weight bytes a decode step reads, from the file alone: every matrix once + one embedding row. */
async function handWeightBytes(): Promise<number> {
  const f = await openGguf(model);
  const embd = f.tensorByName.get("token_embd.weight")!;
  let b = embd.bytes / embd.shape[1];
  for (const t of f.tensors) if (t.shape.length >= 2 && (t.shape[1] ?? 1) > 1 && t !== embd) b += t.bytes;
  if (!f.tensorByName.has("output.weight")) b += embd.bytes; // tied output reads the embedding matrix
  return b;
}

Deno.test("profile: bytes per token match the model shape; op times add up; table and SVG", async () => {
  const n = 4;
  const report = await runProfile({
    model,
    contexts: [16, 64],
    attention: ["dense", "sparq:ratio=1/8"],
    threads: [1],
    nTokens: n,
    fill: "prompt",
    probeBytes: 64 << 20,
  });
  assertEquals(report.rows.length, 4);
  const c = configFromGguf(await openGguf(model));
  const weights = await handWeightBytes();
  for (const r of report.rows) {
    assertEquals(r.bytesPerToken.weights, weights);
    assert(r.tokensPerSec > 0 && r.gbPerSec > 0 && r.probeGBps! > 0);
    const ops = r.ops!;
    const timed = ops.matvec + ops.attention + ops.other;
    assert(Math.abs(timed + ops.untimed - r.msPerToken) < 1e-6);
    assert(timed <= r.msPerToken * 1.001, `kernels ${timed} ms > wall ${r.msPerToken} ms`);
    if (r.attention === "dense") {
      // Steps at positions ctx+1 .. ctx+n read ctx+2 .. ctx+n+1 rows of K (and of V) per KV head and layer.
      const rows = r.ctx + (n + 3) / 2;
      assertEquals(r.bytesPerToken.k, c.nLayer * c.nHeadKv * c.headDim * 4 * rows);
      assertEquals(r.bytesPerToken.v, r.bytesPerToken.k);
      assertEquals(r.predictedRatio, undefined);
    } else {
      assert(r.predictedRatio! > 0 && r.predictedRatio! <= 1, `predicted ${r.predictedRatio}`);
      assert(r.measuredRatio! > 0, `measured ${r.measuredRatio}`);
    }
  }
  const table = formatProfileTable(report);
  assert(table.includes("| attention") && table.includes("sparq"), table);
  const svg = profileSvg(report);
  checkXml(svg);
  for (const name of ["dense", "bandwidth limit: dense"]) assert(svg.includes(`data-name="${name}"`), name);
  assert(/data-name="sparq[^"]*"/.test(svg));
});

Deno.test("profile: --fill random writes the cache directly and continues from that position", async (t) => {
  const m = await loadModel(model, { threads: 1, ctx: 80, attention: "sparq:ratio=1/8" });
  try {
    await t.step("cache and position", () => {
      fillRandom(m, 50, 7);
      assertEquals(m.pos, 50);
      assertEquals(m.cache.length, 50);
      // The feature-major copy SparQ reads agrees with K (append kept them consistent).
      const c = m.cache, l = 1, h = 1, d = c.headDim, nCtx = c.nCtx;
      const shard = m.runtime.shards[m.plan.layerShard[l]];
      const K = shard.f32(c.k(l), c.nKv * nCtx * d), Kt = shard.f32(c.kt(l), c.nKv * d * nCtx);
      for (const [p, i] of [[0, 0], [49, d - 1], [17, 3]]) {
        assertEquals(Kt[(h * d + i) * nCtx + p], K[(h * nCtx + p) * d + i]);
      }
      assert(K[(h * nCtx + 49) * d] !== 0 && K[(h * nCtx + 50) * d] === 0);
      const logits = m.evaluate([1]);
      assert(logits.every(Number.isFinite));
      assertEquals(m.pos, 51);
    });
    await t.step("report", async () => {
      const report = await runProfile({
        model,
        contexts: [64],
        attention: ["dense", "sparq:ratio=1/8"],
        threads: [1],
        nTokens: 2,
        fill: "random",
        probeBytes: 64 << 20,
      });
      assertEquals(report.rows.map((r) => r.fill), ["random", "random"]);
      const c = configFromGguf(await openGguf(model));
      assertEquals(report.rows[0].bytesPerToken.k, c.nLayer * c.nHeadKv * c.headDim * 4 * (64 + 5 / 2));
      assert(formatProfileTable(report).includes("random values"));
    });
  } finally {
    m.close();
  }
});

Deno.test("profile: attention lists keep a spec's options together; kernels map to op groups", () => {
  assertEquals(splitAttentionList(["dense,sparq:r=16,k=256,h2o:ratio=1/8"]), [
    "dense",
    "sparq:r=16,k=256",
    "h2o:ratio=1/8",
  ]);
  assertEquals(splitAttentionList(["dense", "sparq:ratio=1/8"]), ["dense", "sparq:ratio=1/8"]);
  assertEquals(opGroup("matmul_q4_0"), "matvec");
  assertEquals(opGroup("quantize_q8"), "matvec");
  assertEquals(opGroup("attn_dense_f32"), "attention");
  assertEquals(opGroup("sparq_decode"), "attention");
  assertEquals(opGroup("rmsnorm_f32"), "other");
});
