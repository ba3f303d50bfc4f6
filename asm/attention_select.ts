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
@inline export function f32Key(x: f32): u32 {
  const u = reinterpret<u32>(x);
  return u ^ (<u32> (<i32> u >> 31) | 0x80000000);
}

/**
 * The sign bit in four lanes, in memory: V8 rebuilds a `v128.const` at every use inside a loop (several
 * instructions), while a load is one.
 */
const SIGN4 = memory.data<u32>([0x80000000, 0x80000000, 0x80000000, 0x80000000]);

/** {@link f32Key} of four lanes. */
// @ts-ignore: decorator
@inline export function f32KeysV(u: v128): v128 {
  return v128.xor(u, v128.or(i32x4.shr_s(u, 31), v128.load(SIGN4)));
}

/** keys[i] = f32Key(src[i]) for i < n (f32 → u32), 4 lanes at a time. */
export function attn_f32_keys(src: usize, n: i32, keys: usize): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(keys + (<usize> i << 2), f32KeysV(v128.load(src + (<usize> i << 2))));
  for (; i < n; i++) store<u32>(keys + (<usize> i << 2), f32Key(load<f32>(src + (<usize> i << 2))));
}

/**
 * Finds, from bucket `top` down, the bucket holding the `need`-th largest (every bucket above `top` is empty);
 * returns (bucket << 32) | remaining need.
 */
function findBucket(hist: usize, top: u32, need: u32): u64 {
  let b = top;
  for (; b > 0; b--) {
    const c = load<u32>(hist + (<usize> b << 2));
    if (c >= need) break;
    need -= c;
  }
  return (<u64> b << 32) | <u64> need;
}

/**
 * The m-th largest of `keys[0..n)` (1 ≤ m ≤ n) by a radix select: three histogram passes (11 + 11 + 10 bits), each
 * also finding its largest digit, where the bucket scan starts (the scan runs over a few buckets, not 2048).
 * Returns (key << 32) | how many keys equal to it belong to the top m. `hist`: 2048 u32; `cand`: n u32 of scratch.
 */
