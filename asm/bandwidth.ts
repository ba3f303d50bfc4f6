// deno-fmt-ignore-file -- AssemblyScript (decorators, `<T>x` casts): deno fmt would drop `@inline`.
/**
 * Memory read-bandwidth probe: the fastest streaming read we can write (v128 loads, four independent
 * accumulators), each thread over its share of 64-byte lines. Its GB/s is the "100%" mark of the kernel benchmarks
 * and `sparq profile`. Writes one f32 per thread to `out[ith]` so the reads are not optimized away.
 */
import { splitStart } from "./common/split";
import { hsumF32 } from "./common/simd";

export function bandwidth_probe(src: usize, bytes: usize, out: usize, ith: i32, nth: i32): void {
  const lines = <i32>(bytes >> 6);
  const p0 = src + (<usize>splitStart(lines, ith, nth) << 6), p1 = src + (<usize>splitStart(lines, ith + 1, nth) << 6);
  let a = f32x4.splat(0), b = f32x4.splat(0), c = f32x4.splat(0), d = f32x4.splat(0);
  for (let p = p0; p < p1; p += 64) {
    a = f32x4.add(a, v128.load(p));
    b = f32x4.add(b, v128.load(p, 16));
    c = f32x4.add(c, v128.load(p, 32));
    d = f32x4.add(d, v128.load(p, 48));
  }
  store<f32>(out + (<usize>ith << 2), hsumF32(f32x4.add(f32x4.add(a, b), f32x4.add(c, d))));
}
