import { ok as assert } from "node:assert/strict";
import { sparqRef } from "../ref/sparq_ref.ts";
import { parseAttentionSpec, sparqParams } from "../attention/spec.ts";
import { GpuAttention, type SparqKernelOptions } from "./attention.ts";
import { Kernels } from "./kernels.ts";
import { gpuOrSkip } from "./test_util.ts";
import type { Gpu } from "./device.ts";
import { gpuCacheElem } from "./model.ts";

/** Deterministic uniform values in [-1, 1). */
function random(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

/** One SparQ decode case: sizes, the spec's r/k/window, and whether many K rows tie at the top. */
interface SparqCase {
  nHead: number;
  nKv: number;
  d: number;
  ctx: number;
  S: number;
  params: string;
  ties?: boolean;
}

const SPARQ_CASES: SparqCase[] = [
  { nHead: 4, nKv: 2, d: 16, ctx: 64, S: 50, params: "r=4,k=8,window=2" },
  // G = 1 (scores are the logits), several approx blocks, several keys per select thread.
  { nHead: 2, nKv: 2, d: 32, ctx: 3000, S: 2900, params: "r=8,k=300,window=20" },
  // Exact ties at the threshold (every 7th K row is the same): the lower positions win, as the reference.
  { nHead: 2, nKv: 2, d: 16, ctx: 1600, S: 1500, params: "r=4,k=100,window=10", ties: true },
  { nHead: 8, nKv: 2, d: 16, ctx: 1600, S: 1500, params: "r=4,k=100,window=10", ties: true },
];

/**
 * Kernel variants: the defaults (G = 1 and S ≤ 2048: ŝ in the select kernel; else the select in the last
 * approx workgroup), the separate approx and select kernels (radix select and combine kernel too), and the
 * select in the last approx workgroup at any S.
 */
const VARIANTS: [string, SparqKernelOptions][] = [
  ["default kernels", {}],
  ["approx kernel, radix select, combine kernel", {
    mergedMax: 0,
    selectInApprox: false,
    bins: false,
    fuseCombine: false,
  }],
  ["approx kernel, 2 positions per thread", { mergedMax: 0, selectInApprox: false, approxPerThread: 2 }],
  ["select in the last of 256-thread approx workgroups, an atomic add per position, two folds", {
    mergedMax: 0,
    selectInApprox: true,
    tune: { approxWg: 256, reserve: false, oneFold: false },
  }],
  ["select in the last of 512-thread approx workgroups, reserved slots, one fold", {
    mergedMax: 0,
    selectInApprox: true,
    tune: { approxWg: 512, reserve: true, oneFold: true },
  }],
  ["approx kernel, select with reserved slots and one fold", {
    mergedMax: 0,
    selectInApprox: false,
    tune: { reserve: true, oneFold: true },
  }],
];

for (const c of SPARQ_CASES) {
  for (const reallocate of [true, false]) {
    for (const [vname, opts] of VARIANTS) {
      const name = `G ${c.nHead / c.nKv}, S ${c.S}, ${c.params}${c.ties ? ", ties" : ""}, reallocate ${reallocate}`;
      Deno.test(`webgpu SparQ decode (${name}; ${vname}) matches the scalar reference`, async () => {
        const gpu = await gpuOrSkip();
        if (gpu) await checkSparq(gpu, c, reallocate, opts);
      });
    }
  }
}

// An f16 cache (packed halves on llvmpipe): the reference gets the same rounded K and V.
for (const c of SPARQ_CASES.slice(0, 2)) {
  Deno.test(`webgpu SparQ decode (G ${c.nHead / c.nKv}, S ${c.S}, ${c.params}) over an f16 cache`, async () => {
    const gpu = await gpuOrSkip();
    if (gpu) await checkSparq(gpu, c, true, {}, true);
  });
}

/** `x` rounded to f16 and back (as an f16 cache stores it) where `f16`, else `x`. */
function asStored(x: Float32Array, f16: boolean): Float32Array {
  return f16 ? Float32Array.from(Float16Array.from(x)) : x;
}

/** The bytes of `x` as the cache stores them: f32, or f16 halves. */
function cacheBytes(x: Float32Array, f16: boolean): Float32Array | Float16Array {
  return f16 ? Float16Array.from(x) : x;
}

async function checkSparq(
  gpu: Gpu,
  c: SparqCase,
  reallocate: boolean,
  opts: SparqKernelOptions,
  f16 = false,
): Promise<void> {
  const { nHead, nKv, d, ctx, S } = c;
  const spec = parseAttentionSpec(`sparq:${c.params},reallocate=${reallocate ? "on" : "off"}`);
  if (spec.kind !== "sparq") throw new Error("spec");
  const k = new Kernels(gpu);
  try {
    const q = k.buffer(nHead * d * 4), out = k.buffer(nHead * d * 4);
    const elem = gpuCacheElem(gpu, f16 ? "f16" : "f32");
    const att = new GpuAttention(k, { nLayer: 1, nHead, nKv, d, ctx, batch: 1, elem }, spec, q, out, opts);
    let K = random(nKv * S * d, 1);
    const V = asStored(random(nKv * S * d, 2), f16), Q = random(nHead * d, 3);
    for (let i = 0; i < Q.length; i++) Q[i] *= 3 * (i % 5 === 0 ? 4 : 1); // heavy-tailed q like a real model
    if (c.ties) {
      // Every 7th row of each KV head: the same row, aligned with the group's q (the top scores, all equal).
      for (let g = 0; g < nKv; g++) {
        for (let t = 0; t < S; t += 7) {
          for (let i = 0; i < d; i++) K[(g * S + t) * d + i] = Math.sign(Q[g * (nHead / nKv) * d + i]) * 0.9;
        }
      }
    }
    K = asStored(K, f16);
    // Caches with a stride of ctx positions: K/V rows, Kt columns, and the V sum.
    const Kc = new Float32Array(nKv * ctx * d), Vc = new Float32Array(nKv * ctx * d);
    const Kt = new Float32Array(nKv * d * ctx), vsum = new Float32Array(nKv * d);
    for (let g = 0; g < nKv; g++) {
      for (let t = 0; t < S; t++) {
        for (let i = 0; i < d; i++) {
          const kv = K[(g * S + t) * d + i], vv = V[(g * S + t) * d + i];
          Kc[(g * ctx + t) * d + i] = kv;
          Vc[(g * ctx + t) * d + i] = vv;
          Kt[(g * d + i) * ctx + t] = kv;
          vsum[g * d + i] += vv;
        }
      }
    }
    const l0 = att.layers[0];
    k.device.queue.writeBuffer(l0.k, 0, cacheBytes(Kc, f16));
    k.device.queue.writeBuffer(l0.v, 0, cacheBytes(Vc, f16));
    k.device.queue.writeBuffer(l0.kt!, 0, cacheBytes(Kt, f16));
    k.device.queue.writeBuffer(l0.vsum!, 0, vsum);
    k.device.queue.writeBuffer(q, 0, Q);
    const fields = att.stepFields(S - 1, 1);
    k.submit(att.ops(0, 1), k.setStep({ pos0: S - 1, nTok: 1, ...fields }));
    const got = new Float32Array(await k.read(out, 0, nHead * d * 4));
    const sel = new Uint32Array(await k.read(att.selected!, 0, nKv * ctx * 4));
    k.throwIfFailed();
    const p = sparqParams(spec, d, S);
    const want = sparqRef({ q: Q, K, V, nHead, nKv, d, dv: d, S }, { ...p, reallocate, keepCurrent: true });
    for (let g = 0; g < nKv; g++) {
      const mine = [...sel.subarray(g * ctx, g * ctx + fields.kk!)].sort((a, b) => a - b);
      const w = want.selected[g];
      const extra = mine.filter((t) => !w.includes(t)), missing = w.filter((t) => !mine.includes(t));
      assert(
        mine.join() === w.join(),
        `KV head ${g}: selected positions differ from the reference: ${mine.length} vs ${w.length}, extra ${
          extra.slice(0, 10)
        }, missing ${missing.slice(0, 10)}`,
      );
    }
    let max = 0;
    for (let i = 0; i < got.length; i++) max = Math.max(max, Math.abs(got[i] - want.out[i]));
    assert(max <= 1e-4, `max |Δ| ${max}`);
  } finally {
    k.destroy();
  }
}

/**
 * softmax(q·Kᵀ/√d)·V in f64 for the query at `Q[qo ..]` over cache rows `row0 … row0 + n − 1` (`[row][d]`).
 */
function softmaxAttentionRef(
  Q: Float32Array,
  qo: number,
  K: Float32Array,
  V: Float32Array,
  row0: number,
  n: number,
  d: number,
): number[] {
  const sc = Array.from({ length: n }, (_, p) => {
    let a = 0;
    for (let i = 0; i < d; i++) a += Q[qo + i] * K[(row0 + p) * d + i];
    return a / Math.sqrt(d);
  });
  const m = Math.max(...sc);
  const e = sc.map((x) => Math.exp(x - m));
  const l = e.reduce((a, b) => a + b, 0);
  return Array.from({ length: d }, (_, i) => {
    let y = 0;
    for (let p = 0; p < n; p++) y += e[p] * V[(row0 + p) * d + i];
    return y / l;
  });
}

// f16: also d = 128, where two dimensions of V per thread cover 16 positions of a block (pairedV).
for (const [f16, d] of [[false, 16], [true, 16], [true, 128]] as const) {
  Deno.test(
    `webgpu dense decode over many chunks and a partial last block matches a scalar softmax (${
      f16 ? "f16" : "f32"
    } cache, d ${d})`,
    async () => {
      const gpu = await gpuOrSkip();
      if (gpu) await checkDenseDecode(gpu, f16, d);
    },
  );
}

async function checkDenseDecode(gpu: Gpu, f16: boolean, d: number): Promise<void> {
  const nHead = 4, nKv = 2, G = nHead / nKv;
  const elem = gpuCacheElem(gpu, f16 ? "f16" : "f32");
  for (const S of [7, 1000, 3001]) {
    const ctx = S + 1;
    const k = new Kernels(gpu);
    try {
      const q = k.buffer(nHead * d * 4), out = k.buffer(nHead * d * 4);
      const shape = { nLayer: 1, nHead, nKv, d, ctx, batch: 1, elem };
      const att = new GpuAttention(k, shape, { kind: "dense" }, q, out);
      const K = asStored(random(nKv * ctx * d, 4), f16), V = asStored(random(nKv * ctx * d, 5), f16);
      const Q = random(nHead * d, 6);
      for (let i = 0; i < Q.length; i++) Q[i] *= 4;
      k.device.queue.writeBuffer(att.layers[0].k, 0, cacheBytes(K, f16));
      k.device.queue.writeBuffer(att.layers[0].v, 0, cacheBytes(V, f16));
      k.device.queue.writeBuffer(q, 0, Q);
      k.submit(att.ops(0, 1), k.setStep({ pos0: S - 1, nTok: 1, ...att.stepFields(S - 1, 1) }));
      const got = new Float32Array(await k.read(out, 0, nHead * d * 4));
      k.throwIfFailed();
      let max = 0;
      for (let h = 0; h < nHead; h++) {
        const want = softmaxAttentionRef(Q, h * d, K, V, Math.floor(h / G) * ctx, S, d);
        for (let i = 0; i < d; i++) max = Math.max(max, Math.abs(got[h * d + i] - want[i]));
      }
      assert(max <= 1e-5, `S ${S}: max |Δ| ${max}`);
    } finally {
      k.destroy();
    }
  }
}

Deno.test("webgpu prompt attention tiled over tokens (flash) matches the chunked kernel and a scalar causal softmax", async () => {
  const gpu = await gpuOrSkip();
  if (!gpu) return;
  // Partial tiles of tokens and of positions, a batch after earlier positions, d 32 and 128 (1 and 4 tokens per
  // P·V thread); two shapes only, as llvmpipe takes ~30 s to compile each (workgroup memory zero-init).
  for (const [nHead, nKv, d, pos0, nTok] of [[4, 2, 32, 0, 37], [4, 1, 128, 5, 16]]) {
    const G = nHead / nKv, ctx = pos0 + nTok + 3;
    const k = new Kernels(gpu);
    try {
      const q = k.buffer(nTok * nHead * d * 4), out = k.buffer(nTok * nHead * d * 4);
      const shape = { nLayer: 1, nHead, nKv, d, ctx, batch: nTok };
      const run = async (flash: boolean) => {
        const att = new GpuAttention(k, shape, { kind: "dense" }, q, out, { flash });
        k.device.queue.writeBuffer(att.layers[0].k, 0, K);
        k.device.queue.writeBuffer(att.layers[0].v, 0, V);
        const ops = att.ops(0, nTok);
        assert(ops.some((o) => o.name === "attn.flash") === flash);
        k.submit(ops, k.setStep({ pos0, nTok, ...att.stepFields(pos0, nTok) }));
        return new Float32Array(await k.read(out, 0, nTok * nHead * d * 4));
      };
      const K = random(nKv * ctx * d, 7), V = random(nKv * ctx * d, 8), Q = random(nTok * nHead * d, 9);
      for (let i = 0; i < Q.length; i++) Q[i] *= 3;
      k.device.queue.writeBuffer(q, 0, Q);
      const flash = await run(true), chunked = await run(false);
      k.throwIfFailed();
      let max = 0, maxChunked = 0;
      for (let t = 0; t < nTok; t++) {
        for (let h = 0; h < nHead; h++) {
          const qo = (t * nHead + h) * d;
          const want = softmaxAttentionRef(Q, qo, K, V, Math.floor(h / G) * ctx, pos0 + t + 1, d);
          for (let i = 0; i < d; i++) {
            max = Math.max(max, Math.abs(flash[qo + i] - want[i]));
            maxChunked = Math.max(maxChunked, Math.abs(flash[qo + i] - chunked[qo + i]));
          }
        }
      }
      assert(
        max <= 1e-5 && maxChunked <= 1e-5,
        `d ${d}, ${nTok} tokens after ${pos0}: max |Δ| ${max}, vs chunked ${maxChunked}`,
      );
    } finally {
      k.destroy();
    }
  }
});
