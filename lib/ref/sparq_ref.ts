/**
 * Scalar TypeScript reference of SparQ Attention (sparq.md §2, §2.1) and of dense attention, for tests only.
 * One decode step, all heads, plain arrays. It mirrors `asm/sparq.ts` operation for operation up to the
 * selection (f32 rounding after every add/mul/div with `Math.fround`, the same exp polynomial, the same order of
 * SIMD lane sums), so both select the same positions bit for bit; the exact attention afterwards is computed in
 * f64 and compared with a tolerance.
 * @module
 */

const f = Math.fround;

/** Inputs of one decode step. K `[nKv][S][d]`, V `[nKv][S][dv]`, q `[nHead][d]`; the current token is S−1. */
export interface AttentionRefInput {
  q: ArrayLike<number>;
  K: ArrayLike<number>;
  V: ArrayLike<number>;
  nHead: number;
  nKv: number;
  d: number;
  dv: number;
  S: number;
}

/** SparQ sizes and switches (resolved, see lib/attention/spec.ts). */
export interface SparqRefParams {
  r: number;
  k: number;
  window: number;
  reallocate: boolean;
  /**
   * true (research code): the current token is always selected, on top of k. false: the simplified algorithm of
   * the llama.cpp fork (sparq.md §5): top-k over all positions, the current token not forced.
   */
  keepCurrent: boolean;
}

/** Output of one step: `out` `[nHead][dv]`, the selected positions per KV group (ascending), α per head. */
export interface SparqRefResult {
  out: Float64Array;
  selected: number[][];
  alpha: number[];
}

/** Dense causal attention for the current token: softmax(q·Kᵀ/√d)·V per head. */
export function denseAttentionRef(x: AttentionRefInput): Float64Array {
  const all = Array.from({ length: x.S }, (_, t) => t);
  const out = new Float64Array(x.nHead * x.dv);
  const G = x.nHead / x.nKv;
  for (let h = 0; h < x.nHead; h++) exactAttention(x, h, Math.floor(h / G), all, 1, out);
  return out;
}

/** Order-preserving u32 key of an f32 (same mapping as asm/attention_select.ts). */
export function f32Key(v: number): number {
  const b = new Float32Array([v]);
  const u = new Uint32Array(b.buffer)[0];
  return (u >>> 31 ? ~u : u | 0x80000000) >>> 0;
}

/** Indices of the m largest scores, ties to the lower index, in ascending index order. */
export function selectTopRef(scores: ArrayLike<number>, m: number): number[] {
  const idx = Array.from({ length: scores.length }, (_, i) => i);
  const keys = idx.map((i) => f32Key(scores[i]));
  idx.sort((a, b) => keys[b] - keys[a] || a - b);
  return idx.slice(0, Math.max(0, m)).sort((a, b) => a - b);
}

/** The kernel's exp: Cephes expf in f32 steps (x clamped to [-87, 88]). */
export function expRef(x0: number): number {
  const x = Math.min(Math.max(f(x0), -87), 88);
  const fx = Math.floor(f(f(x * f(1.44269504088896341)) + 0.5));
  let r = f(x - f(fx * f(0.693359375)));
  r = f(r - f(fx * f(-2.12194440e-4)));
  let p = f(f(f(1.9875691500e-4) * r) + f(1.3981999507e-3));
  p = f(f(p * r) + f(8.3334519073e-3));
  p = f(f(p * r) + f(4.1665795894e-2));
  p = f(f(p * r) + f(1.6666665459e-1));
  p = f(f(p * r) + f(5.0000001201e-1));
  p = f(p * f(r * r));
  p = f(f(p + r) + 1);
  return f(p * 2 ** fx);
}

/** Σ a[i] the way the kernel adds it: 4 lane accumulators, lanes (0+2)+(1+3), then the tail in order. */
export function laneSumRef(a: ArrayLike<number>, n: number): number {
  const lanes = [0, 0, 0, 0];
  const n4 = n & ~3;
  for (let i = 0; i < n4; i++) lanes[i & 3] = f(lanes[i & 3] + a[i]);
  let s = f(f(lanes[0] + lanes[2]) + f(lanes[1] + lanes[3]));
  for (let i = n4; i < n; i++) s = f(s + a[i]);
  return s;
}

