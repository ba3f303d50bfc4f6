import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { createRuntime, type Runtime, type Shard } from "./wasm_runtime.ts";
import * as K from "./kernels.ts";
import { GgmlType, ggmlTypeInfo, ggmlTypeName } from "./ggml_types.ts";
import { decodeRowRef, dotRef, prepareActRef, quantizeQ8KRef, quantizeQ8Ref } from "./ref/matmul.ts";
import { randomWeights, rng } from "./ref/random.ts";

const MATMUL_TYPES: GgmlType[] = [
  GgmlType.F32,
  GgmlType.F16,
  GgmlType.BF16,
  GgmlType.Q4_0,
  GgmlType.Q4_1,
  GgmlType.Q5_0,
  GgmlType.Q5_1,
  GgmlType.Q8_0,
  GgmlType.Q4_K,
  GgmlType.Q5_K,
  GgmlType.Q6_K,
];

function randomVec(n: number, r: () => number, scale = 1): Float32Array {
  // Occasional exact zeros and one large outlier per vector exercise the quantizers' edge cases.
  return Float32Array.from({ length: n }, (_, i) => i === 7 ? 9 * scale : r() < 0.05 ? 0 : (r() * 2 - 1) * scale);
}

/** Copies `data` into a fresh allocation of `shard` and returns its pointer. */
function put(shard: Shard, data: Uint8Array | Float32Array): number {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const p = shard.alloc(bytes.length);
  shard.u8(p, bytes.length).set(bytes);
  return p;
}

async function withRuntimes(fn: (rts: Runtime[]) => void | Promise<void>): Promise<void> {
  const rts = [
    await createRuntime({ threads: 1 }),
    await createRuntime({ threads: 2 }),
    await createRuntime({ threads: 2, noRelaxed: true }),
  ];
  try {
    await fn(rts);
  } finally {
    for (const rt of rts) rt.close();
  }
}

Deno.test("quantize_q8 / quantize_q8k activations equal the reference exactly", async () => {
  await withRuntimes(([rt]) => {
    const s = rt.newShard(8 << 20);
    const r = rng(1);
    for (let it = 0; it < 100; it++) {
      const cols = 256 * (1 + Math.floor(r() * 3)), nTok = 1 + Math.floor(r() * 2);
      const x = randomVec(cols * nTok, r, 10 ** (r() * 4 - 2));
      const m = s.mark();
      const xp = put(s, x);
      const q8 = s.alloc(K.q8Stride(cols) * nTok), q8k = s.alloc(K.q8kStride(cols) * nTok);
      s.run("quantize_q8", [xp, q8, cols, nTok]);
      s.run("quantize_q8k", [xp, q8k, cols, nTok]);
      for (let t = 0; t < nTok; t++) {
        const xt = x.subarray(t * cols, (t + 1) * cols);
        const a = quantizeQ8Ref(xt), nb = cols / 32;
        const o = q8 + t * K.q8Stride(cols);
        assertEquals(new Int8Array(s.u8(o, cols).slice().buffer), a.qs);
        assertEquals(s.f32(o + cols, nb).slice(), a.d);
        assertEquals(s.f32(o + cols + 4 * nb, nb).slice(), a.s);
        assertEquals(s.i32(o + cols + 8 * nb, nb).slice(), a.sum);
        const k = quantizeQ8KRef(xt), ok = q8k + t * K.q8kStride(cols);
        assertEquals(new Int8Array(s.u8(ok, cols).slice().buffer), k.qs);
        assertEquals(s.f32(ok + cols, cols / 256).slice(), k.d);
        assertEquals(s.i32(ok + cols + cols / 64, cols / 16).slice(), k.bsums);
      }
      s.release(m);
    }
  });
});

/**
 * Weight types whose dot products follow ggml's fused multiply-adds in the relaxed build only (asm/matmul.ts
 * dotFloatGemm/dotFloatVec for F32, dotQ32Min, dotQ32Lanes, dotQK45, dotQ5_K, dotQ6_K).
 */
const FUSED_TYPES = new Set([
  GgmlType.F32,
  GgmlType.Q4_1,
  GgmlType.Q5_1,
  GgmlType.Q5_0,
  GgmlType.Q8_0,
  GgmlType.Q4_K,
  GgmlType.Q5_K,
  GgmlType.Q6_K,
]);

