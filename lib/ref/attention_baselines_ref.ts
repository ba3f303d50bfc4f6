/**
 * Scalar references of the baseline attention modes (tests only), in f64 on plain arrays: StreamingLLM (sinks +
 * window), the exact top-k oracle, and H2O over a whole sequence (its state depends on every earlier step).
 * @module
 */
import type { AttentionRefInput } from "./sparq_ref.ts";

/** softmax(q_h·K[sel]/√d)·V[sel] for query head h of KV group g, plus the weights. */
function attend(x: AttentionRefInput, h: number, g: number, sel: number[]): { y: number[]; w: number[] } {
  const { q, K, V, d, dv, S } = x;
  const s = sel.map((t) => {
    let a = 0;
    for (let i = 0; i < d; i++) a += q[h * d + i] * K[(g * S + t) * d + i];
    return a / Math.sqrt(d);
  });
  const m = s.reduce((a, b) => Math.max(a, b), -Infinity);
  const e = s.map((v) => Math.exp(v - m));
  const z = e.reduce((a, b) => a + b, 0);
  const w = e.map((v) => v / z);
  const y = Array.from({ length: dv }, (_, i) => sel.reduce((a, t, j) => a + w[j] * V[(g * S + t) * dv + i], 0));
  return { y, w };
}

/** Output of every head attending to `selOf(g)` in its group. */
function attendAll(x: AttentionRefInput, selOf: (g: number) => number[]): Float64Array {
  const G = x.nHead / x.nKv;
  const out = new Float64Array(x.nHead * x.dv);
  for (let h = 0; h < x.nHead; h++) out.set(attend(x, h, Math.floor(h / G), selOf(Math.floor(h / G))).y, h * x.dv);
  return out;
}

/** StreamingLLM: attend to positions [0, sinks) and the `window` newest (current included). */
export function streamingRef(x: AttentionRefInput, sinks: number, window: number): Float64Array {
  const sel: number[] = [];
  for (let t = 0; t < x.S; t++) if (t < sinks || t >= x.S - window) sel.push(t);
  return attendAll(x, () => sel);
}

/**
 * Exact top-k oracle: the current token plus the k positions with the best exact score (one head per group: its
 * logit; GQA: the sum over the group's heads of the exact softmax probabilities). Returns output and selections.
 */
export function topkRef(x: AttentionRefInput, k: number): { out: Float64Array; selected: number[][] } {
  const G = x.nHead / x.nKv;
  const all = Array.from({ length: x.S }, (_, t) => t);
  const selected = Array.from({ length: x.nKv }, (_, g) => {
    if (k + 1 >= x.S) return all;
    const score = new Array<number>(x.S - 1).fill(0);
    for (let h = g * G; h < (g + 1) * G; h++) {
      const { w } = attend(x, h, g, all);
      // One head: its logits order the same way as its probabilities.
      for (let t = 0; t < x.S - 1; t++) score[t] += w[t];
    }
    const order = all.slice(0, x.S - 1).sort((a, b) => score[b] - score[a] || a - b);
    return [...order.slice(0, k).sort((a, b) => a - b), x.S - 1];
  });
  return { out: attendAll(x, (g) => selected[g]), selected };
}

/** A whole sequence for H2O: per position t, q `[nHead][d]`, k `[nKv][d]`, v `[nKv][dv]`. */
export interface SequenceRefInput {
  q: number[][];
  k: number[][];
  v: number[][];
  nHead: number;
  nKv: number;
  d: number;
  dv: number;
}

/**
 * H2O over a sequence: positions < `prefix` are prefill (full causal attention, accumulating weights), later ones
 * decode steps with budget `budget(S)` and protected window `window(S)`: evict (lowest accumulated weight outside
 * the window, ties to the oldest) down to the budget, add the current token, attend, accumulate (summed over the
 * group's heads). Returns each position's output `[nHead·dv]`.
 */
export function h2oRef(
  seq: SequenceRefInput,
  prefix: number,
  budget: (S: number) => number,
  window: (S: number) => number,
): Float64Array[] {
  const { nHead, nKv, d, dv } = seq;
  const G = nHead / nKv;
  const T = seq.q.length;
  const kept: number[][] = Array.from({ length: nKv }, () => []);
  const acc: number[][] = Array.from({ length: nKv }, () => new Array<number>(T).fill(0));
  const outs: Float64Array[] = [];
  for (let pos = 0; pos < T; pos++) {
    const S = pos + 1;
    const x: AttentionRefInput = {
      q: seq.q[pos],
      K: Array.from({ length: nKv }, (_, g) => Array.from({ length: S }, (_, t) => seq.k[t].slice(g * d, (g + 1) * d)))
        .flat(2),
      V: Array.from(
        { length: nKv },
        (_, g) => Array.from({ length: S }, (_, t) => seq.v[t].slice(g * dv, (g + 1) * dv)),
      )
        .flat(2),
      nHead,
      nKv,
      d,
      dv,
      S,
    };
    const out = new Float64Array(nHead * dv);
    for (let g = 0; g < nKv; g++) {
      const ks = kept[g];
      if (pos >= prefix) {
        const protectFrom = pos - window(S);
        while (ks.length > budget(S)) {
          let best = -1;
          for (let j = 0; j < ks.length && ks[j] < protectFrom; j++) {
            if (best < 0 || acc[g][ks[j]] < acc[g][ks[best]]) best = j;
          }
          ks.splice(Math.max(best, 0), 1);
        }
      }
      ks.push(pos);
      for (let h = g * G; h < (g + 1) * G; h++) {
        const { y, w } = attend(x, h, g, ks);
        out.set(y, h * dv);
        ks.forEach((t, j) => acc[g][t] += w[j]);
      }
    }
    outs.push(out);
  }
  return outs;
}
