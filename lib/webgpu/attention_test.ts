import { ok as assert } from "node:assert/strict";
import { sparqRef } from "../ref/sparq_ref.ts";
import { parseAttentionSpec, sparqParams } from "../attention/spec.ts";
import { GpuAttention } from "./attention.ts";
import { Kernels } from "./kernels.ts";
import { gpuOrSkip } from "./test_util.ts";

/** Deterministic uniform values in [-1, 1). */
function random(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

for (const reallocate of [true, false]) {
  Deno.test(`webgpu SparQ decode (GQA, reallocate ${reallocate}) matches the scalar reference`, async () => {
    const gpu = await gpuOrSkip();
    if (!gpu) return;
    const nHead = 4, nKv = 2, d = 16, ctx = 64, S = 50;
    const spec = parseAttentionSpec(`sparq:r=4,k=8,window=2,reallocate=${reallocate ? "on" : "off"}`);
    if (spec.kind !== "sparq") throw new Error("spec");
    const k = new Kernels(gpu);
    try {
      const q = k.buffer(nHead * d * 4), out = k.buffer(nHead * d * 4);
      const att = new GpuAttention(k, { nLayer: 1, nHead, nKv, d, ctx, batch: 1 }, spec, q, out);
      const K = random(nKv * S * d, 1), V = random(nKv * S * d, 2), Q = random(nHead * d, 3);
      for (let i = 0; i < Q.length; i++) Q[i] *= 3 * (i % 5 === 0 ? 4 : 1); // heavy-tailed q like a real model
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
      const c = att.layers[0];
      k.device.queue.writeBuffer(c.k, 0, Kc);
      k.device.queue.writeBuffer(c.v, 0, Vc);
      k.device.queue.writeBuffer(c.kt!, 0, Kt);
      k.device.queue.writeBuffer(c.vsum!, 0, vsum);
      k.device.queue.writeBuffer(q, 0, Q);
      const s = k.setStep({ pos0: S - 1, nTok: 1, ...att.stepFields(S - 1, 1) });
      const enc = k.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      k.encode(pass, att.ops(0, 1), s);
      pass.end();
      k.device.queue.submit([enc.finish()]);
      const got = new Float32Array(await k.read(out, 0, nHead * d * 4));
      k.throwIfFailed();
      const p = sparqParams(spec, d, S);
      const want = sparqRef({ q: Q, K, V, nHead, nKv, d, dv: d, S }, { ...p, reallocate, keepCurrent: true }).out;
      let max = 0;
      for (let i = 0; i < got.length; i++) max = Math.max(max, Math.abs(got[i] - want[i]));
      assert(max <= 1e-4, `max |Δ| ${max}`);
    } finally {
      k.destroy();
    }
  });
}

Deno.test("webgpu dense decode over many chunks and a partial last block matches a scalar softmax", async () => {
  const gpu = await gpuOrSkip();
  if (!gpu) return;
  const nHead = 4, nKv = 2, d = 16, G = nHead / nKv;
  for (const S of [7, 1000, 3001]) {
    const ctx = S + 1;
    const k = new Kernels(gpu);
    try {
      const q = k.buffer(nHead * d * 4), out = k.buffer(nHead * d * 4);
      const att = new GpuAttention(k, { nLayer: 1, nHead, nKv, d, ctx, batch: 1 }, { kind: "dense" }, q, out);
      const K = random(nKv * ctx * d, 4), V = random(nKv * ctx * d, 5), Q = random(nHead * d, 6);
      for (let i = 0; i < Q.length; i++) Q[i] *= 4;
      k.device.queue.writeBuffer(att.layers[0].k, 0, K);
      k.device.queue.writeBuffer(att.layers[0].v, 0, V);
      k.device.queue.writeBuffer(q, 0, Q);
      const s = k.setStep({ pos0: S - 1, nTok: 1, ...att.stepFields(S - 1, 1) });
      const enc = k.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      k.encode(pass, att.ops(0, 1), s);
      pass.end();
      k.device.queue.submit([enc.finish()]);
      const got = new Float32Array(await k.read(out, 0, nHead * d * 4));
      k.throwIfFailed();
      let max = 0;
      for (let h = 0; h < nHead; h++) {
        const kv = Math.floor(h / G);
        const sc = Array.from({ length: S }, (_, t) => {
          let a = 0;
          for (let i = 0; i < d; i++) a += Q[h * d + i] * K[(kv * ctx + t) * d + i];
          return a / Math.sqrt(d);
        });
        const m = Math.max(...sc);
        const e = sc.map((x) => Math.exp(x - m));
        const l = e.reduce((a, b) => a + b, 0);
        for (let i = 0; i < d; i++) {
          let y = 0;
          for (let t = 0; t < S; t++) y += e[t] * V[(kv * ctx + t) * d + i];
          max = Math.max(max, Math.abs(got[h * d + i] - y / l));
        }
      }
      assert(max <= 1e-5, `S ${S}: max |Δ| ${max}`);
    } finally {
      k.destroy();
    }
  }
});
