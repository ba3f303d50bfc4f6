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
 * Writes to `out` (i32) the indices of the `m` largest of `keys[0..n)` (u32), ties broken by the lower index,
 * in ascending index order; returns the count (min(m, n)). `hist`: 2048 u32 of scratch;
 * `cand`: n u32 of scratch.
 */
export function attn_select_top(keys: usize, n: i32, m: i32, hist: usize, cand: usize, out: usize): i32 {
  if (m <= 0) return 0;
  if (m >= n) {
    for (let i = 0; i < n; i++) store<i32>(out + (<usize> i << 2), i);
    return n;
  }
  // Digit 1: bits 31..21 of every key.
  memory.fill(hist, 0, 2048 << 2);
  for (let i = 0; i < n; i++) {
    const h = hist + (<usize> (load<u32>(keys + (<usize> i << 2)) >>> 21) << 2);
    store<u32>(h, load<u32>(h) + 1);
  }
  let r = findBucket(hist, 2048, <u32> m);
  const b1 = <u32> (r >>> 32);
  let need = <u32> r;
  // Digit 2: bits 20..10 of the keys in bucket b1, compacted into cand.
  memory.fill(hist, 0, 2048 << 2);
  let nc = 0;
  for (let i = 0; i < n; i++) {
    const key = load<u32>(keys + (<usize> i << 2));
    if (key >>> 21 == b1) {
      store<u32>(cand + (<usize> nc << 2), key);
      nc++;
      const h = hist + (<usize> ((key >>> 10) & 0x7ff) << 2);
      store<u32>(h, load<u32>(h) + 1);
    }
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
  // `need` keys equal to t are taken (the lowest indices); everything above t is taken.
  let ties = <i32> (<u32> r);
  let c = 0;
  for (let i = 0; i < n; i++) {
    const key = load<u32>(keys + (<usize> i << 2));
    if (key > t || (key == t && ties > 0)) {
      if (key == t) ties--;
      store<i32>(out + (<usize> c << 2), i);
      c++;
    }
  }
  return c;
}
