import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { createRuntime } from "./wasm_runtime.ts";
import { SparqError } from "./errors.ts";
import { matvec } from "./kernels.ts";
import { GgmlType } from "./ggml_types.ts";

/** Runs `fn`, which must throw an instance of `cls`; returns the error. */
function assertThrows<E extends Error>(fn: () => unknown, cls: new (...a: never[]) => E): E {
  try {
    fn();
  } catch (e) {
    assert(e instanceof cls, `expected ${cls.name}, got ${e}`);
    return e;
  }
  throw new Error(`expected ${cls.name} to be thrown`);
}

Deno.test("runtime: f32 matvec on 1 and 2 threads, bit-identical, over several shards", async () => {
  const rows = 301, cols = 517;
  const W = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 0.37));
  const X = Float32Array.from({ length: cols }, (_, i) => Math.cos(i * 0.11));
  const results: Float32Array[] = [];
  for (const threads of [1, 2, 3]) {
    const rt = await createRuntime({ threads, maxShardBytes: 1 << 20 });
    try {
      assertThrows(() => rt.newShard(2 << 20), SparqError);
      const shards = [rt.newShard(1 << 20), rt.newShard(1 << 20)];
      for (const s of shards) {
        const w = s.alloc(rows * cols * 4), x = s.alloc(cols * 4), y = s.alloc(rows * 4);
        s.f32(w, W.length).set(W);
        s.f32(x, cols).set(X);
        matvec(s, GgmlType.F32, w, rows, cols, x, y);
        results.push(s.f32(y, rows).slice());
      }
      assertEquals(rt.timers.get("matmul_f32")?.calls, 2);
      rt.resetTimers();
      assertEquals(rt.timers.size, 0);
    } finally {
      rt.close();
    }
  }
  for (const r of results) assertEquals(r, results[0]);
  for (let r = 0; r < rows; r++) {
    let a = 0, m = 0;
    for (let c = 0; c < cols; c++) {
      a += W[r * cols + c] * X[c];
      m += Math.abs(W[r * cols + c] * X[c]);
    }
    assert(Math.abs(a - results[0][r]) <= 1e-6 * m, `row ${r}: ${results[0][r]} vs ${a}`);
  }
});

Deno.test("runtime: allocator alignment, mark/release, out-of-memory names the figures", async () => {
  const rt = await createRuntime({ threads: 1 });
  try {
    const s = rt.newShard(256 << 10);
    const a = s.alloc(3, 1);
    const b = s.alloc(10);
    assertEquals(b % 64, 0);
    assert(b > a);
    const m = s.mark();
    const c = s.alloc(1000);
    s.release(m);
    assertEquals(s.alloc(1000), c);
    const e = assertThrows(() => s.alloc(1 << 20), SparqError);
    assert(/shard 0: need 1048576 bytes/.test(e.message), e.message);
    assertEquals(s.u8(b, 4).length, 4);
  } finally {
    rt.close();
  }
});

Deno.test("runtime: a trapping kernel on a worker is an error, and the pool still works", async () => {
  const rt = await createRuntime({ threads: 2 });
  try {
    const s = rt.newShard(1 << 16);
    const y = s.alloc(64);
    // W beyond the end of memory: both threads trap.
    let threw = false;
    try {
      s.run("matmul_f32", [0x7ff00000, 0, y, 8, 4, 1]);
    } catch {
      threw = true;
    }
    assert(threw);
    s.run("matmul_f32", [0, 0, y, 8, 4, 1]);
  } finally {
    rt.close();
  }
});
