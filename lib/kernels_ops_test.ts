import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { createRuntime, type Shard } from "./wasm_runtime.ts";
import * as K from "./kernels.ts";
import { argmaxRef, geluF16Ref, geluRef, layernormRef, rmsnormRef, ropeRef, siluRef, softmaxRef } from "./ref/ops.ts";
import { f16ToF32, f32ToF16 } from "./ref/f16.ts";
import { rng } from "./ref/random.ts";

const vec = (n: number, r: () => number, s = 4) => Float32Array.from({ length: n }, () => (r() * 2 - 1) * s);

function put(shard: Shard, x: Float32Array): number {
  const p = shard.alloc(4 * x.length);
  shard.f32(p, x.length).set(x);
  return p;
}

/** |got − want| ≤ tol·(|want| + scale) elementwise. */
function close(got: Float32Array, want: ArrayLike<number>, tol: number, what: string, scale = 1): void {
  assertEquals(got.length, want.length);
  for (let i = 0; i < got.length; i++) {
    assert(Math.abs(got[i] - want[i]) <= tol * (Math.abs(want[i]) + scale), `${what}[${i}]: ${got[i]} vs ${want[i]}`);
  }
}

Deno.test("norms, RoPE, softmax, activations, vector ops: 100 random shapes each vs reference; threads agree", async () => {
  const rt1 = await createRuntime({ threads: 1 }), rt2 = await createRuntime({ threads: 2 });
  try {
    const s = rt1.newShard(8 << 20), s2 = rt2.newShard(8 << 20);
    const r = rng(7);
    for (let it = 0; it < 100; it++) {
      const m = s.mark();
      const n = 1 + Math.floor(r() * 700), nRows = 1 + Math.floor(r() * 4);
      const x = vec(n * nRows, r), w = vec(n, r, 1), b = vec(n, r, 1);
      const xp = put(s, x), wp = put(s, w), bp = put(s, b), out = s.alloc(4 * n * nRows);

      K.rmsnorm(s, out, xp, wp, n, 1e-5, nRows);
      close(s.f32(out, n * nRows).slice(), rmsnormRef(x, w, n, 1e-5), 1e-5, "rmsnorm", 1e-3);
      K.rmsnorm(s, out, xp, 0, n, 1e-6, nRows);
      close(s.f32(out, n * nRows).slice(), rmsnormRef(x, null, n, 1e-6), 1e-5, "rmsnorm (no weight)", 1e-3);
      K.layernorm(s, out, xp, wp, bp, n, 1e-5, nRows);
      close(s.f32(out, n * nRows).slice(), layernormRef(x, w, b, n, 1e-5), 1e-5, "layernorm", 1);

      const sm = s.alloc(4 * n * nRows);
      s.f32(sm, n * nRows).set(x);
      K.softmax(s, sm, n, nRows);
      close(s.f32(sm, n * nRows).slice(), softmaxRef(x, n), 1e-5, "softmax", 1e-6);

      const up = put(s, b);
      const xs = Array.from(x.subarray(0, n));
      K.silu(s, out, xp, n);
      close(s.f32(out, n).slice(), xs.map(siluRef), 1e-5, "silu", 1e-6);
      K.gelu(s, out, xp, n);
      close(s.f32(out, n).slice(), xs.map(geluRef), 1e-5, "gelu", 1e-2);
      K.gelu(s, out, xp, n, true);
      close(s.f32(out, n).slice(), xs.map(geluF16Ref), 1e-3, "gelu (f16 table: within an f16 ulp)", 1e-6);
      K.swiglu(s, out, xp, up, n);
      close(s.f32(out, n).slice(), xs.map((v, i) => siluRef(v) * b[i]), 1e-5, "swiglu", 1e-6);
      K.geglu(s, out, xp, up, n);
      close(s.f32(out, n).slice(), xs.map((v, i) => geluRef(v) * b[i]), 1e-5, "geglu", 1e-2);
      K.geglu(s, out, xp, up, n, true);
      close(s.f32(out, n).slice(), xs.map((v, i) => Math.fround(geluF16Ref(v)) * b[i]), 1e-3, "geglu f16", 1e-6);
      K.add(s, out, xp, wp, n);
      close(s.f32(out, n).slice(), xs.map((v, i) => v + w[i]), 1e-7, "add", 1e-7);
      K.scale(s, out, xp, 0.37, n);
      close(s.f32(out, n).slice(), xs.map((v) => v * 0.37), 1e-6, "scale", 1e-7);
      const bx = put(s, x);
      K.addBias(s, bx, bp, n, nRows);
      close(s.f32(bx, n * nRows).slice(), Array.from(x, (v, i) => v + b[i % n]), 1e-7, "addBias", 1e-7);
      assertEquals(K.argmax(s, xp, n * nRows), argmaxRef(x));

      const h = s.alloc(2 * n), back = s.alloc(4 * n);
      K.f32ToF16(s, xp, h, n);
      assertEquals(Array.from(s.u16(h, n)), xs.map(f32ToF16));
      K.f16ToF32(s, h, back, n);
      assertEquals(Array.from(s.f32(back, n)), xs.map((v) => f16ToF32(f32ToF16(v))));

      // RoPE: normal / NeoX, partial rotary, optional frequency factors, positions up to 4096.
      const nHeads = 1 + Math.floor(r() * 4), headDim = 2 * (1 + Math.floor(r() * 40));
      const ropeDims = 2 * (1 + Math.floor(r() * (headDim / 2))), nTok = 1 + Math.floor(r() * 3);
      const pos0 = Math.floor(r() * 4096), neox = r() < 0.5, base = r() < 0.5 ? 10000 : 500000;
      const ff = r() < 0.3 ? Float32Array.from({ length: ropeDims / 2 }, () => 1 + r() * 8) : null;
      const q = vec(nTok * nHeads * headDim, r);
      const qp = put(s, q), ffp = ff ? put(s, ff) : 0;
      K.rope(s, qp, nTok, nHeads, headDim, ropeDims, pos0, base, neox, ffp);
      const want = q.slice();
      ropeRef(want, nTok, nHeads, headDim, ropeDims, pos0, base, neox, ff);
      close(s.f32(qp, q.length).slice(), want, 1e-5, `rope neox=${neox} dims=${ropeDims}/${headDim}`, 1);
      s.release(m);
    }

    // Every row-/element-parallel kernel: 1 and 2 threads bit-identical on sizes that do go parallel.
    const n = 4096, nRows = 24;
    const x = vec(n * nRows, r), w = vec(n, r, 1);
    const outs = [s, s2].map((sh) => {
      const xp = put(sh, x), wp = put(sh, w), out = sh.alloc(4 * n * nRows);
      const res: Float32Array[] = [];
      sh.run("rmsnorm", [out, xp, wp, n, 1e-5, nRows]);
      res.push(sh.f32(out, n * nRows).slice());
      sh.run("layernorm", [out, xp, wp, wp, n, 1e-5, nRows]);
      res.push(sh.f32(out, n * nRows).slice());
      sh.run("swiglu", [out, xp, xp, (n - 4) * nRows, n - 4]); // rows ending in a tail of four: both paths
      res.push(sh.f32(out, n * nRows).slice());
      sh.run("rope", [xp, nRows, 4, n / 4, 64, 77, 10000, 1, 0]);
      res.push(sh.f32(xp, n * nRows).slice());
      sh.run("softmax", [xp, n, nRows]);
      res.push(sh.f32(xp, n * nRows).slice());
      return res;
    });
    assertEquals(outs[1], outs[0]);
  } finally {
    rt1.close();
    rt2.close();
  }
});
