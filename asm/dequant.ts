// deno-fmt-ignore-file -- AssemblyScript (decorators, `<T>x` casts): deno fmt would drop `@inline`.
/**
 * Row dequantization of every supported type to f32 (embedding rows; tests). `src` holds `rows` ggml rows of
 * `cols` values, `dst` receives `rows × cols` f32. Parallel over rows. Written like ggml's `dequantize_row_*`
 * (scalar: not on the per-token hot path except for one embedding row).
 */
import { splitStart } from "./common/split";
import { f16ToF32 } from "./common/simd";

/** Calls `block(src, dst)` for each block of this thread's rows. */
// @ts-ignore: decorator
@inline function eachBlock(src: usize, dst: usize, rows: i32, cols: i32, ith: i32, nth: i32, qk: i32, bytes: i32, block: (s: usize, d: usize) => void): void {
  const r0 = splitStart(rows, ith, nth), r1 = splitStart(rows, ith + 1, nth);
  const nb = cols / qk;
  for (let r = r0; r < r1; r++) {
    for (let b = 0; b < nb; b++) {
      const i = <usize>r * <usize>nb + <usize>b;
      block(src + i * <usize>bytes, dst + ((i * <usize>qk) << 2));
    }
  }
}

export function dequant_f32(src: usize, dst: usize, rows: i32, cols: i32, ith: i32, nth: i32): void {
  const r0 = splitStart(rows, ith, nth), r1 = splitStart(rows, ith + 1, nth);
  const o = (<usize>r0 * <usize>cols) << 2;
  memory.copy(dst + o, src + o, (<usize>(r1 - r0) * <usize>cols) << 2);
}

export function dequant_f16(src: usize, dst: usize, rows: i32, cols: i32, ith: i32, nth: i32): void {
  const r0 = splitStart(rows, ith, nth), r1 = splitStart(rows, ith + 1, nth);
  for (let i = <usize>r0 * <usize>cols; i < <usize>r1 * <usize>cols; i++) store<f32>(dst + (i << 2), f16ToF32(load<u16>(src + (i << 1))));
}

export function dequant_bf16(src: usize, dst: usize, rows: i32, cols: i32, ith: i32, nth: i32): void {
  const r0 = splitStart(rows, ith, nth), r1 = splitStart(rows, ith + 1, nth);
  for (let i = <usize>r0 * <usize>cols; i < <usize>r1 * <usize>cols; i++) store<u32>(dst + (i << 2), <u32>load<u16>(src + (i << 1)) << 16);
}

export function dequant_q4_0(src: usize, dst: usize, rows: i32, cols: i32, ith: i32, nth: i32): void {
  eachBlock(src, dst, rows, cols, ith, nth, 32, 18, (s: usize, d: usize): void => {
    const sc = f16ToF32(load<u16>(s));
    for (let j: usize = 0; j < 16; j++) {
      const q = <i32>load<u8>(s + 2 + j);
      store<f32>(d + (j << 2), <f32>((q & 0xf) - 8) * sc);
      store<f32>(d + ((j + 16) << 2), <f32>((q >> 4) - 8) * sc);
    }
  });
}

export function dequant_q4_1(src: usize, dst: usize, rows: i32, cols: i32, ith: i32, nth: i32): void {
  eachBlock(src, dst, rows, cols, ith, nth, 32, 20, (s: usize, d: usize): void => {
    const sc = f16ToF32(load<u16>(s)), m = f16ToF32(load<u16>(s, 2));
    for (let j: usize = 0; j < 16; j++) {
      const q = <i32>load<u8>(s + 4 + j);
      store<f32>(d + (j << 2), <f32>(q & 0xf) * sc + m);
      store<f32>(d + ((j + 16) << 2), <f32>(q >> 4) * sc + m);
    }
  });
}

export function dequant_q5_0(src: usize, dst: usize, rows: i32, cols: i32, ith: i32, nth: i32): void {
  eachBlock(src, dst, rows, cols, ith, nth, 32, 22, (s: usize, d: usize): void => {
    const sc = f16ToF32(load<u16>(s));
    const qh = load<u32>(s + 2);
    for (let j: usize = 0; j < 16; j++) {
      const q = <i32>load<u8>(s + 6 + j);
      const h0 = <i32>(((qh >> <u32>j) << 4) & 0x10), h1 = <i32>((qh >> <u32>(j + 12)) & 0x10);
      store<f32>(d + (j << 2), <f32>(((q & 0xf) | h0) - 16) * sc);
      store<f32>(d + ((j + 16) << 2), <f32>(((q >> 4) | h1) - 16) * sc);
    }
  });
}

export function dequant_q5_1(src: usize, dst: usize, rows: i32, cols: i32, ith: i32, nth: i32): void {
  eachBlock(src, dst, rows, cols, ith, nth, 32, 24, (s: usize, d: usize): void => {
    const sc = f16ToF32(load<u16>(s)), m = f16ToF32(load<u16>(s, 2));
    const qh = load<u32>(s + 4);
    for (let j: usize = 0; j < 16; j++) {
      const q = <i32>load<u8>(s + 8 + j);
      const h0 = <i32>(((qh >> <u32>j) << 4) & 0x10), h1 = <i32>((qh >> <u32>(j + 12)) & 0x10);
      store<f32>(d + (j << 2), <f32>((q & 0xf) | h0) * sc + m);
      store<f32>(d + ((j + 16) << 2), <f32>((q >> 4) | h1) * sc + m);
    }
  });
}