function mthLargest(keys: usize, n: i32, m: i32, hist: usize, cand: usize): u64 {
  // Digit 1: bits 31..21 of every key.
  memory.fill(hist, 0, 2048 << 2);
  let top: u32 = 0;
  for (let i = 0; i < n; i++) {
    const key = load<u32>(keys + (<usize> i << 2));
    const h = hist + (<usize> (key >>> 21) << 2);
    store<u32>(h, load<u32>(h) + 1);
    top = max(top, key);
  }
  let r = findBucket(hist, top >>> 21, <u32> m);
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
  top = 0;
  for (let i = 0; i < nc; i++) {
    const d = (load<u32>(cand + (<usize> i << 2)) >>> 10) & 0x7ff;
    const h = hist + (<usize> d << 2);
    store<u32>(h, load<u32>(h) + 1);
    top = max(top, d);
  }
  r = findBucket(hist, top, need);
  const b2 = <u32> (r >>> 32);
  need = <u32> r;
  // Digit 3: bits 9..0 of the candidates that also match b2.
  memory.fill(hist, 0, 1024 << 2);
  top = 0;
  for (let i = 0; i < nc; i++) {
    const key = load<u32>(cand + (<usize> i << 2));
    if (((key >>> 10) & 0x7ff) == b2) {
      const d = key & 0x3ff;
      const h = hist + (<usize> d << 2);
      store<u32>(h, load<u32>(h) + 1);
      top = max(top, d);
    }
  }
  r = findBucket(hist, top, need);
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
 * Shuffles that move the lanes set in a 4-bit mask to the front, in order (entry = mask · 16 bytes): the
 * byte indices of i8x16.swizzle.
 */
const COMPACT_LUT = memory.data<u8>([
  0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, // 0000
  0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, // 0001
  4, 5, 6, 7, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, // 0010
  0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 0, 1, 2, 3, // 0011
  8, 9, 10, 11, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, // 0100
  0, 1, 2, 3, 8, 9, 10, 11, 0, 1, 2, 3, 0, 1, 2, 3, // 0101
  4, 5, 6, 7, 8, 9, 10, 11, 0, 1, 2, 3, 0, 1, 2, 3, // 0110
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 1, 2, 3, // 0111
  12, 13, 14, 15, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, // 1000
  0, 1, 2, 3, 12, 13, 14, 15, 0, 1, 2, 3, 0, 1, 2, 3, // 1001
  4, 5, 6, 7, 12, 13, 14, 15, 0, 1, 2, 3, 0, 1, 2, 3, // 1010
  0, 1, 2, 3, 4, 5, 6, 7, 12, 13, 14, 15, 0, 1, 2, 3, // 1011
  8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 0, 1, 2, 3, // 1100
  0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, // 1101
  4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, // 1110
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, // 1111
]);

const FOURS = memory.data<u32>([4, 4, 4, 4]);

/**
 * Compacts the keys ≥ `t` into `cand` and their indices into `idx`, in order, four keys per step without branches
 * on the data (the matching lanes shuffled to the front, the pointer advanced by their count; the shuffle indices
 * are all in range, where relaxed_swizzle is one pshufb and deterministic). Stops once more than `limit` have
 * matched; returns the count. Writes up to three slots past it (`limit + 4` ≤ the buffers).
 */
function compactAtLeast(keys: usize, n: i32, t: u32, limit: i32, cand: usize, idx: usize): i32 {
  const tv = i32x4.splat(t);
  let iv = i32x4(0, 1, 2, 3);
  const four = v128.load(FOURS); // (a v128.const would be rebuilt in the loop)
  let c = 0;
  let i = 0;
  for (; i + 4 <= n && c <= limit; i += 4) {
    const k = v128.load(keys + (<usize> i << 2));
    const mask = i32x4.bitmask(i32x4.ge_u(k, tv));
    const sh = v128.load(COMPACT_LUT + (<usize> mask << 4));
    const ck = ASC_FEATURE_RELAXED_SIMD ? i8x16.relaxed_swizzle(k, sh) : i8x16.swizzle(k, sh);
    const ci = ASC_FEATURE_RELAXED_SIMD ? i8x16.relaxed_swizzle(iv, sh) : i8x16.swizzle(iv, sh);
    v128.store(cand + (<usize> c << 2), ck);
    v128.store(idx + (<usize> c << 2), ci);
    c += <i32> popcnt(mask);
    iv = i32x4.add(iv, four);
  }
  for (; i < n && c <= limit; i++) {
    const key = load<u32>(keys + (<usize> i << 2));
    store<u32>(cand + (<usize> c << 2), key);
    store<i32>(idx + (<usize> c << 2), i);
    c += <i32> (key >= t);
  }
  return c;
}

/**
 * Writes to `out` (i32) the indices of the `m` largest of `keys[0..n)` (u32), ties broken by the lower index,
 * in ascending index order; returns the count (min(m, n)). `hist`: 2048 u32 of scratch; `cand`: n u32 of
 * scratch; `out`: n i32 (the prefilter uses all of it as scratch).
 *
 * Long inputs with a small m (SparQ's positions: m ≈ S/16) are prefiltered: the top ~1.5·m/16 + 8 of every
 * 16th key give a threshold T0 that about 1.5·m keys reach; those keys (with their indices, in order) are
 * compacted four per step by a SIMD shuffle and the radix select runs on them alone. When fewer than m keys reach
 * T0, or more than n/4 (heavy ties), the full radix select runs instead. Either way the result is the same set.
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
    const limit = n >> 2;
    const c = compactAtLeast(keys, n, t0, limit, cand, out);
    if (c >= m && c <= limit) {
      const r = mthLargest(cand, c, m, hist, cand + (<usize> c << 2));
      return writeTop(cand, out, c, <u32> (r >>> 32), <i32> (<u32> r), out);
    }
  }
  const r = mthLargest(keys, n, m, hist, cand);
  return writeTop(keys, 0, n, <u32> (r >>> 32), <i32> (<u32> r), out);
}
