/**
 * Every attention mode through the real runtime, KV cache and factory, over a whole sequence (prefill of a prefix,
 * then one decode step per position), against the scalar references; 1 and 2 threads must agree bit for bit.
 */
import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { type CacheType, KvCache } from "../kv_cache.ts";
import type { ModelConfig } from "../model_config.ts";
import { h2oRef, type SequenceRefInput, streamingRef, topkRef } from "../ref/attention_baselines_ref.ts";
import { type AttentionRefInput, denseAttentionRef, sparqRef } from "../ref/sparq_ref.ts";
import { roundF16 } from "../ref/f16.ts";
import type { AttentionBytes } from "./mode.ts";
import { createRuntime, type Runtime } from "../wasm_runtime.ts";
import { createAttention } from "./create.ts";
import { parseAttentionSpec } from "./spec.ts";
import { randn, rng } from "./test_kernels.ts";

const nHead = 4, nKv = 2, d = 16, T = 64, P = 20;
const config = { name: "test", nLayer: 1, nHead, nHeadKv: nKv, headDim: d, headDimV: d } as ModelConfig;

function sequence(seed: number): SequenceRefInput {
  const next = rng(seed);
  const vec = (n: number, tail: number) => Array.from({ length: n }, () => randn(next) * (next() < 0.1 ? tail : 1));
  return {
    q: Array.from({ length: T }, () => vec(nHead * d, 4)),
    k: Array.from({ length: T }, () => vec(nKv * d, 1)),
    v: Array.from({ length: T }, () => vec(nKv * d, 1)),
    nHead,
    nKv,
    d,
    dv: d,
  };
}

/** The decode step at position `pos` as a single-step reference input. */
function stepInput(seq: SequenceRefInput, pos: number): AttentionRefInput {
  const S = pos + 1;
  const flat = (rows: number[][]) =>
    Array.from({ length: nKv }, (_, g) => Array.from({ length: S }, (_, t) => rows[t].slice(g * d, (g + 1) * d)))
      .flat(2);
  return { q: seq.q[pos], K: flat(seq.k), V: flat(seq.v), nHead, nKv, d, dv: d, S };
}

/** Runs `spec` over the sequence on a fresh shard of `rt`; returns the outputs of positions P..T-1. */
function runMode(rt: Runtime, spec: string, seq: SequenceRefInput, cacheType: CacheType = "f32"): Float32Array[] {
  return runModeFull(rt, spec, seq, cacheType).decode;
}

/** {@link runMode}, also returning the prefill outputs (positions 0..P-1) and the bytes counted by the decode steps. */
function runModeFull(
  rt: Runtime,
  spec: string,
  seq: SequenceRefInput,
  cacheType: CacheType,
): { prefill: Float32Array; decode: Float32Array[]; bytes: AttentionBytes } {
  const threads = rt.threads;
  {
    const shard = rt.newShard(4 << 20);
    const s = parseAttentionSpec(spec);
    const cache = new KvCache({ config, nCtx: T + 3, shardOf: () => shard, cacheType, ...KvCache.requirements(s) });
    const mode = createAttention(s, { config, cache, shardOf: () => shard, threads });
    const q = shard.alloc(T * nHead * d * 4), out = shard.alloc(T * nHead * d * 4);
    const k = shard.alloc(T * nKv * d * 4), v = shard.alloc(T * nKv * d * 4);
    shard.f32(q, T * nHead * d).set(seq.q.flat());
    shard.f32(k, T * nKv * d).set(seq.k.flat());
    shard.f32(v, T * nKv * d).set(seq.v.flat());
    cache.append(0, 0, P, k, v);
    mode.prefill(0, 0, P, q, out);
    const prefill = shard.f32(out, P * nHead * d).slice();
    cache.length = P;
    mode.resetCounters();
    const outs: Float32Array[] = [];
    for (let pos = P; pos < T; pos++) {
      cache.append(0, pos, 1, k + pos * nKv * d * 4, v + pos * nKv * d * 4);
      mode.decode(0, pos, q + pos * nHead * d * 4, out);
      cache.length = pos + 1;
      outs.push(shard.f32(out, nHead * d).slice());
    }
    const b = mode.bytes;
    ok(b.k > 0 && b.v > 0, `${spec} counts bytes`);
    return { prefill, decode: outs, bytes: b };
  }
}

