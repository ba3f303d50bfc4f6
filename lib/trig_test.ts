/**
 * RoPE's sine and cosine (asm/common/trig_f32.ts) against glibc's `sinf`/`cosf`, which llama.cpp's rope cache calls:
 * every RoPE angle of three bases up to position 40000 must be bit-identical in both builds, and random magnitudes
 * too in the relaxed-SIMD build. The plain-SIMD build rounds glibc's fused f64 multiply-adds separately, which the
 * module documents may change the last bit: on random magnitudes it must stay within one ulp (it was seen to differ
 * by one at cos(−23.558031)). Needs glibc's libm through FFI; skipped with the reason printed where it cannot be
 * loaded.
 */
import { ok } from "node:assert/strict";
import { createRuntime } from "./wasm_runtime.ts";

function openLibm() {
  try {
    return Deno.dlopen("libm.so.6", {
      sinf: { parameters: ["f32"], result: "f32" },
      cosf: { parameters: ["f32"], result: "f32" },
    });
  } catch (e) {
    console.log(`  skipped: glibc's libm.so.6 could not be opened (${(e as Error).message})`);
    return undefined;
  }
}

Deno.test("RoPE sin/cos equal glibc's sinf/cosf bit for bit (both builds)", async () => {
  const libm = openLibm();
  if (!libm) return;
  try {
    for (const noRelaxed of [false, true]) {
      const rt = await createRuntime({ threads: 1, noRelaxed });
      const s = rt.newShard(1 << 20);
      const f = new Float32Array(1);
      let n = 0, bad = 0;
      /** Whether a (ours) equals b (glibc's), or with `ulp1` differs from it by at most one unit in the last place. */
      const same = (a: number, b: number, ulp1: boolean) => {
        if (Object.is(a, b)) return true;
        if (!ulp1) return false;
        const u = new Int32Array(new Float32Array([a, b]).buffer);
        return Math.sign(a) === Math.sign(b) && Math.abs(u[0] - u[1]) <= 1;
      };
      const check = (x: number, ulp1 = false) => {
        f[0] = x;
        const y = f[0];
        n++;
        if (
          !same(s.call("sinf_glibc", [y]), libm.symbols.sinf(y), ulp1) ||
          !same(s.call("cosf_glibc", [y]), libm.symbols.cosf(y), ulp1)
        ) {
          if (bad++ < 5) console.log(`  mismatch at ${y}`);
        }
      };
      for (const base of [10000, 500000, 1000000]) {
        f[0] = Math.pow(base, -2 / 128);
        const scale = f[0];
        for (let p = 0; p < 40000; p += 13) {
          f[0] = p;
          for (let i = 0; i < 64; i++) {
            check(f[0]);
            f[0] = f[0] * scale;
          }
        }
      }
      for (let i = 0; i < 50000; i++) check((Math.random() - 0.5) * 10 ** (Math.random() * 12 - 6), noRelaxed);
      rt.close();
      ok(
        bad === 0,
        `${bad} of ${n} angles differ from glibc (${
          noRelaxed ? "plain SIMD build, random ones by more than 1 ulp" : "relaxed SIMD build"
        })`,
      );
    }
  } finally {
    libm.close();
  }
});