for (const type of MATMUL_TYPES) {
  Deno.test(`matmul ${ggmlTypeName(type)}: 100 random shapes vs reference; 1/2 threads, SIMD/relaxed, matvec/matmul identical`, async () => {
    await withRuntimes((rts) => {
      const shards = rts.map((rt) => rt.newShard(16 << 20));
      const info = ggmlTypeInfo(type)!;
      const r = rng(type + 100);
      const float = info.blockSize === 1;
      for (let it = 0; it < 100; it++) {
        const rows = 1 + Math.floor(r() * 12);
        const cols = float
          ? 1 + Math.floor(r() * 300)
          : info.blockSize * (1 + Math.floor(r() * (info.blockSize > 32 ? 3 : 8)));
        const nTok = 1 + Math.floor(r() * 6); // 4–6 take the four-token tiles and their remainder
        const wb = randomWeights(type, rows, cols, r);
        const x = randomVec(cols * nTok, r);
        // Float weights in a batch take llamafile's GEMM order (as llama.cpp does), one token ggml_vec_dot's: the
        // matvec then differs from the matmul in the last bits and is checked against the reference instead.
        // Likewise Q4_K, whose repacked GEMM takes four tokens at a time in its own order.
        const sameOrder = !(float && nTok > 1 && cols % 8 === 0) && !(type === GgmlType.Q4_K && nTok >= 4);
        const outs: Float32Array[] = [], vecs: Float32Array[] = [];
        for (const s of shards) {
          const m = s.mark();
          const w = put(s, wb), xp = put(s, x), y = s.alloc(4 * rows * nTok), yv = s.alloc(4 * rows);
          K.matmul(s, type, w, rows, cols, xp, nTok, y);
          outs.push(s.f32(y, rows * nTok).slice());
          const vec = new Float32Array(rows * nTok);
          for (let t = 0; t < nTok; t++) {
            K.matvec(s, type, w, rows, cols, xp + 4 * cols * t, yv);
            vec.set(s.f32(yv, rows), t * rows);
            if (sameOrder) assertEquals(s.f32(yv, rows).slice(), outs.at(-1)!.slice(t * rows, (t + 1) * rows));
          }
          vecs.push(vec);
          if (float && nTok >= 4 && cols % 8 === 0) {
            // The four-token GEMM tile equals the one-token GEMM path (a batch of two takes it token by token).
            const x2 = s.alloc(8 * cols), y2 = s.alloc(8 * rows);
            for (let t = 0; t < nTok; t++) {
              s.f32(x2, 2 * cols).set(x.subarray(t * cols, (t + 1) * cols));
              s.f32(x2, 2 * cols).set(x.subarray(t * cols, (t + 1) * cols), cols);
              K.matmul(s, type, w, rows, cols, x2, 2, y2);
              assertEquals(s.f32(y2, rows).slice(), outs.at(-1)!.slice(t * rows, (t + 1) * rows));
            }
          }
          s.release(m);
        }
        assertEquals(outs[1], outs[0]);
        assertEquals(vecs[1], vecs[0]);
        // FUSED_TYPES follow ggml's fused multiply-adds (bit-exact with llama.cpp in the relaxed build); the plain-SIMD
        // fallback has no fused operation, so it may differ in the last bits (checked against the reference below).
        if (!FUSED_TYPES.has(type)) assertEquals(outs[2], outs[0]);
        const rowBytes = (cols / info.blockSize) * info.blockBytes;
        const wRows = Array.from({ length: rows }, (_, i) => {
          const bytes = wb.subarray(i * rowBytes, (i + 1) * rowBytes);
          return float ? bytes : decodeRowRef(type, bytes, cols);
        });
        for (let t = 0; t < nTok; t++) {
          const act = prepareActRef(type, x.subarray(t * cols, (t + 1) * cols));
          for (let i = 0; i < rows; i++) {
            const { value, mag } = dotRef(type, wRows[i], cols, act);
            for (const out of [outs[0], outs[2], vecs[0], vecs[2]]) {
              const got = out[t * rows + i];
              assert(
                Math.abs(got - value) <= 1e-5 * mag + 1e-30,
                `${ggmlTypeName(type)} rows=${rows} cols=${cols} tok ${t} row ${i}: ${got} vs ${value} (mag ${mag})`,
              );
            }
          }
        }
      }
    });
  });
}
