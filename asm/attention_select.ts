// deno-fmt-ignore-file -- AssemblyScript (decorators, `<T>x` casts): deno fmt would drop `@inline`.
/**
 * Top-m selection for the sparse attention modes (SparQ's top-r components and top-k positions, the exact
 * top-k oracle, H2O's heavy hitters). A radix select over order-preserving u32 keys of the f32 scores:
 * three histogram passes (11 + 11 + 10 bits) find the m-th largest key T exactly, then one scan writes the
 * indices with key > T and, in index order, as many with key == T as still needed. The result is therefore the
 * top m by (score descending, index ascending), written in ascending index order — a deterministic set that
 * the scalar reference (`lib/ref/sparq_ref.ts`) reproduces, in O(n) instead of a sort.
 *
 * These are single-threaded helpers called from inside the attention kernels (one KV group per call), not
 * parallel kernels; being in an entry file they are also module exports, which tests may call directly.
 * `hist` scratch is 2048 u32 (the largest digit has 11 bits).
 */

/**
 * Order-preserving key of an f32: a larger float gives a larger unsigned key (negatives are bit-flipped,
 * positives get the sign bit set). NaN never occurs in the scores.
 */
// @ts-ignore: decorator
@inline 
function f32Key(x: f32): u32 {
  const u = reinterpret<u32>(x);
  return u ^ (<u32> (<i32> u >> 31) | 0x80000000);
}

/** keys[i] = f32Key(src[i]) for i < n (f32 → u32), 4 lanes at a time. */
export function attn_f32_keys(src: usize, n: i32, keys: usize): void {
  const top = i32x4.splat(0x80000000);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const u = v128.load(src + (<usize> i << 2));
    v128.store(keys + (<usize> i << 2), v128.xor(u, v128.or(i32x4.shr_s(u, 31), top)));
  }
  for (; i < n; i++) store<u32>(keys + (<usize> i << 2), f32Key(load<f32>(src + (<usize> i << 2))));
}

/** Finds, from the top bucket down, the bucket holding the `need`-th largest; returns (bucket << 32) | remaining need. */
function findBucket(hist: usize, buckets: i32, need: u32): u64 {
  let b = buckets - 1;
  for (; b > 0; b--) {
    const c = load<u32>(hist + (<usize> b << 2));
    if (c >= need) break;
    need -= c;
  }
  return (<u64> b << 32) | <u64> need;
}

/**
 * The m-th largest of `keys[0..n)` (1 ≤ m ≤ n) by a radix select: three histogram passes (11 + 11 + 10 bits).
 * Returns (key << 32) | how many keys equal to it belong to the top m. `hist`: 2048 u32; `cand`: n u32 of scratch.
 */
function mthLargest(keys: usize, n: i32, m: i32, hist: usize, cand: usize): u64 {
  // Digit 1: bits 31..21 of every key.
  memory.fill(hist, 0, 2048 << 2);
  for (let i = 0; i < n; i++) {
    const h = hist + (<usize> (load<u32>(keys + (<usize> i << 2)) >>> 21) << 2);
    store<u32>(h, load<u32>(h) + 1);
  }
  let r = findBucket(hist, 2048, <u32> m);
  const b1 = <u32> (r >>> 32);
  let need = <u32> r;
  // Digit 2: bits 20..10 of the keys in bucket b1, compacted into cand (branch-free: always store, advance on match).
  memory.fill(hist, 0, 2048 << 2);
  let nc = 0;
  for (let i = 0; i < n; i++) {
    const key = load<u32>(keys + (<usize> i << 2));
    store<u32>(cand + (<usize> nc << 2), key);
    nc += <i32> (key >>> 21 == b1);
  }
  for (let i = 0; i < nc; i++) {
    const h = hist + (<usize> ((load<u32>(cand + (<usize> i << 2)) >>> 10) & 0x7ff) << 2);
    store<u32>(h, load<u32>(h) + 1);
  }
  r = findBucket(hist, 2048, need);
  const b2 = <u32> (r >>> 32);
  need = <u32> r;
  // Digit 3: bits 9..0 of the candidates that also match b2.
  memory.fill(hist, 0, 1024 << 2);
  for (let i = 0; i < nc; i++) {
    const key = load<u32>(cand + (<usize> i << 2));
    if (((key >>> 10) & 0x7ff) == b2) {
      const h = hist + (<usize> (key & 0x3ff) << 2);
      store<u32>(h, load<u32>(h) + 1);
    }
  }
  r = findBucket(hist, 1024, need);
  const t = (b1 << 21) | (b2 << 10) | <u32> (r >>> 32);
  return (<u64> t << 32) | (r & 0xffffffff);
}

