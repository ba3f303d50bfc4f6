/**
 * RoPE's sine and cosine (asm/common/trig_f32.ts) against glibc's `sinf`/`cosf`, which llama.cpp's rope cache calls:
 * every RoPE angle of three bases up to position 40000, plus random magnitudes, must be bit-identical. Needs glibc's
 * libm through FFI; skipped with the reason printed where it cannot be loaded.
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
      const check = (x: number) => {
        f[0] = x;
        const y = f[0];
        n++;
        if (
          !Object.is(s.call("sinf_glibc", [y]), libm.symbols.sinf(y)) ||
          !Object.is(s.call("cosf_glibc", [y]), libm.symbols.cosf(y))
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
      for (let i = 0; i < 50000; i++) check((Math.random() - 0.5) * 10 ** (Math.random() * 12 - 6));
      rt.close();
      ok(bad === 0, `${bad} of ${n} angles differ from glibc (${noRelaxed ? "plain" : "relaxed"} SIMD build)`);
    }
  } finally {
    libm.close();
  }
});