export function dequant_q8_0(src: usize, dst: usize, rows: i32, cols: i32, ith: i32, nth: i32): void {
  eachBlock(src, dst, rows, cols, ith, nth, 32, 34, (s: usize, d: usize): void => {
    const sc = f16ToF32(load<u16>(s));
    for (let j: usize = 0; j < 32; j++) store<f32>(d + (j << 2), <f32>load<i8>(s + 2 + j) * sc);
  });
}

/** 6-bit scale (low byte) and min (high byte) number `j` of a Q4_K/Q5_K `scales[12]`. */
// @ts-ignore: decorator
@inline function scaleMinK4(sc: usize, j: i32): i32 {
  if (j < 4) return (load<u8>(sc + j) & 63) | ((load<u8>(sc + j + 4) & 63) << 8);
  const a = <i32>load<u8>(sc + j + 4), lo = <i32>load<u8>(sc + j - 4), hi = <i32>load<u8>(sc + j);
  return ((a & 0xf) | ((lo >> 6) << 4)) | (((a >> 4) | ((hi >> 6) << 4)) << 8);
}

export function dequant_q4_k(src: usize, dst: usize, rows: i32, cols: i32, ith: i32, nth: i32): void {
  eachBlock(src, dst, rows, cols, ith, nth, 256, 144, (s: usize, d: usize): void => {
    const dd = f16ToF32(load<u16>(s)), dmin = f16ToF32(load<u16>(s, 2));
    for (let j = 0; j < 4; j++) {
      const a = scaleMinK4(s + 4, 2 * j), c = scaleMinK4(s + 4, 2 * j + 1);
      const d1 = dd * <f32>(a & 0xff), m1 = dmin * <f32>(a >> 8);
      const d2 = dd * <f32>(c & 0xff), m2 = dmin * <f32>(c >> 8);
      const q = s + 16 + (<usize>j << 5);
      const o = d + (<usize>j << 8);
      for (let l: usize = 0; l < 32; l++) {
        const v = <i32>load<u8>(q + l);
        store<f32>(o + (l << 2), d1 * <f32>(v & 0xf) - m1);
        store<f32>(o + ((l + 32) << 2), d2 * <f32>(v >> 4) - m2);
      }
    }
  });
}

export function dequant_q5_k(src: usize, dst: usize, rows: i32, cols: i32, ith: i32, nth: i32): void {
  eachBlock(src, dst, rows, cols, ith, nth, 256, 176, (s: usize, d: usize): void => {
    const dd = f16ToF32(load<u16>(s)), dmin = f16ToF32(load<u16>(s, 2));
    for (let j = 0; j < 4; j++) {
      const a = scaleMinK4(s + 4, 2 * j), c = scaleMinK4(s + 4, 2 * j + 1);
      const d1 = dd * <f32>(a & 0xff), m1 = dmin * <f32>(a >> 8);
      const d2 = dd * <f32>(c & 0xff), m2 = dmin * <f32>(c >> 8);
      const u1 = 1 << (2 * j), u2 = 2 << (2 * j);
      const q = s + 48 + (<usize>j << 5);
      const o = d + (<usize>j << 8);
      for (let l: usize = 0; l < 32; l++) {
        const v = <i32>load<u8>(q + l), h = <i32>load<u8>(s + 16 + l);
        store<f32>(o + (l << 2), d1 * <f32>((v & 0xf) + (h & u1 ? 16 : 0)) - m1);
        store<f32>(o + ((l + 32) << 2), d2 * <f32>((v >> 4) + (h & u2 ? 16 : 0)) - m2);
      }
    }
  });
}

export function dequant_q6_k(src: usize, dst: usize, rows: i32, cols: i32, ith: i32, nth: i32): void {
  eachBlock(src, dst, rows, cols, ith, nth, 256, 210, (s: usize, d: usize): void => {
    const dd = f16ToF32(load<u16>(s + 208));
    for (let n = 0; n < 2; n++) {
      const ql = s + (<usize>n << 6), qh = s + 128 + (<usize>n << 5), sc = s + 192 + (<usize>n << 3);
      const o = d + (<usize>n << 9);
      for (let l: usize = 0; l < 32; l++) {
        const is = l >> 4;
        const a = <i32>load<u8>(ql + l), b = <i32>load<u8>(ql + l + 32), h = <i32>load<u8>(qh + l);
        store<f32>(o + (l << 2), dd * <f32>load<i8>(sc + is) * <f32>(((a & 0xf) | ((h & 3) << 4)) - 32));
        store<f32>(o + ((l + 32) << 2), dd * <f32>load<i8>(sc + is + 2) * <f32>(((b & 0xf) | (((h >> 2) & 3) << 4)) - 32));
        store<f32>(o + ((l + 64) << 2), dd * <f32>load<i8>(sc + is + 4) * <f32>(((a >> 4) | (((h >> 4) & 3) << 4)) - 32));
        store<f32>(o + ((l + 96) << 2), dd * <f32>load<i8>(sc + is + 6) * <f32>(((b >> 4) | (((h >> 6) & 3) << 4)) - 32));
      }
    }
  });
}