/** One SparQ decode step (see asm/sparq.ts for the steps). */
export function sparqRef(x: AttentionRefInput, p: SparqRefParams): SparqRefResult {
  const { q, K, nHead, nKv, d, S } = x;
  const G = nHead / nKv;
  const out = new Float64Array(nHead * x.dv);
  const alpha = new Array<number>(nHead).fill(1);
  const selected: number[][] = [];
  const keep = p.keepCurrent ? 1 : 0;
  const forced = p.window + keep;
  const nSel = Math.min(p.k + keep, S);
  for (let g = 0; g < nKv; g++) {
    let sel: number[];
    const heads = Array.from({ length: G }, (_, j) => g * G + j);
    if (nSel >= S) {
      sel = Array.from({ length: S }, (_, t) => t);
    } else {
      // Step 1: top-r of Σ_heads |q|, shared by the group.
      const absq = Array.from({ length: d }, (_, i) => heads.reduce((a, h) => f(a + Math.abs(q[h * d + i])), 0));
      const i1 = selectTopRef(absq, p.r);
      // Step 2: approximate logits per head with the L1-coverage temperature.
      const e: number[][] = heads.map((h) => {
        let l1 = 0, l1sel = 0;
        for (let i = 0; i < d; i++) l1 = f(l1 + Math.abs(q[h * d + i]));
        for (const i of i1) l1sel = f(l1sel + Math.abs(q[h * d + i]));
        const tau = l1 > 0 ? f(Math.sqrt(f(f(d * l1sel) / l1))) : 1;
        const s = new Array<number>(S);
        // Same grouping as the kernel: four rows at a time, ((a0 + a1) + (a2 + a3)), then the rest one by one.
        const nr4 = i1.length & ~3;
        const term = (t: number, i: number) => f(q[h * d + i] * K[(g * S + t) * d + i]);
        for (let t = 0; t < S; t++) {
          let acc = 0;
          for (let j = 0; j < nr4; j += 4) {
            const x = f(term(t, i1[j]) + term(t, i1[j + 1])), y = f(term(t, i1[j + 2]) + term(t, i1[j + 3]));
            acc = f(acc + f(x + y));
          }
          for (let j = nr4; j < i1.length; j++) acc = f(acc + term(t, i1[j]));
          s[t] = f(acc / tau);
        }
        return s;
      });
      // Step 3: approximate softmax numerators and 1/Z.
      const invZ = heads.map(() => 1);
      if (p.reallocate || G > 1) {
        e.forEach((s, j) => {
          const m = s.reduce((a, b) => Math.max(a, b), -Infinity);
          for (let t = 0; t < S; t++) s[t] = expRef(f(s[t] - m));
          invZ[j] = f(1 / laneSumRef(s, S));
        });
      }
      // Step 4: group score; step 5: selection plus the forced newest positions.
      const nCand = S - forced;
      const score = G === 1 ? e[0].slice(0, nCand) : Array.from({ length: nCand }, (_, t) => {
        let acc = f(e[0][t] * invZ[0]);
        for (let j = 1; j < G; j++) acc = f(acc + f(e[j][t] * invZ[j]));
        return acc;
      });
      sel = selectTopRef(score, nSel - forced);
      for (let t = nCand; t < S; t++) sel.push(t);
      if (p.reallocate) heads.forEach((h, j) => alpha[h] = sel.reduce((a, t) => a + e[j][t], 0) * invZ[j]);
    }
    selected.push(sel);
    for (const h of heads) {
      exactAttention(x, h, g, sel, p.reallocate && nSel < S ? alpha[h] : 1, out);
      if (!(p.reallocate && nSel < S)) alpha[h] = 1;
    }
  }
  return { out, selected, alpha };
}

/** out[h] = a·softmax(q_h·K[sel]/√d)·V[sel] + (1−a)·mean(V) for KV head g (f64). */
function exactAttention(x: AttentionRefInput, h: number, g: number, sel: number[], a: number, out: Float64Array) {
  const { q, K, V, d, dv, S } = x;
  const s = sel.map((t) => {
    let acc = 0;
    for (let i = 0; i < d; i++) acc += q[h * d + i] * K[(g * S + t) * d + i];
    return acc / Math.sqrt(d);
  });
  const m = s.reduce((u, v) => Math.max(u, v), -Infinity);
  const w = s.map((v) => Math.exp(v - m));
  const z = w.reduce((u, v) => u + v, 0);
  for (let i = 0; i < dv; i++) {
    let y = 0;
    sel.forEach((t, j) => y += w[j] * V[(g * S + t) * dv + i]);
    let mean = 0;
    if (a < 1) { for (let t = 0; t < S; t++) mean += V[(g * S + t) * dv + i]; }
    out[h * dv + i] = a * (y / z) + (1 - a) * (mean / S);
  }
}
