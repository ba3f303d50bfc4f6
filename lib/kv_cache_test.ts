import { deepStrictEqual as assertEquals, ok, throws } from "node:assert/strict";
import { type CacheShard, type CacheType, KvCache, parseCacheType } from "./kv_cache.ts";
import { SparqError } from "./errors.ts";
import { f32ToF16, roundF16 } from "./ref/f16.ts";
import { loadModel } from "./model.ts";
import { sharedPath } from "../tests/testing.ts";
import { createRuntime } from "./wasm_runtime.ts";
import { parseAttentionSpec } from "./attention/spec.ts";

const assertAlmostEquals = (a: number, b: number, tol: number) => ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);
const assertThrows = (f: () => unknown, cls: new (...a: never[]) => Error, msg?: string) =>
  throws(f, (e: unknown) => e instanceof cls && (!msg || (e as Error).message.includes(msg)));

/** A shard stand-in over a plain ArrayBuffer: a bump allocator and f32 views. */
export function fakeShard(bytes: number): CacheShard {
  const buf = new ArrayBuffer(bytes);
  let top = 64;
  return {
    alloc(n: number, align = 64) {
      top = Math.ceil(top / align) * align;
      const p = top;
      top += n;
      if (top > bytes) throw new Error("fake shard out of memory");
      return p;
    },
    f32: (ptr: number, n: number) => new Float32Array(buf, ptr, n),
  };
}

const config = { nLayer: 2, nHeadKv: 2, headDim: 3, headDimV: 4 };

Deno.test("KvCache stores K, Kt, V and the running V sum", () => {
  const shard = fakeShard(1 << 16);
  const nCtx = 5;
  const c = new KvCache({ config, nCtx, shardOf: () => shard, transposedK: true, vSum: true });
  assertEquals(c.bytesPerPosition, 2 * 2 * (3 * 2 + 4) * 4);
  const kv = (pos: number, h: number, i: number) => 100 * pos + 10 * h + i;
  const src = (pos0: number, n: number, d: number, sign: number) => {
    const p = shard.alloc(n * 2 * d * 4);
    const a = shard.f32(p, n * 2 * d);
    for (let t = 0; t < n; t++) {
      for (let h = 0; h < 2; h++) {
        for (let i = 0; i < d; i++) {
          a[(t * 2 + h) * d + i] = sign * kv(pos0 + t, h, i);
        }
      }
    }
    return p;
  };
  c.append(1, 0, 3, src(0, 3, 3, 1), src(0, 3, 4, -1));
  c.length = 3;
  c.append(1, 3, 1, src(3, 1, 3, 1), src(3, 1, 4, -1));
  c.length = 4;
  const K = shard.f32(c.k(1), 2 * nCtx * 3), Kt = shard.f32(c.kt(1), 2 * 3 * nCtx);
  const V = shard.f32(c.v(1), 2 * nCtx * 4), vs = shard.f32(c.vsum(1), 2 * 4);
  for (let pos = 0; pos < 4; pos++) {
    for (let h = 0; h < 2; h++) {
      for (let i = 0; i < 3; i++) {
        assertEquals(K[(h * nCtx + pos) * 3 + i], kv(pos, h, i));
        assertEquals(Kt[(h * 3 + i) * nCtx + pos], kv(pos, h, i));
      }
      for (let i = 0; i < 4; i++) assertEquals(V[(h * nCtx + pos) * 4 + i], -kv(pos, h, i));
    }
  }
  const sum = (h: number, i: number, n: number) => {
    let s = 0;
    for (let p = 0; p < n; p++) s -= kv(p, h, i);
    return s;
  };
  for (let h = 0; h < 2; h++) for (let i = 0; i < 4; i++) assertAlmostEquals(vs[h * 4 + i], sum(h, i, 4), 1e-3);
  // Layer 0 untouched.
  assertEquals(Array.from(shard.f32(c.vsum(0), 8)), new Array(8).fill(0));
  // Overwrite position 3 with different V, then truncate to 2: vsum follows.
  c.append(1, 3, 1, src(3, 1, 3, 1), src(3, 1, 4, -1));
  for (let h = 0; h < 2; h++) for (let i = 0; i < 4; i++) assertAlmostEquals(vs[h * 4 + i], sum(h, i, 4), 1e-3);
  c.length = 2;
  for (let h = 0; h < 2; h++) for (let i = 0; i < 4; i++) assertAlmostEquals(vs[h * 4 + i], sum(h, i, 2), 1e-3);
  c.clear();
  assertEquals(c.length, 0);
  assertEquals(Array.from(vs), new Array(8).fill(0));
});

