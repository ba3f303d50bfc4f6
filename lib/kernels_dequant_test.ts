import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { createRuntime } from "./wasm_runtime.ts";
import { dequantize, embedRow } from "./kernels.ts";
import { ggmlTypeName } from "./ggml_types.ts";
import { openGguf, readTensorInto } from "./gguf.ts";
import { dequantizeRef } from "./ref/quants.ts";
import { sharedPath } from "../tests/testing.ts";

/** Largest relative RMS error vs the F32 weights we accept per type (quantization noise, roughly 2× typical). */
const TOLERANCE: Record<string, number> = {
  F16: 1e-3,
  BF16: 8e-3,
  Q8_0: 1e-2,
  Q6_K: 2.5e-2,
  Q5_0: 6e-2,
  Q5_1: 6e-2,
  Q5_K: 6e-2,
  Q4_0: 0.12,
  Q4_1: 0.12,
  Q4_K: 0.12,
};

const TENSORS = ["blk.0.attn_q.weight", "blk.1.ffn_down.weight", "token_embd.weight"];

Deno.test("dequantization of llama.cpp-quantized fixtures: wasm = reference, close to the F32 weights", async () => {
  const dir = sharedPath("fixtures/models/quant");
  const f32Path = sharedPath("fixtures/models/llama-gqa-q.gguf");
  if (!dir || !f32Path) return;
  const f32File = await openGguf(f32Path);
  const rt = await createRuntime({ threads: 2 });
  try {
    const shard = rt.newShard(16 << 20);
    for (const name of [...Object.keys(TOLERANCE), "Q4_K_M-mixed"]) {
      const file = await openGguf(`${dir}/llama-gqa-q.${name}.gguf`);
      for (const tname of TENSORS) {
        const t = file.tensorByName.get(tname)!;
        const [cols, rows] = t.shape;
        const m = shard.mark();
        const src = shard.alloc(t.bytes), dst = shard.alloc(4 * rows * cols), row = shard.alloc(4 * cols);
        await readTensorInto(file, t, shard.u8(src, t.bytes));
        dequantize(shard, t.type, src, rows, cols, dst);
        const got = shard.f32(dst, rows * cols).slice();
        const ref = dequantizeRef(t.type, shard.u8(src, t.bytes).slice(), rows * cols);
        assertEquals(got, ref, `${name} ${tname}`);
        embedRow(shard, t.type, src, rows - 1, cols, row);
        assertEquals(shard.f32(row, cols).slice(), got.slice((rows - 1) * cols));

        const ft = f32File.tensorByName.get(tname)!;
        const want = new Float32Array(rows * cols);
        await readTensorInto(f32File, ft, new Uint8Array(want.buffer));
        let err = 0, norm = 0;
        for (let i = 0; i < want.length; i++) {
          err += (got[i] - want[i]) ** 2;
          norm += want[i] ** 2;
        }
        const rel = Math.sqrt(err / norm);
        const tol = TOLERANCE[ggmlTypeName(t.type)];
        assert(rel <= tol, `${name} ${tname} (${ggmlTypeName(t.type)}): relative RMS error ${rel} > ${tol}`);
        shard.release(m);
      }
    }
  } finally {
    rt.close();
  }
});
