/**
 * Malformed GGUF files, one per kind of damage: each must give a one-line SparqError naming the
 * file and the problem, and through the CLI exit code 2 with one line on stderr (no stack trace
 * unless --debug). The files are made with the writer and then patched.
 */
import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { GgufValueType, openGguf } from "../lib/gguf.ts";
import { GgmlType } from "../lib/ggml_types.ts";
import { ggufBytes, meta } from "../lib/gguf_writer.ts";
import { SparqError } from "../lib/errors.ts";
import { repoRoot } from "./testing.ts";

/** A valid file: metadata with a string and an array, two F32 tensors `t.aa` [32] and `t.ab` [32, 2]. */
function valid(): Uint8Array {
  return ggufBytes([
    ["general.architecture", meta.str("llama")],
    ["general.alignment", meta.u32(32)],
    ["test.list", meta.arr(GgufValueType.INT32, [1, 2, 3])],
  ], [
    { name: "t.aa", type: GgmlType.F32, shape: [32], bytes: new Uint8Array(128) },
    { name: "t.ab", type: GgmlType.F32, shape: [32, 2], bytes: new Uint8Array(256) },
  ]);
}

const enc = new TextEncoder();

/** Offset just after the first occurrence of `s` in `b`. */
function after(b: Uint8Array, s: string): number {
  const needle = enc.encode(s);
  outer: for (let i = 0; i + needle.length <= b.length; i++) {
    for (let j = 0; j < needle.length; j++) if (b[i + j] !== needle[j]) continue outer;
    return i + needle.length;
  }
  throw new Error(`${s} not found`);
}

function patch(fn: (b: Uint8Array, v: DataView) => Uint8Array | void): Uint8Array {
  const b = valid();
  return fn(b, new DataView(b.buffer)) ?? b;
}

/** Tensor info fields after the name: n_dims u32, dims u64 × n, type u32, offset u64. */
const tensorField = (b: Uint8Array, name: string, nDims: number) => {
  const at = after(b, name);
  return { dims: at + 4, type: at + 4 + 8 * nDims, offset: at + 8 + 8 * nDims };
};

