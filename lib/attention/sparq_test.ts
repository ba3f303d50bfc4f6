import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { denseAttentionRef, selectTopRef, sparqRef, type SparqRefParams } from "../ref/sparq_ref.ts";
import { roundF16 } from "../ref/f16.ts";
import { sparqGroupScratchBytes } from "./sparq.ts";
import { type KernelModule, loadKernelModule, randn, rng } from "./test_kernels.ts";

const mod: KernelModule | undefined = await loadKernelModule("sparq_decode");

interface Case {
  nHead: number;
  nKv: number;
  d: number;
  dv: number;
  S: number;
  nCtx: number;
  p: SparqRefParams;
}

/** Random cache with a heavy-tailed q (a few large components, as sparq.md §1 observes). */
function makeInputs(c: Case, seed: number) {
  const next = rng(seed);
  const K = new Float32Array(c.nKv * c.S * c.d).map(() => randn(next));
  const V = new Float32Array(c.nKv * c.S * c.dv).map(() => randn(next));
  const q = new Float32Array(c.nHead * c.d).map(() => randn(next) * (next() < 0.1 ? 4 : 1));
  return { q, K, V, nHead: c.nHead, nKv: c.nKv, d: c.d, dv: c.dv, S: c.S };
}

/** The inputs with K and V rounded to f16 (what an f16 cache holds): the reference fed these must match the f16 kernel. */
function roundKv<X extends { K: ArrayLike<number>; V: ArrayLike<number> }>(x: X): X {
  return { ...x, K: Float32Array.from(x.K, roundF16), V: Float32Array.from(x.V, roundF16) };
}

/**
 * Runs the kernel on `nth` simulated threads (ith = 0..nth-1 in turn); returns out and the selected sets. `f16`:
 * K, V and Kt are stored as f16 (rounded to nearest even) and `sparq_decode_f16` runs; vsum sums the rounded V.
 */
function runKernel(m: KernelModule, c: Case, x: ReturnType<typeof makeInputs>, nth: number, f16 = false) {
  const { nHead, nKv, d, dv, S, nCtx } = c;
  m.reset();
  const f32 = (n: number) => m.alloc(n * 4);
  const el = (n: number) => m.alloc(n * (f16 ? 2 : 4));
  const view = (p: number, n: number) => f16 ? new Float16Array(m.f32(0, 0).buffer, p, n) : m.f32(p, n);
  const q = f32(nHead * d), out = f32(nHead * dv);
  const kc = el(nKv * nCtx * d), vc = el(nKv * nCtx * dv), kt = el(nKv * d * nCtx), vsum = f32(nKv * dv);
  const G = nHead / nKv;
  const stride = sparqGroupScratchBytes(nCtx, G, d);
  const scratch = m.alloc(nKv * stride);
  m.f32(q, nHead * d).set(x.q);
  const K = view(kc, nKv * nCtx * d), Kt = view(kt, nKv * d * nCtx), V = view(vc, nKv * nCtx * dv);
  const vs = m.f32(vsum, nKv * dv);
  for (let g = 0; g < nKv; g++) {
    for (let t = 0; t < S; t++) {
      for (let i = 0; i < d; i++) {
        K[(g * nCtx + t) * d + i] = x.K[(g * S + t) * d + i];
        Kt[(g * d + i) * nCtx + t] = x.K[(g * S + t) * d + i];
      }
      for (let i = 0; i < dv; i++) {
        V[(g * nCtx + t) * dv + i] = x.V[(g * S + t) * dv + i];
        vs[g * dv + i] += V[(g * nCtx + t) * dv + i];
      }
    }
  }
  const { r, k, window, reallocate, keepCurrent } = c.p;
  for (let ith = 0; ith < nth; ith++) {
    m.exports[f16 ? "sparq_decode_f16" : "sparq_decode"](
      q,
      out,
      kc,
      vc,
      kt,
      vsum,
      nCtx,
      S,
      nHead,
      nKv,
      d,
      dv,
      r,
      k,
      window,
      reallocate ? 1 : 0,
      keepCurrent ? 1 : 0,
      scratch,
      stride,
      ith,
      nth,
    );
  }
  const nSel = Math.min(k + (keepCurrent ? 1 : 0), S);
  const nc4 = (nCtx + 3) & ~3;
  const selected = Array.from(
    { length: nKv },
    (_, g) => Array.from(m.i32(scratch + g * stride + (2 * G + 2) * nc4 * 4, nSel)),
  );
  return { out: m.f32(out, nHead * dv).slice(), selected };
}

