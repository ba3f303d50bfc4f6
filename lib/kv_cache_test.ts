import { deepStrictEqual as assertEquals, ok, throws } from "node:assert/strict";
import { type CacheShard, KvCache } from "./kv_cache.ts";
import { SparqError } from "./errors.ts";

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
    () => new KvCache({ config, nCtx: 4, shardOf: () => shard, transposedK: false, vSum: false, cacheType: "f16" }),
    SparqError,
    "f16",
  );
});
