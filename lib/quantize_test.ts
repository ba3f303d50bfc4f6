import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { openGguf } from "./gguf.ts";
import { GgmlType } from "./ggml_types.ts";
import { fp16BitsToFp32, fp32ToBf16Bits, fp32ToFp16Bits, quantizeQ4_0, quantizeQ8_0, quantizeTo } from "./quantize.ts";
import { sharedPath } from "../tests/testing.ts";

async function tensorBytes(path: string): Promise<Map<string, Uint8Array>> {
  const file = await openGguf(path);
  const all = await Deno.readFile(path);
  return new Map(file.tensors.map((t) => [t.name, all.subarray(t.offset, t.offset + t.bytes)]));
}

for (
  const [name, type] of [["Q8_0", GgmlType.Q8_0], ["Q4_0", GgmlType.Q4_0], ["F16", GgmlType.F16], [
    "BF16",
    GgmlType.BF16,
  ]] as const
) {
  Deno.test(`quantizing llama-gqa-q F32 to ${name} matches llama.cpp byte for byte`, async () => {
    const base = sharedPath("fixtures/models/llama-gqa-q.gguf");
    const ref = sharedPath(`fixtures/models/quant/llama-gqa-q.${name}.gguf`);
    if (!base || !ref) return;
    const src = await tensorBytes(base);
    const want = await tensorBytes(ref);
    const refFile = await openGguf(ref);
    assertEquals([...want.keys()].sort(), [...src.keys()].sort());
    let quantized = 0;
    for (const t of refFile.tensors) {
      const f32 = new Float32Array(src.get(t.name)!.slice().buffer);
      const got = t.type === GgmlType.F32 ? new Uint8Array(f32.buffer) : quantizeTo(t.type, f32);
      if (t.type !== GgmlType.F32) {
        assertEquals(t.type, type, t.name);
        quantized++;
      }
      assertEquals(got, want.get(t.name), t.name);
    }
    assertEquals(quantized, 15); // token_embd + 7 weights × 2 layers (pure)
  });
}

Deno.test("Q8_0 rounds halves away from zero and keeps all-zero blocks at d = 0", () => {
  const x = new Float32Array(32);
  x[0] = 127;
  x[1] = 0.5; // 0.5 / d = 0.5 with d = 1 → roundf → 1
  x[2] = -0.5;
  x[3] = -127;
  const q = quantizeQ8_0(x);
  assertEquals(fp16BitsToFp32(q[0] | (q[1] << 8)), 1);
  assertEquals(Array.from(new Int8Array(q.buffer, 2, 4)), [127, 1, -1, -127]);
  assertEquals(Array.from(quantizeQ8_0(new Float32Array(32))), new Array(34).fill(0));
});

Deno.test("Q4_0 maps the largest-magnitude value to -8 and clamps at 15", () => {
  const x = new Float32Array(32);
  x[0] = -8; // max = -8 → d = 1 → q = 0
  x[16] = 8; // 8 + 8.5 = 16.5 → trunc 16 → min 15
  const q = quantizeQ4_0(x);
  assertEquals(fp16BitsToFp32(q[0] | (q[1] << 8)), 1);
  assertEquals(q[2], 0 | (15 << 4));
  assertEquals(q[3], 8 | (8 << 4)); // zeros → 8
});

Deno.test("f16/bf16 conversion rounds to nearest even and keeps NaN", () => {
  assertEquals(fp32ToFp16Bits(1 + 2 ** -11), 0x3c00); // tie → even
  assertEquals(fp32ToFp16Bits(1 + 3 * 2 ** -11), 0x3c02);
  assertEquals(fp32ToFp16Bits(70000), 0x7c00);
  assertEquals(fp32ToBf16Bits(1 + 2 ** -8), 0x3f80); // tie → even
  assertEquals(fp32ToBf16Bits(1 + 3 * 2 ** -8), 0x3f82);
  assertEquals(fp32ToBf16Bits(NaN) & 0x7fc0, 0x7fc0);
});
