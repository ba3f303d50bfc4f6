/**
 * Long run: generated tokens (2,000 in the suite; SPARQ_LONG_RUN_TOKENS=10000 for the run) through the real generation loop (sampler, streaming detokenizer,
 * stop filter, one-token forward passes) keep resident memory flat, and a full context ends the run
 * with a clear `context` stop instead of an error. End-of-generation and control tokens are masked
 * out of the logits so that the demo model cannot stop early. SPARQ_LONG_RUN_TOKENS overrides the count.
 */
import { ok as assert, strictEqual as assertEquals } from "node:assert/strict";
import { loadModel, type Model } from "../lib/model.ts";
import { generate } from "../lib/generate.ts";
import { repoRoot } from "./testing.ts";

const modelPath = `${repoRoot}testdata/stories260K.gguf`;
const sampler = { temp: 1, topK: 40, topP: 0.95, minP: 0.05, repeatPenalty: 1, repeatLastN: 64, seed: 3 };

/** The model with end-of-generation and control tokens made impossible (-∞ logits). */
function withoutEog(model: Model): Model {
  const banned: number[] = [];
  for (let id = 0; id < model.config.nVocab; id++) {
    if (model.tokenizer.isEog(id) || model.tokenizer.isControl(id)) banned.push(id);
  }
  return new Proxy(model, {
    get(target, prop) {
      if (prop === "evaluate") {
        return (tokens: number[], o?: { allLogits?: boolean }) => {
          const logits = target.evaluate(tokens, o);
          for (const id of banned) logits[id] = -Infinity;
          return logits;
        };
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

interface Sample {
  tokens: number;
  rssMiB: number;
  heapMiB: number;
}

/** Generates `n` tokens, sampling memory (after a full GC) every n/10 tokens. Run in a child process. */
async function longRun(n: number): Promise<{ samples: Sample[]; seconds: number; stopReason: string }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with --v8-flags=--expose-gc");
  const model = await loadModel(modelPath, { threads: 1, ctx: n + 16 });
  try {
    // The KV cache is reserved at load but its pages become resident only as positions are written;
    // touch every page of the model's memories first so that growth would mean a real leak.
    for (const shard of model.runtime.shards) {
      const u8 = new Uint8Array(shard.memory.buffer);
      for (let i = 0; i < u8.length; i += 4096) u8[i] |= 0;
    }
    const prompt = model.tokenizer.encode("Once upon a time", { addSpecial: true });
    // A warm-up run of the same length first: one-time costs (JIT code of the hot JS and wasm functions, allocator
    // pools) otherwise land in the measured half when the machine is fast, as 1.5 MiB steps that are not per-token
    // growth.
    await generate(withoutEog(model), prompt, { maxTokens: n, sampler });
    model.reset();
    const samples: Sample[] = [];
    const every = Math.max(1, Math.floor(n / 10));
    let count = 0;
    const t0 = performance.now();
    const result = await generate(withoutEog(model), prompt, {
      maxTokens: n,
      sampler,
      onToken: () => {
        if (++count % every !== 0) return;
        gc();
        const m = Deno.memoryUsage();
        samples.push({ tokens: count, rssMiB: m.rss / 2 ** 20, heapMiB: m.heapUsed / 2 ** 20 });
      },
    });
    if (result.tokens.length !== n) throw new Error(`generated ${result.tokens.length} of ${n} tokens`);
    return { samples, seconds: (performance.now() - t0) / 1000, stopReason: result.stopReason };
  } finally {
    model.close();
  }
}

if (import.meta.main) {
  console.log(JSON.stringify(await longRun(Number(Deno.args[0]))));
}

Deno.test("long run: generated tokens keep resident memory flat (10,000 with SPARQ_LONG_RUN_TOKENS)", async () => {
  const n = Number(Deno.env.get("SPARQ_LONG_RUN_TOKENS") ?? 2000);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--v8-flags=--expose-gc", new URL(import.meta.url).pathname, String(n)],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert(out.success, "long-run child failed");
  const r = JSON.parse(new TextDecoder().decode(out.stdout)) as Awaited<ReturnType<typeof longRun>>;
  assertEquals(r.stopReason, "length");
  const fmt = (k: "rssMiB" | "heapMiB") => r.samples.map((x) => x[k].toFixed(1)).join(" ");
  console.log(`  ${n} tokens in ${r.seconds.toFixed(1)} s, every ${r.samples[0].tokens} tokens after a full GC:`);
  console.log(`  RSS MiB:  ${fmt("rssMiB")}\n  heap MiB: ${fmt("heapMiB")}`);
  // Over the second half of the measured run memory must not grow with the token count (the warm-up run took
  // the one-time steps: JIT code, V8 heap pages; the token and text history is a few hundred KB).
  const first = r.samples[Math.floor(r.samples.length / 2) - 1], last = r.samples[r.samples.length - 1];
  const heap = last.heapMiB - first.heapMiB, rss = last.rssMiB - first.rssMiB;
  assert(heap < 1, `JS heap grew ${heap.toFixed(2)} MiB from ${first.tokens} to ${last.tokens} tokens`);
  assert(rss < 2, `RSS grew ${rss.toFixed(1)} MiB from ${first.tokens} to ${last.tokens} tokens`);
});

Deno.test("long run: a full context ends generation with a clear 'context' stop", async () => {
  const model = await loadModel(modelPath, { threads: 1, ctx: 40 });
  try {
    const prompt = model.tokenizer.encode("Once upon a time", { addSpecial: true });
    const result = await generate(withoutEog(model), prompt, { maxTokens: 1000, sampler });
    assertEquals(result.stopReason, "context");
    assertEquals(model.pos, 40);
    assertEquals(prompt.length + result.tokens.length, 41); // the last sampled token is printed, not evaluated
  } finally {
    model.close();
  }
});