Deno.test("KvCache without Kt/vsum costs dense memory and rejects bad input", () => {
  const shard = fakeShard(1 << 16);
  const c = new KvCache({ config, nCtx: 4, shardOf: () => shard, transposedK: false, vSum: false });
  assertEquals(c.kt(0), 0);
  assertEquals(c.vsum(0), 0);
  assertEquals(c.bytesPerPosition, 2 * 2 * (3 + 4) * 4);
  assertEquals(c.totalBytes, 4 * c.bytesPerPosition);
  assertThrows(() => c.append(0, 1, 1, 0, 0), SparqError); // gap: nothing stored yet
  assertThrows(() => (c.length = 5), SparqError);
  assertThrows(
    () =>
      new KvCache({
        config,
        nCtx: 4,
        shardOf: () => shard,
        transposedK: false,
        vSum: false,
        cacheType: "q8_0" as unknown as CacheType,
      }),
    SparqError,
    "q8_0",
  );
});

Deno.test("KvCache f16: K, Kt and V hold the values rounded to nearest even, vsum their f32 sum, half the bytes", () => {
  const shard = fakeShard(1 << 16);
  const nCtx = 5;
  const c = new KvCache({ config, nCtx, shardOf: () => shard, transposedK: true, vSum: true, cacheType: "f16" });
  assertEquals(c.elemBytes, 2);
  assertEquals(c.kernelSuffix, "_f16");
  assertEquals(c.bytesPerPosition, 2 * 2 * (3 * 2 + 4) * 2);
  assertEquals(c.totalBytes, nCtx * c.bytesPerPosition + 2 * 2 * 4 * 4); // + the f32 vsum of each layer
  const spec = parseAttentionSpec("sparq");
  assertEquals(KvCache.bytesPerLayer(config, 1000, spec, "f16") - 4 * 64 - 2 * 4 * 4, 1000 * 2 * 10 * 2);
  assertEquals(KvCache.bytesPerLayer(config, 1000, spec) - 4 * 64 - 2 * 4 * 4, 1000 * 2 * 10 * 4);
  // Values that need rounding: ties to even, subnormal halves, overflow to inf, negative zero.
  const vals = [1 + 2 ** -11, 1 + 3 * 2 ** -11, 3.14159, -(2 ** -20), 70000, -0, 1e-8, 65519, 0.1, -123.456];
  const n = 4;
  const ks = shard.alloc(n * 2 * 3 * 4), vs = shard.alloc(n * 2 * 4 * 4);
  const K = shard.f32(ks, n * 6), V = shard.f32(vs, n * 8);
  for (let i = 0; i < K.length; i++) K[i] = vals[i % vals.length] * (i % 3 === 0 ? 1 : -1.5);
  for (let i = 0; i < V.length; i++) V[i] = vals[(i + 3) % vals.length] * (i % 2 ? 0.25 : 1) * (i === 9 ? 0 : 1);
  // Keep V finite so vsum is a number.
  for (let i = 0; i < V.length; i++) if (!Number.isFinite(roundF16(V[i]))) V[i] = 1000;
  c.append(0, 0, n, ks, vs);
  c.length = n;
  const u16 = (p: number, len: number) => new Uint16Array(shard.f32(0, 0).buffer, p, len);
  const Kc = u16(c.k(0), 2 * nCtx * 3), Ktc = u16(c.kt(0), 2 * 3 * nCtx), Vc = u16(c.v(0), 2 * nCtx * 4);
  const vsum = shard.f32(c.vsum(0), 8);
  for (let t = 0; t < n; t++) {
    for (let h = 0; h < 2; h++) {
      for (let i = 0; i < 3; i++) {
        const bits = f32ToF16(K[(t * 2 + h) * 3 + i]);
        assertEquals(Kc[(h * nCtx + t) * 3 + i], bits);
        assertEquals(Ktc[(h * 3 + i) * nCtx + t], bits);
      }
      for (let i = 0; i < 4; i++) assertEquals(Vc[(h * nCtx + t) * 4 + i], f32ToF16(V[(t * 2 + h) * 4 + i]));
    }
  }
  for (let h = 0; h < 2; h++) {
    for (let i = 0; i < 4; i++) {
      let s = 0;
      for (let t = 0; t < n; t++) s += roundF16(V[(t * 2 + h) * 4 + i]);
      ok(vsum[h * 4 + i] === Math.fround(s), `vsum ${vsum[h * 4 + i]} vs ${s}`);
    }
  }
  c.length = 1;
  for (let h = 0; h < 2; h++) {
    for (let i = 0; i < 4; i++) ok(vsum[h * 4 + i] === Math.fround(roundF16(V[h * 4 + i]))); // (−0 == 0)
  }
});

