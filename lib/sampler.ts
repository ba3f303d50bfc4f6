/**
 * Token sampling in llama.cpp's default chain order: repetition penalty → top-k → top-p → min-p →
 * temperature → draw from the softmax with a seeded RNG. `temp <= 0` is greedy (argmax after the
 * penalty), as in llama.cpp.
 *
 * The RNG is xoshiro128** seeded through splitmix32: runs are reproducible for a given `--seed`, but
 * the draws are not llama.cpp's (its std::mt19937 + discrete_distribution), so sampled text differs
 * from llama.cpp's even with the same seed; greedy output is identical.
 * @module
 */
import { SparqError } from "./errors.ts";

/** Sampling settings; llama.cpp's defaults are in {@link DEFAULT_SAMPLER}. */
export interface SamplerOptions {
  /** Temperature; 0 (or below) = greedy. */
  temp: number;
  /** Keep the k most likely tokens; 0 = off. */
  topK: number;
  /** Keep the smallest set of tokens whose probability sum reaches p; 1 = off. */
  topP: number;
  /** Drop tokens with probability below minP × the top token's; 0 = off. */
  minP: number;
  /** Divide positive logits (multiply negative ones) of recent tokens by this; 1 = off. */
  repeatPenalty: number;
  /** How many recent tokens the penalty looks at; 0 = off, -1 = the whole history. */
  repeatLastN: number;
  /** RNG seed. */
  seed: number;
}

/** llama.cpp's defaults (common_params_sampling). */
export const DEFAULT_SAMPLER: SamplerOptions = {
  temp: 0.8,
  topK: 40,
  topP: 0.95,
  minP: 0.05,
  repeatPenalty: 1.0,
  repeatLastN: 64,
  seed: 0,
};

/** Throws a SparqError naming the flag when a setting is out of range. */
export function validateSamplerOptions(o: SamplerOptions): void {
  const bad = (flag: string, v: number, want: string) => {
    throw new SparqError(`${flag}: ${v} is out of range (expected ${want})`);
  };
  if (!Number.isFinite(o.temp) || o.temp < 0) bad("--temp", o.temp, "a number >= 0");
  if (!Number.isInteger(o.topK) || o.topK < 0) bad("--top-k", o.topK, "an integer >= 0");
  if (!(o.topP > 0 && o.topP <= 1)) bad("--top-p", o.topP, "a number in (0, 1]");
  if (!(o.minP >= 0 && o.minP <= 1)) bad("--min-p", o.minP, "a number in [0, 1]");
  if (!(Number.isFinite(o.repeatPenalty) && o.repeatPenalty > 0)) {
    bad("--repeat-penalty", o.repeatPenalty, "a number > 0");
  }
  if (!Number.isInteger(o.repeatLastN) || o.repeatLastN < -1) bad("--repeat-last-n", o.repeatLastN, "an integer >= -1");
  if (!Number.isInteger(o.seed) || o.seed < 0 || o.seed > 0xffffffff) {
    bad("--seed", o.seed, "an integer in 0..4294967295");
  }
}

/** How many of the last `historyLength` tokens the repetition penalty looks at (`--repeat-last-n`, -1: all). */
export function penaltyWindow(o: SamplerOptions, historyLength: number): number {
  return o.repeatLastN === -1 ? historyLength : Math.min(o.repeatLastN, historyLength);
}

/** Index of the largest value (first one on ties, like llama.cpp's greedy sampler). */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** A seeded sampler; `sample` may be called once per generated token. */
export class Sampler {
  readonly options: SamplerOptions;
  #rng: () => number;
  #scratch: Float32Array;

  constructor(options: SamplerOptions, nVocab: number) {
    validateSamplerOptions(options);
    this.options = { ...options };
    this.#rng = xoshiro128ss(options.seed);
    this.#scratch = new Float32Array(nVocab);
  }

  /**
   * The next uniform draw in [0, 1) of this sampler's RNG: `sample` takes one per token when
   * `temp > 0`; a sampler running elsewhere (the GPU's) takes them from here in the same order.
   */
  nextDraw(): number {
    return this.#rng();
  }