function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) {
  assertEquals(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    ok(Math.abs(a[i] - b[i]) <= tol * (1 + Math.abs(b[i])), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
  }
}

const base = { reallocate: true, keepCurrent: true };

/** Head layouts the kernel tests sweep: MHA, GQA, one KV head, odd head sizes (tails), dv ≠ d. */
const KERNEL_SHAPES = [
  { nHead: 4, nKv: 4, d: 32, dv: 32 },
  { nHead: 8, nKv: 2, d: 16, dv: 16 },
  { nHead: 3, nKv: 1, d: 7, dv: 5 },
  { nHead: 6, nKv: 3, d: 13, dv: 13 },
];

Deno.test("sparq ref: the llama.cpp fork's 4-position vector (sparq.md §2.4)", () => {
  const x = {
    q: [1.0, -0.5],
    K: [1, 0, 4, -10, 2, 5, -3, 10],
    V: [1, 2, 3, 4, 5, 6, 7, 8],
    nHead: 1,
    nKv: 1,
    d: 2,
    dv: 2,
    S: 4,
  };
  const p = { r: 1, k: 2, window: 0, reallocate: false, keepCurrent: false };
  const res = sparqRef(x, p);
  assertEquals(res.selected, [[1, 2]]);
  const s0 = (4 + 5) / Math.SQRT2, s1 = (2 - 2.5) / Math.SQRT2;
  const w0 = 1 / (1 + Math.exp(s1 - s0)), w1 = 1 - w0;
  assertClose(res.out, [w0 * 3 + w1 * 5, w0 * 4 + w1 * 6], 1e-12, "out");
  if (!mod) return;
  const k = runKernel(mod, { nHead: 1, nKv: 1, d: 2, dv: 2, S: 4, nCtx: 4, p }, {
    ...x,
    q: new Float32Array(x.q),
    K: new Float32Array(x.K),
    V: new Float32Array(x.V),
  }, 1);
  assertEquals(k.selected, [[1, 2]]);
  assertClose(k.out, res.out, 1e-6, "kernel out");
});

Deno.test("sparq: the torch dense vector, and r = d, k ≥ S equals dense", () => {
  const x = {
    q: new Float32Array([0.361, -0.286]),
    K: new Float32Array([-0.394, 0.243, -1.383, -2.313, -0.317, -0.866]),
    V: new Float32Array([1.748, -0.276, -0.975, 0.479, -2.365, -0.805]),
    nHead: 1,
    nKv: 1,
    d: 2,
    dv: 2,
    S: 3,
  };
  assertClose(denseAttentionRef(x), [-0.710, -0.190], 2e-3, "dense ref");
  const p = { ...base, r: 2, k: 3, window: 0 };
  assertClose(sparqRef(x, p).out, denseAttentionRef(x), 1e-12, "sparq ref");
  if (!mod) return;
  assertClose(
    runKernel(mod, { nHead: 1, nKv: 1, d: 2, dv: 2, S: 3, nCtx: 3, p }, x, 1).out,
    denseAttentionRef(x),
    1e-5,
    "kernel",
  );
  // Larger random GQA case through the kernel.
  const c = { nHead: 4, nKv: 2, d: 16, dv: 16, S: 37, nCtx: 40, p: { ...base, r: 16, k: 40, window: 10 } };
  const y = makeInputs(c, 5);
  assertClose(runKernel(mod, c, y, 2).out, denseAttentionRef(y), 1e-5, "kernel GQA dense");
});

Deno.test("sparq kernel equals the scalar reference (MHA, GQA, window, reallocation, odd sizes), any thread count", () => {
  if (!mod) return;
  let seed = 1;
  for (const sh of KERNEL_SHAPES) {
    for (const S of [9, 64, 203, 1031]) {
      for (
        const [reallocate, window, keepCurrent] of [[true, -1, true], [false, 0, true], [true, 0, false], [
          false,
          3,
          true,
        ]] as const
      ) {
        const k = Math.max(1, Math.floor(S / 5));
        const r = Math.max(1, Math.floor(sh.d / 4));
        const p = { r, k, window: window < 0 ? Math.floor(k / 4) : Math.min(window, k), reallocate, keepCurrent };
        const c = { ...sh, S, nCtx: S + (seed % 3), p };
        const x = makeInputs(c, seed++);
        const ref = sparqRef(x, p);
        const one = runKernel(mod, c, x, 1);
        const two = runKernel(mod, c, x, 2);
        const what = `${JSON.stringify(c)}`;
        assertEquals(one.selected, ref.selected, `selection ${what}`);
        assertClose(one.out, ref.out, 1e-5, what);
        // Threads split whole KV groups: bit-identical results.
        assertEquals(two.out, one.out, `threads ${what}`);
        const nSel = Math.min(k + (keepCurrent ? 1 : 0), S);
        for (const sel of one.selected) {
          assertEquals(new Set(sel).size, nSel);
          if (keepCurrent) ok(sel.includes(S - 1), "current token selected");
          for (let t = S - p.window; t < S; t++) ok(sel.includes(t), "window selected");
        }
      }
    }
  }
});

Deno.test("sparq kernel, f16 cache: equals the reference fed the f16-rounded K/V, any thread count; r = d, k ≥ S is dense", () => {
  if (!mod) return;
  let seed = 500;
  for (const sh of KERNEL_SHAPES) {
    for (const S of [9, 203, 1031]) {
      for (const [reallocate, keepCurrent] of [[true, true], [false, false]] as const) {
        const k = Math.max(1, Math.floor(S / 5));
        const r = Math.max(1, Math.floor(sh.d / 4));
        const p = { r, k, window: reallocate ? Math.floor(k / 4) : 0, reallocate, keepCurrent };
        const c = { ...sh, S, nCtx: S + (seed % 3), p };
        const x = makeInputs(c, seed++);
        const xr = roundKv(x);
        const ref = sparqRef(xr, p);
        const one = runKernel(mod, c, x, 1, true);
        const two = runKernel(mod, c, x, 2, true);
        const what = `f16 ${JSON.stringify(c)}`;
        assertEquals(one.selected, ref.selected, `selection ${what}`);
        assertClose(one.out, ref.out, 1e-5, what);
        assertEquals(two.out, one.out, `threads ${what}`);
        // Fed the unrounded values the f32 kernel gives a different (if close) answer: the f16 path is really taken.
        const full = runKernel(mod, c, x, 1);
        ok(full.out.some((v, i) => v !== one.out[i]), `f16 differs from f32 ${what}`);
      }
    }
    // r = d, k ≥ S: dense attention on the rounded values.
    const c = { ...sh, S: 37, nCtx: 40, p: { ...base, r: sh.d, k: 40, window: 10 } };
    const x = makeInputs(c, seed++);
    assertClose(runKernel(mod, c, x, 2, true).out, denseAttentionRef(roundKv(x)), 1e-5, `f16 dense ${sh.d}`);
  }
});

Deno.test("sparq: GQA heads share one selection, groups differ", () => {
  const c = { nHead: 8, nKv: 2, d: 16, dv: 16, S: 300, nCtx: 300, p: { ...base, r: 4, k: 30, window: 7 } };
  const x = makeInputs(c, 77);
  const ref = sparqRef(x, c.p);
  ok(JSON.stringify(ref.selected[0]) !== JSON.stringify(ref.selected[1]));
  // Re-run group 0's heads as MHA-style separate groups: each head alone would select differently than the group.
  const alone = sparqRef({
    ...x,
    nHead: 1,
    nKv: 1,
    q: x.q.slice(0, 16),
    K: x.K.slice(0, 300 * 16),
    V: x.V.slice(0, 300 * 16),
  }, c.p);
  ok(JSON.stringify(alone.selected[0]) !== JSON.stringify(ref.selected[0]), "group selection uses all heads");
  for (const a of ref.alpha) ok(a > 0 && a <= 1 + 1e-6);
});

Deno.test("sparq kernel: several accumulation tiles (S beyond one tile for a group of 8 heads)", () => {
  if (!mod) return;
  // The kernel's tile is 32768/G positions: 4096 for G = 8, so S = 4500 takes two tiles.
  for (const r of [3, 8]) {
    const c = { nHead: 8, nKv: 1, d: 8, dv: 8, S: 4500, nCtx: 4501, p: { ...base, r, k: 300, window: 75 } };
    const x = makeInputs(c, 100 + r);
    const ref = sparqRef(x, c.p);
    const one = runKernel(mod, c, x, 1);
    assertEquals(one.selected, ref.selected);
    assertClose(one.out, ref.out, 1e-5, `r=${r}`);
    // f16 cache: heads-inner conversion of the Kt rows across tiles.
    const refH = sparqRef(roundKv(x), c.p);
    const half = runKernel(mod, c, x, 2, true);
    assertEquals(half.selected, refH.selected);
    assertClose(half.out, refH.out, 1e-5, `f16 r=${r}`);
  }
});

Deno.test("attn_select_top: prefiltered (long n, small m) and full radix paths equal the reference, with ties", () => {
  if (!mod) return;
  const next = rng(4242);
  const cases: [number, number, string][] = [];
  for (const n of [2048, 4093, 8192, 20000]) {
    for (const m of [1, 7, Math.floor(n / 16), Math.floor(n / 8), Math.floor(n / 3)]) {
      for (const kind of ["normal", "ties", "flat", "sorted"]) cases.push([n, m, kind]);
    }
  }
  for (const [n, m, kind] of cases) {
    mod.reset();
    const scores = new Float32Array(n).map((_, i) =>
      kind === "normal" ? randn(next) : kind === "ties"
        ? Math.round(randn(next) * 4) / 4 // few distinct values: many ties at the threshold
        : kind === "flat"
        ? (next() < 0.01 ? 1 : 0) // almost all equal: the prefilter must fall back
        : i / n // ascending: the top m are the last m
    );
    const src = mod.alloc(n * 4), keys = mod.alloc(n * 4), hist = mod.alloc(2048 * 4);
    const cand = mod.alloc(n * 4), out = mod.alloc(n * 4);
    mod.f32(src, n).set(scores);
    mod.exports.attn_f32_keys(src, n, keys);
    const c = mod.exports.attn_select_top(keys, n, m, hist, cand, out);
    assertEquals(Array.from(mod.i32(out, c)), selectTopRef(scores, m), `n=${n} m=${m} ${kind}`);
  }
});
