import { deepStrictEqual as assertEquals, ok, rejects } from "node:assert/strict";
import { GgufStringArray, GgufValueType, openGguf, parseGgufBytes, readTensorInto } from "./gguf.ts";
import { GgmlType } from "./ggml_types.ts";
import { ggufBytes, meta, writeGguf } from "./gguf_writer.ts";
import { sharedPath } from "../tests/testing.ts";

const T = GgufValueType;

/** One metadata entry of every value type, plus nested arrays. */
function everyType() {
  return new Map([
    ["t.u8", meta.u8(250)],
    ["t.i8", meta.i8(-100)],
    ["t.u16", meta.u16(65000)],
    ["t.i16", meta.i16(-32000)],
    ["t.u32", meta.u32(4_000_000_000)],
    ["t.i32", meta.i32(-2_000_000_000)],
    ["t.u64", meta.u64(2n ** 63n + 5n)],
    ["t.u64small", meta.u64(12345)],
    ["t.i64", meta.i64(-(2n ** 62n))],
    ["t.f32", meta.f32(1.5)],
    ["t.f64", meta.f64(Math.PI)],
    ["t.bool", meta.bool(true)],
    ["t.str", meta.str("héllo ▁wörld")],
    ["t.arr.u8", meta.arr(T.UINT8, new Uint8Array([1, 2, 255]))],
    ["t.arr.i32", meta.arr(T.INT32, [-1, 2, -3])],
    ["t.arr.f32", meta.arr(T.FLOAT32, new Float32Array([0.25, -1]))],
    ["t.arr.u64", meta.arr(T.UINT64, [1n, 2n ** 64n - 1n])],
    ["t.arr.f64", meta.arr(T.FLOAT64, [1e300])],
    ["t.arr.bool", meta.arr(T.BOOL, [true, false, true])],
    ["t.arr.str", meta.arr(T.STRING, ["a", "", "ü"])],
    ["t.arr.empty", meta.arr(T.INT16, [])],
    [
      "t.arr.nested",
      meta.arr(T.ARRAY, [meta.arr(T.STRING, ["x", "y"]), meta.arr(T.ARRAY, [meta.arr(T.INT8, [-5])])]),
    ],
    ["general.alignment", meta.u32(64)],
  ]);
}

function normalise(v: unknown): unknown {
  if (v instanceof GgufStringArray) return v.toArray();
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<unknown>, normalise);
  if (Array.isArray(v)) return v.map(normalise);
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalise(x)]));
  }
  if (typeof v === "bigint" && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) {
    return Number(v);
  }
  return v;
}

Deno.test("writer → reader round trip: every value type, nested arrays, alignment, tensors", () => {
  const md = everyType();
  const a = new Float32Array([1, 2, 3, 4, 5, 6]);
  const b = new Uint8Array(34).fill(7);
  const tensors = [
    { name: "a", type: GgmlType.F32, shape: [3, 2], bytes: new Uint8Array(a.buffer) },
    { name: "b.q8", type: GgmlType.Q8_0, shape: [32], bytes: b },
  ];
  for (const version of [2, 3] as const) {
    const bytes = ggufBytes(md, tensors, version);
    const f = parseGgufBytes(bytes, "mem.gguf");
    assertEquals(f.version, version);
    assertEquals(f.alignment, 64);
    assertEquals([...f.metadata.keys()], [...md.keys()]);
    for (const [k, v] of md) {
      const got = f.metadata.get(k)!;
      assertEquals(got.type, v.type, k);
      // Bool arrays come back as 0/1 bytes.
      const want = v.itemType === T.BOOL ? Array.from(v.value as boolean[], Number) : v.value;
      assertEquals(normalise(got.value), normalise(want), k);
    }
    assertEquals(f.metadata.get("t.u64")!.value, 2n ** 63n + 5n);
    assertEquals(f.metadata.get("t.u64small")!.value, 12345);
    assertEquals(f.tensors.map((t) => [t.name, t.type, t.shape, t.bytes]), [
      ["a", GgmlType.F32, [3, 2], 24],
      ["b.q8", GgmlType.Q8_0, [32], 34],
    ]);
    for (const [i, t] of f.tensors.entries()) {
      ok(t.offset % 64 === 0);
      assertEquals(bytes.subarray(t.offset, t.offset + t.bytes), tensors[i].bytes);
    }
  }
});

Deno.test("writeGguf streams chunks to disk, renames into place, and openGguf reads it back", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/m.gguf`;
    const n = 1000;
    const chunks = function* () {
      for (let i = 0; i < n; i += 100) yield new Uint8Array(new Float32Array(100).fill(i).buffer);
    };
    let last = 0;
    const size = await writeGguf(path, [["general.architecture", meta.str("llama")]], [
      { name: "x", type: GgmlType.F32, shape: [10, 100], data: chunks },
      { name: "y", type: GgmlType.F32, shape: [3], data: () => [new Uint8Array(12).fill(1)] },
    ], { onProgress: (done) => (last = done) });
    assertEquals((await Deno.stat(path)).size, size);
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["m.gguf"]);
    const f = await openGguf(path);
    assertEquals(f.fileSize, size);
    const x = new Uint8Array(4000);
    await readTensorInto(f, f.tensors[0], x);
    assertEquals(new Float32Array(x.buffer)[950], 900);
    assertEquals(last, f.tensors[1].offset + 12 - f.dataOffset);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeGguf leaves no file behind when a tensor callback fails or is short", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/m.gguf`;
    await rejects(
      writeGguf(path, [], [{
        name: "x",
        type: GgmlType.F32,
        shape: [4],
        data: function* () {
          yield new Uint8Array(8);
          throw new Error("generator failed");
        },
      }]),
      /generator failed/,
    );
    await rejects(
      writeGguf(path, [], [{ name: "x", type: GgmlType.F32, shape: [4], data: () => [new Uint8Array(8)] }]),
      /produced 8 bytes, 16 expected/,
    );
    assertEquals([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const REWRITE = [
  "fixtures/models/llama-mha.gguf",
  "fixtures/models/gptneox.gguf",
  "fixtures/models/quant/llama-gqa-q.Q4_0.gguf",
  "fixtures/tokenizer/ggml-vocab-gpt-2.gguf",
];
for (const rel of REWRITE) {
  Deno.test(`rewriting ${rel} with the writer gives identical metadata and tensor data`, async () => {
    const src = sharedPath(rel);
    if (!src) return;
    const f = await openGguf(src);
    const orig = await Deno.readFile(src);
    const dir = await Deno.makeTempDir();
    try {
      const out = `${dir}/copy.gguf`;
      await writeGguf(
        out,
        f.metadata,
        f.tensors.map((t) => ({ ...t, data: () => [orig.subarray(t.offset, t.offset + t.bytes)] })),
        { version: f.version as 2 | 3 },
      );
      const g = await openGguf(out);
      const copy = await Deno.readFile(out);
      assertEquals(normalise([...g.metadata]), normalise([...f.metadata]));
      assertEquals(g.tensors.map((t) => [t.name, t.type, t.shape]), f.tensors.map((t) => [t.name, t.type, t.shape]));
      for (const t of f.tensors) {
        const u = g.tensorByName.get(t.name)!;
        ok(copy.subarray(u.offset, u.offset + u.bytes).every((x, i) => x === orig[t.offset + i]), t.name);
      }
      // gguf-py and llama.cpp lay files out the same way, so the whole file comes out identical.
      ok(copy.length === orig.length && copy.every((x, i) => x === orig[i]), "whole file identical");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