/**
 * Writes `idx[j]` for the j < n whose key is in the top m (threshold key `t`, the first `ties` keys equal to t),
 * keeping their order; `idx` = null means the identity. Returns the count. `out` may alias `idx` (j only grows).
 */
function writeTop(keys: usize, idx: usize, n: i32, t: u32, ties: i32, out: usize): i32 {
  let c = 0;
  for (let i = 0; i < n; i++) {
    const key = load<u32>(keys + (<usize> i << 2));
    if (key > t || (key == t && ties > 0)) {
      if (key == t) ties--;
      store<i32>(out + (<usize> c << 2), idx ? load<i32>(idx + (<usize> i << 2)) : i);
      c++;
    }
  }
  return c;
}

/** Sampling stride of the prefilter; it runs when n ≥ PREFILTER_MIN_N and m ≤ n/8. */
const SAMPLE_STEP: i32 = 16;
const PREFILTER_MIN_N: i32 = 2048;

/**
 * Writes to `out` (i32) the indices of the `m` largest of `keys[0..n)` (u32), ties broken by the lower index,
 * in ascending index order; returns the count (min(m, n)). `hist`: 2048 u32 of scratch; `cand`: n u32 of
 * scratch; `out`: n i32 (the prefilter uses all of it as scratch).
 *
 * Long inputs with a small m (SparQ's positions: m ≈ S/16) are prefiltered: the top ~1.5·m/16 + 8 of every
 * 16th key give a threshold T0 that about 1.5·m keys reach; those keys (with their indices, in order) are
 * compacted in one branch-free pass and the radix select runs on them alone. When fewer than m keys reach T0,
 * or more than n/4 (heavy ties), the full radix select runs instead. Either way the result is the same set.
 */
export function attn_select_top(keys: usize, n: i32, m: i32, hist: usize, cand: usize, out: usize): i32 {
  if (m <= 0) return 0;
  if (m >= n) {
    for (let i = 0; i < n; i++) store<i32>(out + (<usize> i << 2), i);
    return n;
  }
  if (n >= PREFILTER_MIN_N && m <= n >> 3) {
    // Sample: every SAMPLE_STEP-th key into cand[0..ns); the sample's radix scratch is cand[ns..2·ns).
    const ns = n / SAMPLE_STEP;
    for (let j = 0; j < ns; j++) {
      store<u32>(cand + (<usize> j << 2), load<u32>(keys + (<usize> (j * SAMPLE_STEP) << 2)));
    }
    const ms = min(ns, (m * 3) / (2 * SAMPLE_STEP) + 8);
    const t0 = <u32> (mthLargest(cand, ns, ms, hist, cand + (<usize> ns << 2)) >>> 32);
    // Compact the keys ≥ t0 into cand and their indices into out (branch-free), at most n/4 of them.
    const limit = n >> 2;
    let c = 0;
    for (let i = 0; i < n; i++) {
      const key = load<u32>(keys + (<usize> i << 2));
      store<u32>(cand + (<usize> c << 2), key);
      store<i32>(out + (<usize> c << 2), i);
      c += <i32> (key >= t0);
      if (c > limit) break;
    }
    if (c >= m && c <= limit) {
      const r = mthLargest(cand, c, m, hist, cand + (<usize> c << 2));
      return writeTop(cand, out, c, <u32> (r >>> 32), <i32> (<u32> r), out);
    }
  }
  const r = mthLargest(keys, n, m, hist, cand);
  return writeTop(keys, 0, n, <u32> (r >>> 32), <i32> (<u32> r), out);
}