Deno.test("parseCacheType: f32 default, f16, anything else one line naming the flag", () => {
  assertEquals(parseCacheType(undefined), "f32");
  assertEquals(parseCacheType("f16"), "f16");
  assertThrows(() => parseCacheType("q8_0"), SparqError, "--cache-type q8_0: unknown KV cache type (types: f32, f16)");
});

/**
 * An f16 cache on fixture models (F32 weights): prompt logits (dense batch) and 16 decode steps (dense, and SparQ
 * through its own kernel) against the same model with an f32 cache. Measured max |Δlogit| (logits up to ~11):
 * dense 2.5e-3 (llama-mha prompt), 1.4e-3 (decode); llama3-gqa 2.1e-3 / 1.3e-3 — the f16 rounding of K and V
 * (relative 2^-11 ≈ 4.9e-4 per element) carried through the layers. Bound: 1e-2 (4× the measurement). SparQ
 * selects a discrete set from approximate scores: where two candidates are within the f16 rounding of each other
 * the selection can flip (llama-mha: max |Δ| 6.9e-2 on one step; llama3-gqa 1.5e-3), so sparse modes get the
 * looser 0.25 and must agree on the argmax wherever the f32 top-2 gap exceeds twice the row's difference.
 */
const FIXTURE_F16_TOL: Record<string, number> = { dense: 1e-2, sparse: 0.25 };

for (const name of ["llama-mha", "llama3-gqa"]) {
  const path = sharedPath(`fixtures/models/${name}.gguf`);
  Deno.test({
    name: `f16 KV cache stays close to the f32 cache: ${name}`,
    ignore: path === undefined,
    async fn() {
      const runtime = await createRuntime({ threads: 1 });
      try {
        const ids = Array.from({ length: 48 }, (_, i) => (i * 37 + 11) % 200 + 3);
        const run = async (cacheType: "f32" | "f16", attention: string) => {
          const m = await loadModel(path!, { ctx: 96, runtime, cacheType, attention });
          try {
            const rows = [m.evaluate(ids.slice(0, 32), { allLogits: true }).slice()];
            for (let i = 32; i < ids.length; i++) rows.push(m.evaluate([ids[i]]).slice());
            return rows;
          } finally {
            m.close();
          }
        };
        for (const attention of ["dense", "sparq:r=8,k=12,window=4"]) {
          const a = await run("f32", attention), b = await run("f16", attention);
          let maxPrompt = 0, maxDecode = 0, scale = 0;
          const nVocab = a[1].length;
          for (let r = 0; r < a.length; r++) {
            for (let row = 0; row < a[r].length / nVocab; row++) {
              const x = a[r].subarray(row * nVocab, (row + 1) * nVocab),
                y = b[r].subarray(row * nVocab, (row + 1) * nVocab);
              let rowMax = 0, best = 0, second = -Infinity, bi = 0, bj = 0;
              for (let i = 0; i < nVocab; i++) {
                rowMax = Math.max(rowMax, Math.abs(x[i] - y[i]));
                scale = Math.max(scale, Math.abs(x[i]));
                if (x[i] > x[bi]) bi = i;
                if (y[i] > y[bj]) bj = i;
              }
              for (let i = 0; i < nVocab; i++) if (i !== bi) second = Math.max(second, x[i]);
              best = x[bi];
              ok(bi === bj || best - second <= 2 * rowMax, `${name} ${attention}: argmax differs at row ${r}/${row}`);
              if (r === 0) maxPrompt = Math.max(maxPrompt, rowMax);
              else maxDecode = Math.max(maxDecode, rowMax);
            }
          }
          console.log(
            `  ${name} ${attention}: f16 vs f32 cache max|Δlogit| prompt ${maxPrompt.toExponential(2)}, decode ${
              maxDecode.toExponential(2)
            } (max |logit| ${scale.toFixed(2)})`,
          );
          ok(maxPrompt > 0 || maxDecode > 0, "the f16 cache changes something");
          const tol = FIXTURE_F16_TOL[attention === "dense" ? "dense" : "sparse"];
          ok(maxPrompt <= tol && maxDecode <= tol, `${name} ${attention}: above ${tol}`);
        }
      } finally {
        runtime.close();
      }
    },
  });
}
