/**
 * Dense causal attention over the f32 KV cache, for decode (one query token) and prefill (a batch).
 *
 * Work unit = (query token t, KV head h): the G = nHead/nKv query heads that share KV head h are done
 * together, so each K row and each V row of that head is loaded ONCE per unit and used G times
 * (GQA); positions are walked in order, so K and V stream through memory at bandwidth. Two passes:
 * scores = q·K (all positions, all G heads) → softmax in place → out = Σ p·V.
 *
 * Units are dealt round-robin to the threads (unit u goes to thread u mod nth): every unit is computed
 * by one thread in the same order whatever nth is, so results do not depend on the thread count, and
 * the causal rows of a prefill batch (short first, long last) are spread evenly.
 *
 * Layouts (byte pointers, f32): q/out `[nTok][nHead][d]`; K/V `[nKv][nCtx][d]` row-major;
 * scores: scratch of `nth·G·nCtx` floats (thread ith uses its own `G·nCtx` block).
 */

// exp(x) for x ≤ 0 (scores minus their max), 4 lanes: Cephes expf polynomial, ~1 ulp.
const LOG2E: f32 = 1.44269504088896341;
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440e-4;

// @ts-ignore: decorator

function expv(x0: v128): v128 {
  // Below -87.3 exp underflows to denormals; clamping keeps 2^n a normal float (the value is ~1e-38,
  // negligible next to the max term's 1).
  const x = f32x4.max(x0, f32x4.splat(-87.3));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(LOG2E)));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(LN2_HI)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(LN2_LO)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  const r2 = f32x4.mul(r, r);
  p = f32x4.add(f32x4.add(f32x4.mul(p, r2), r), f32x4.splat(1.0));
  const scale = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return f32x4.mul(p, scale);
}

// @ts-ignore: decorator

function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

// @ts-ignore: decorator

function dot(a: usize, b: usize, d: i32): f32 {
  let s0 = f32x4.splat(0);
  let s1 = f32x4.splat(0);
  let i = 0;
  for (; i + 8 <= d; i += 8) {
    const o = <usize> i << 2;
    s0 = f32x4.add(s0, f32x4.mul(v128.load(a + o), v128.load(b + o)));
    s1 = f32x4.add(s1, f32x4.mul(v128.load(a + o, 16), v128.load(b + o, 16)));
  }
  for (; i < d; i += 4) {
    const o = <usize> i << 2;
    s0 = f32x4.add(s0, f32x4.mul(v128.load(a + o), v128.load(b + o)));
  }
  return hsum(f32x4.add(s0, s1));
}

/** In-place softmax of `n` floats at `s` (n ≥ 1). */
function softmaxInPlace(s: usize, n: i32): void {
  let mx: f32 = -Infinity;
  let i = 0;
  if (n >= 4) {
    let m4 = f32x4.splat(-Infinity);
    for (; i + 4 <= n; i += 4) m4 = f32x4.max(m4, v128.load(s + (<usize> i << 2)));
    mx = max(
      max(f32x4.extract_lane(m4, 0), f32x4.extract_lane(m4, 1)),
      max(f32x4.extract_lane(m4, 2), f32x4.extract_lane(m4, 3)),
    );
  }
  for (; i < n; i++) mx = max(mx, load<f32>(s + (<usize> i << 2)));
  const mv = f32x4.splat(mx);
  let sum4 = f32x4.splat(0);
  i = 0;
  for (; i + 4 <= n; i += 4) {
    const p = s + (<usize> i << 2);
    const e = expv(f32x4.sub(v128.load(p), mv));
    v128.store(p, e);
    sum4 = f32x4.add(sum4, e);
  }
  let sum = hsum(sum4);
  for (; i < n; i++) {
    const p = s + (<usize> i << 2);
    const e = f32x4.extract_lane(expv(f32x4.splat(load<f32>(p) - mx)), 0);
    store<f32>(p, e);
    sum += e;
  }
  const inv = f32x4.splat(<f32> 1.0 / sum);
  i = 0;
  for (; i + 4 <= n; i += 4) {
    const p = s + (<usize> i << 2);
    v128.store(p, f32x4.mul(v128.load(p), inv));
  }
  const invs: f32 = <f32> 1.0 / sum;
  for (; i < n; i++) {
    const p = s + (<usize> i << 2);
    store<f32>(p, load<f32>(p) * invs);
  }
}

/**
 * Causal attention for `nTok` query tokens at positions `pos0 ..` (decode: nTok = 1). Token t sees
 * positions `0 .. pos0 + t`. Query head j uses KV head `j / (nHead / nKv)` (ggml's GQA broadcast).
 * `d` must be a multiple of 4; `scale` multiplies q·k before the softmax.
 */
export function attn_dense_f32(
  q: usize,
  k: usize,
  v: usize,
  out: usize,
  scores: usize,
  nTok: i32,
  pos0: i32,
  nHead: i32,
  nKv: i32,
  d: i32,
  nCtx: i32,
  scale: f32,
  ith: i32,
  nth: i32,
): void {
  const G = nHead / nKv;
  const rowBytes = <usize> d << 2;
  const sc = scores + (<usize> ith * <usize> G * <usize> nCtx << 2);
  const nUnits = nTok * nKv;
  for (let u = ith; u < nUnits; u += nth) {
    const t = u / nKv;
    const h = u % nKv;
    const nPos = pos0 + t + 1;
    const qBase = q + (<usize> (t * nHead + h * G) * rowBytes);
    const oBase = out + (<usize> (t * nHead + h * G) * rowBytes);
    const kBase = k + <usize> h * <usize> nCtx * rowBytes;
    const vBase = v + <usize> h * <usize> nCtx * rowBytes;
    // Pass 1: scores[g][p] = scale · q_g · K[p], K row loaded once for the G heads.
    for (let p = 0; p < nPos; p++) {
      const kr = kBase + <usize> p * rowBytes;
      for (let g = 0; g < G; g++) {
        store<f32>(
          sc + ((<usize> g * <usize> nCtx + <usize> p) << 2),
          dot(qBase + <usize> g * rowBytes, kr, d) * scale,
        );
      }
    }
    for (let g = 0; g < G; g++) softmaxInPlace(sc + (<usize> g * <usize> nCtx << 2), nPos);
    // Pass 2: out_g = Σ_p scores[g][p] · V[p], V row loaded once for the G heads.
    memory.fill(oBase, 0, <usize> G * rowBytes);
    for (let p = 0; p < nPos; p++) {
      const vr = vBase + <usize> p * rowBytes;
      for (let g = 0; g < G; g++) {
        const w = f32x4.splat(load<f32>(sc + ((<usize> g * <usize> nCtx + <usize> p) << 2)));
        const o = oBase + <usize> g * rowBytes;
        for (let i = 0; i < d; i += 4) {
          const off = <usize> i << 2;
          v128.store(o + off, f32x4.add(v128.load(o + off), f32x4.mul(w, v128.load(vr + off))));
        }
      }
    }
  }
}