const CASES: [string, () => Uint8Array, RegExp][] = [
  ["truncated file", () => valid().slice(0, 60), /truncated: .* file ends at 60/],
  ["wrong magic", () => patch((b) => b.set(enc.encode("GGML"), 0)), /not a GGUF file \(magic "GGML"/],
  ["unknown version", () => patch((_, v) => v.setUint32(4, 7, true)), /unknown GGUF version 7/],
  [
    "string length past EOF",
    () => patch((b, v) => v.setBigUint64(after(b, "general.architecture") + 4, 1n << 40n, true)),
    /value of general\.architecture length 1099511627776 runs past the end of the file/,
  ],
  [
    "array length past EOF",
    () => patch((b, v) => v.setBigUint64(after(b, "test.list") + 8, 1n << 33n, true)),
    /array length of test\.list 8589934592 runs past the end of the file/,
  ],
  [
    "absurd tensor count",
    () => patch((_, v) => v.setBigUint64(8, 1n << 60n, true)),
    /tensor count 1152921504606846976 runs past/,
  ],
  [
    "tensor data beyond EOF",
    () => valid().slice(0, -100),
    /tensor t\.ab \(F32 \[32, 2\], 256 bytes at \d+\) extends past the end/,
  ],
  [
    "overlapping tensors",
    () => patch((b, v) => v.setBigUint64(tensorField(b, "t.ab", 2).offset, 64n, true)),
    /tensors t\.aa and t\.ab overlap/,
  ],
  [
    "misaligned offset",
    () => patch((b, v) => v.setBigUint64(tensorField(b, "t.ab", 2).offset, 132n, true)),
    /tensor t\.ab: data offset 132 is not a multiple of the alignment 32/,
  ],
  [
    "duplicate tensor names",
    () => patch((b) => b.set(enc.encode("t.aa"), after(b, "t.ab") - 4)),
    /duplicate tensor name t\.aa/,
  ],
  [
    "unknown tensor type",
    () => patch((b, v) => v.setUint32(tensorField(b, "t.aa", 1).type, 99, true)),
    /tensor t\.aa: unknown tensor type 99/,
  ],
  [
    "bad general.alignment",
    () => patch((b, v) => v.setUint32(after(b, "general.alignment") + 4, 48, true)),
    /general\.alignment 48 is not a positive power of two/,
  ],
  [
    "duplicate metadata key containing a newline",
    () => {
      const b = ggufBytes([["k\nx", meta.u8(1)], ["k\ny", meta.u8(2)]], []);
      b[after(b, "k\ny") - 1] = "x".charCodeAt(0);
      return b;
    },
    /duplicate metadata key k\\u000ax/,
  ],
  [
    "tensor name longer than ggml's 63 bytes",
    () => ggufBytes([], [{ name: "t".repeat(64), type: GgmlType.F32, shape: [1], bytes: new Uint8Array(4) }]),
    /name of tensor #0 is 64 bytes long \(at most 63 allowed\)/,
  ],
  [
    "long string that is not UTF-8",
    () => {
      const b = ggufBytes([["general.name", meta.str("x".repeat(70000))]], []);
      b[b.length - 1] = 0xff;
      return b;
    },
    /value of general\.name \(70000 bytes\) is not valid UTF-8/,
  ],
  [
    "implausibly long array (present in the file)",
    () => ggufBytes([["test.big", meta.arr(GgufValueType.UINT8, new Uint8Array((1 << 22) + 1))]], []),
    /metadata test\.big: array of 4194305 items is implausible \(at most 4194304\)/,
  ],
  [
    "absurd dimension",
    () => patch((b, v) => v.setBigUint64(tensorField(b, "t.aa", 1).dims, 1n << 50n, true)),
    /dimension 0 of t\.aa 1125899906842624 is out of range/,
  ],
];

Deno.test("the unpatched file is valid", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/ok.gguf`, valid());
    assertEquals((await openGguf(`${dir}/ok.gguf`)).tensors.map((t) => t.name), ["t.aa", "t.ab"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

for (const [what, make, want] of CASES) {
  Deno.test(`bad GGUF: ${what} → one-line SparqError naming the file`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      const path = `${dir}/bad.gguf`;
      await Deno.writeFile(path, make());
      let err: unknown;
      await openGguf(path).catch((e) => (err = e));
      ok(err instanceof SparqError, `no SparqError: ${err}`);
      ok(err.message.startsWith(`${path}: `), err.message);
      ok(!err.message.includes("\n"), err.message);
      ok(want.test(err.message), err.message);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("bad GGUF through the CLI: exit code 2, one line on stderr, stack trace only with --debug", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const paths = await Promise.all(CASES.map(async ([, make], i) => {
      const p = `${dir}/bad${i}.gguf`;
      await Deno.writeFile(p, make());
      return p;
    }));
    const run = (...args: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${repoRoot}cli.ts`, ...args],
        stdout: "piped",
        stderr: "piped",
      }).output();
    const dec = new TextDecoder();
    // Two at a time: the machine has two CPUs.
    for (let i = 0; i < paths.length; i += 2) {
      const outs = await Promise.all(paths.slice(i, i + 2).map((p) => run("info", p)));
      outs.forEach((o, j) => {
        const err = dec.decode(o.stderr);
        const [what, , want] = CASES[i + j];
        assertEquals(o.code, 2, `${what}: ${err}`);
        assertEquals(err.split("\n").filter((l) => l).length, 1, `${what}: ${err}`);
        ok(err.startsWith(`sparq: ${paths[i + j]}: `) && want.test(err), `${what}: ${err}`);
        assertEquals(dec.decode(o.stdout), "");
      });
    }
    const debug = await run("info", paths[0], "--debug");
    assertEquals(debug.code, 2);
    ok(/\n\s+at /.test(dec.decode(debug.stderr)), "--debug prints the stack");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