  /** Picks the next token from `logits` (not modified); `history` = ids so far (prompt + generated). */
  sample(logits: Float32Array, history: readonly number[]): number {
    const o = this.options;
    const l = this.#scratch.length === logits.length
      ? this.#scratch
      : (this.#scratch = new Float32Array(logits.length));
    l.set(logits);
    // 1. Repetition penalty on the distinct ids of the last repeatLastN tokens.
    const lastN = penaltyWindow(o, history.length);
    if (o.repeatPenalty !== 1 && lastN > 0) {
      const seen = new Set(history.slice(history.length - lastN));
      for (const id of seen) {
        if (id < 0 || id >= l.length) continue;
        l[id] = l[id] > 0 ? l[id] / o.repeatPenalty : l[id] * o.repeatPenalty;
      }
    }
    if (o.temp <= 0) return argmax(l);
    // 2. top-k: candidates sorted by logit, descending.
    let cand = topKIndices(l, o.topK > 0 ? Math.min(o.topK, l.length) : l.length);
    // 3. top-p over the softmax of the candidates (at temperature 1, as llama.cpp's chain does).
    if (o.topP < 1) {
      const p = softmaxOf(l, cand);
      let cum = 0;
      let keep = cand.length;
      for (let i = 0; i < cand.length; i++) {
        cum += p[i];
        if (cum >= o.topP) {
          keep = i + 1;
          break;
        }
      }
      cand = cand.subarray(0, keep);
    }
    // 4. min-p: keep logits >= max + log(minP) (equivalent to p >= minP · pmax).
    if (o.minP > 0) {
      const threshold = l[cand[0]] + Math.log(o.minP);
      let keep = 1;
      while (keep < cand.length && l[cand[keep]] >= threshold) keep++;
      cand = cand.subarray(0, keep);
    }
    // 5. Temperature, then draw.
    const p = softmaxOf(l, cand, o.temp);
    let r = this.nextDraw();
    for (let i = 0; i < cand.length; i++) {
      r -= p[i];
      if (r < 0) return cand[i];
    }
    return cand[cand.length - 1];
  }
}

/** Indices of the k largest values of `l`, largest first (ties: lower index first). */
function topKIndices(l: Float32Array, k: number): Int32Array {
  const before = (a: number, b: number) => l[a] > l[b] || (l[a] === l[b] && a < b);
  if (k === l.length) {
    const all = Int32Array.from({ length: l.length }, (_, i) => i);
    return all.sort((a, b) => (before(a, b) ? -1 : before(b, a) ? 1 : 0));
  }
  // Min-heap of the best k seen so far: O(n log k) instead of sorting the whole vocabulary.
  const heap = new Int32Array(k);
  let size = 0;
  const down = (i: number) => {
    for (;;) {
      const a = 2 * i + 1, b = a + 1;
      let m = i;
      if (a < size && before(heap[m], heap[a])) m = a;
      if (b < size && before(heap[m], heap[b])) m = b;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m], heap[i]];
      i = m;
    }
  };
  for (let id = 0; id < l.length; id++) {
    if (size < k) {
      let i = size++;
      heap[i] = id;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!before(heap[parent], heap[i])) break;
        [heap[i], heap[parent]] = [heap[parent], heap[i]];
        i = parent;
      }
    } else if (before(id, heap[0])) {
      heap[0] = id;
      down(0);
    }
  }
  return heap.sort((a, b) => (before(a, b) ? -1 : before(b, a) ? 1 : 0));
}

/** Softmax of `l[cand[i]] / temp` in candidate order (cand[0] holds the largest logit). */
function softmaxOf(l: Float32Array, cand: Int32Array, temp = 1): Float64Array {
  const p = new Float64Array(cand.length);
  const mx = l[cand[0]] / temp;
  let sum = 0;
  for (let i = 0; i < cand.length; i++) sum += p[i] = Math.exp(l[cand[i]] / temp - mx);
  for (let i = 0; i < cand.length; i++) p[i] /= sum;
  return p;
}

/** xoshiro128** with splitmix32 seeding; returns floats in [0, 1). */
function xoshiro128ss(seed: number): () => number {
  let x = seed >>> 0;
  const splitmix = () => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  const s = [splitmix(), splitmix(), splitmix(), splitmix()];
  const rotl = (v: number, k: number) => (v << k) | (v >>> (32 - k));
  return () => {
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result / 4294967296;
  };
}