function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) {
  for (let i = 0; i < b.length; i++) {
    ok(Math.abs(a[i] - b[i]) <= tol * (1 + Math.abs(b[i])), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
  }
}

const cases: [string, (seq: SequenceRefInput, pos: number) => ArrayLike<number>, number][] = [
  ["streaming:sinks=2,window=9", (seq, pos) => streamingRef(stepInput(seq, pos), 2, 9), 1e-4],
  ["topk:k=7", (seq, pos) => topkRef(stepInput(seq, pos), 7).out, 1e-4],
  [
    "sparq:r=4,k=10,window=2",
    (seq, pos) => sparqRef(stepInput(seq, pos), { r: 4, k: 10, window: 2, reallocate: true, keepCurrent: true }).out,
    1e-5,
  ],
  ["sparq:r=4,k=0.125,reallocate=off", (seq, pos) => {
    const k = Math.max(1, Math.round((pos + 1) / 8));
    return sparqRef(stepInput(seq, pos), { r: 4, k, window: Math.floor(k / 4), reallocate: false, keepCurrent: true })
      .out;
  }, 1e-5],
];

Deno.test("every mode through the runtime equals its scalar reference; 1 and 2 threads identical", async (t) => {
  // Two runtimes for the whole test: starting workers is the slow part.
  const rt1 = await createRuntime({ threads: 1 }), rt2 = await createRuntime({ threads: 2 });
  try {
    for (const [spec, ref, tol] of cases) {
      await t.step(spec, () => {
        const seq = sequence(11);
        const one = runMode(rt1, spec, seq), two = runMode(rt2, spec, seq);
        for (let pos = P; pos < T; pos++) {
          assertClose(one[pos - P], ref(seq, pos), tol, `${spec} pos ${pos}`);
          assertEquals(two[pos - P], one[pos - P]);
        }
      });
    }
    const seq = sequence(12);
    for (
      const [spec, budget, window] of [
        ["h2o:k=12,window=3", () => 12, () => 3],
        ["h2o:k=0.25", (S: number) => Math.round(S / 4), (S: number) => Math.floor(Math.round(S / 4) / 4)],
      ] as const
    ) {
      await t.step(spec, () => {
        const ref = h2oRef(seq, P, budget, window);
        const one = runMode(rt1, spec, seq), two = runMode(rt2, spec, seq);
        for (let pos = P; pos < T; pos++) {
          assertClose(one[pos - P], ref[pos], 1e-4, `${spec} pos ${pos}`);
          assertEquals(two[pos - P], one[pos - P]);
        }
      });
    }
  } finally {
    rt1.close();
    rt2.close();
  }
});

Deno.test("f16 cache: every mode equals its reference on f16-rounded K/V, prefill too; 1 and 2 threads identical", async (t) => {
  const rt1 = await createRuntime({ threads: 1 }), rt2 = await createRuntime({ threads: 2 });
  try {
    const seq = sequence(21);
    // What an f16 cache holds: K and V rounded to nearest even.
    const rounded = { ...seq, k: seq.k.map((r) => r.map(roundF16)), v: seq.v.map((r) => r.map(roundF16)) };
    const all: typeof cases = [["dense", (s, pos) => denseAttentionRef(stepInput(s, pos)), 1e-5], ...cases];
    for (const [spec, ref] of all) {
      await t.step(spec, () => {
        const one = runModeFull(rt1, spec, seq, "f16"), two = runModeFull(rt2, spec, seq, "f16");
        const f32 = runModeFull(rt1, spec, seq, "f32");
        for (let pos = P; pos < T; pos++) {
          assertClose(one.decode[pos - P], ref(rounded, pos), 1e-5, `${spec} f16 pos ${pos}`);
          assertEquals(two.decode[pos - P], one.decode[pos - P]);
        }
        ok(
          one.decode.some((o, i) => o.some((x, j) => x !== f32.decode[i][j])),
          `${spec}: the f16 path differs from f32`,
        );
        // Prefill (dense, causal, a batch of P tokens) on the rounded values.
        for (let pos = 0; pos < P; pos++) {
          const row = one.prefill.subarray(pos * nHead * d, (pos + 1) * nHead * d);
          assertClose(row, denseAttentionRef(stepInput(rounded, pos)), 1e-5, `${spec} f16 prefill pos ${pos}`);
        }
        assertEquals(two.prefill, one.prefill);
        // K and V elements are 2 bytes instead of 4 (SparQ's v̄ stays f32: 4·d per KV head and step).
        const vsum = spec.startsWith("sparq") && !spec.includes("reallocate=off") ? (T - P) * nKv * d * 4 : 0;
        assertEquals(one.bytes.k * 2, f32.bytes.k, `${spec} K bytes`);
        assertEquals((one.bytes.v - vsum) * 2, f32.bytes.v - vsum, `${spec} V bytes`);
      });
    }
    await t.step("h2o:k=12,window=3", () => {
      const ref = h2oRef(rounded, P, () => 12, () => 3);
      const one = runMode(rt1, "h2o:k=12,window=3", seq, "f16"), two = runMode(rt2, "h2o:k=12,window=3", seq, "f16");
      for (let pos = P; pos < T; pos++) {
        assertClose(one[pos - P], ref[pos], 1e-5, `h2o f16 pos ${pos}`);
        assertEquals(two[pos - P], one[pos - P]);
      }
    });
  } finally {
    rt1.close();
    rt2.close();
  }
});

Deno.test("topk oracle reference selects the true top-k (one head per group: by logit)", () => {
  const seq = sequence(13);
  const x = stepInput(seq, 40);
  const { selected } = topkRef({ ...x, nHead: 2 }, 5);
  for (const [g, sel] of selected.entries()) {
    const logit = (t: number) => {
      let a = 0;
      for (let i = 0; i < d; i++) a += x.q[g * d + i] * x.K[(g * 41 + t) * d + i];
      return a;
    };
    const best = Array.from({ length: 40 }, (_, t) => t).sort((a, b) => logit(b) - logit(a)).slice(0, 5);
    assertEquals(sel, [...best.sort((a, b) => a - b), 40]);
  }
});
