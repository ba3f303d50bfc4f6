/**
 * GPU layouts of the supported weight types and the WGSL that dequantizes them. Every type is
 * read in "chunks" of 32 consecutive elements of one row (`load32(row, chunk, &out)`), so one
 * matmul kernel serves all types. Blocks whose size is not a multiple of 4 bytes (Q4_0, Q8_0, Q6_K)
 * are repacked at upload so that every u32 load is aligned: the data stays in its quantized form.
 * @module
 */
import { GgmlType, ggmlTypeName } from "../../ggml_types.ts";
import { SparqError } from "../../errors.ts";

/** Weight types the GPU kernels dequantize. */
export const GPU_WEIGHT_TYPES: readonly GgmlType[] = [
  GgmlType.F32,
  GgmlType.F16,
  GgmlType.Q8_0,
  GgmlType.Q4_0,
  GgmlType.Q4_K,
  GgmlType.Q6_K,
];

/** GPU layout of one type: GGUF block → GPU block (both in bytes), elements per block. */
interface Layout {
  elems: number;
  srcBytes: number;
  dstBytes: number;
}

const LAYOUT: Partial<Record<GgmlType, Layout>> = {
  [GgmlType.F32]: { elems: 1, srcBytes: 4, dstBytes: 4 },
  [GgmlType.F16]: { elems: 2, srcBytes: 4, dstBytes: 4 }, // two halves per u32
  [GgmlType.Q8_0]: { elems: 32, srcBytes: 34, dstBytes: 36 }, // [qs 32][d f16][pad 2]
  [GgmlType.Q4_0]: { elems: 32, srcBytes: 18, dstBytes: 18 }, // all qs (16 B/block), then all d (f16)
  [GgmlType.Q4_K]: { elems: 256, srcBytes: 144, dstBytes: 144 }, // as in GGUF
  [GgmlType.Q6_K]: { elems: 256, srcBytes: 210, dstBytes: 212 }, // as in GGUF + 2 pad bytes
};

/** Throws SparqError unless the GPU kernels handle `type` with rows of `cols` elements. */
export function checkGpuType(type: GgmlType, cols: number, what: string): void {
  if (!LAYOUT[type]) {
    throw new SparqError(
      `${what}: tensor type ${ggmlTypeName(type)} is not supported by the webgpu backend (supported: ${
        GPU_WEIGHT_TYPES.map(ggmlTypeName).join(", ")
      })`,
    );
  }
  if (cols % 32 !== 0) throw new SparqError(`${what}: row length ${cols} is not a multiple of 32 (webgpu backend)`);
}

/** Bytes of `rows` rows of `cols` elements of `type` in the GPU layout. */
export function gpuRowBytes(type: GgmlType, cols: number): number {
  const l = LAYOUT[type]!;
  return (cols / l.elems) * l.dstBytes;
}

/** Bytes of one row in the GGUF layout. */
export function ggufRowBytes(type: GgmlType, cols: number): number {
  const l = LAYOUT[type]!;
  return (cols / l.elems) * l.srcBytes;
}

/**
 * Converts GGUF bytes of whole rows to the GPU layout (a copy only for the repacked types).
 * `src.byteOffset` must be even.
 */
export function repack(type: GgmlType, src: Uint8Array): Uint8Array {
  const l = LAYOUT[type]!;
  if (type === GgmlType.Q4_0) return repackQ4_0(src);
  if (l.srcBytes === l.dstBytes) return src;
  const n = src.length / l.srcBytes;
  const s16 = new Uint16Array(src.buffer, src.byteOffset, src.length / 2);
  const d16 = new Uint16Array((n * l.dstBytes) / 2);
  const sw = l.srcBytes / 2, dw = l.dstBytes / 2;
  // Plain loops: a 7B model has ~200M blocks, too many for a subarray()/set() per block.
  if (type === GgmlType.Q6_K) {
    for (let b = 0, so = 0, dO = 0; b < n; b++, so += sw, dO += dw) {
      for (let i = 0; i < sw; i++) d16[dO + i] = s16[so + i];
    }
  } else {
    // Q4_0/Q8_0: the f16 scale moves from the front to behind the quants.
    for (let b = 0, so = 0, dO = 0; b < n; b++, so += sw, dO += dw) {
      for (let i = 1; i < sw; i++) d16[dO + i - 1] = s16[so + i];
      d16[dO + sw - 1] = s16[so];
    }
  }
  return new Uint8Array(d16.buffer);
}

/**
 * Q4_0 as two arrays, so that a block's 16 quant bytes are one aligned 16-byte load and 32 lanes
 * read 512 contiguous bytes: `[qs of every block][d of every block (f16), padded to 4 bytes]`.
 */
function repackQ4_0(src: Uint8Array): Uint8Array {
  const n = src.length / 18;
  const s16 = new Uint16Array(src.buffer, src.byteOffset, src.length / 2);
  const d16 = new Uint16Array(n * 8 + n + (n & 1));
  for (let b = 0, so = 0, dO = 0; b < n; b++, so += 9, dO += 8) {
    for (let i = 0; i < 8; i++) d16[dO + i] = s16[so + 1 + i];
    d16[n * 8 + b] = s16[so];
  }
  return new Uint8Array(d16.buffer);
}

/** Whether `type`'s kernels also bind the weight buffer as `wq: array<vec4<u32>>` at binding 5. */
export function usesVecView(type: GgmlType): boolean {
  return type === GgmlType.Q4_0;
}

/** WGSL declarations a type's kernels need besides `w: array<u32>` (see {@link usesVecView}). */
export function quantBindingsWgsl(type: GgmlType): string {
  return usesVecView(type) ? "@group(0) @binding(5) var<storage, read> wq: array<vec4<u32>>;" : "";
}

/** WGSL of Q4_0's quants (as vec4<f32> pairs lo/hi) and scale of block `blk` in a buffer of `rows` rows. */
function q4_0Block(cols: number, rows: number): string {
  return `fn q4d(blk: u32) -> f32 {
  let sc = unpack2x16float(w[${rows * (cols / 32) * 4}u + blk / 2u]);
  return select(sc.x, sc.y, (blk & 1u) == 1u);
}`;
}

/**
 * WGSL for `fn dot32(row: u32, c: u32, xv: ptr<function, array<vec4<f32>, 8>>) -> f32`: the dot product of chunk `c` of `row` with
 * 32 activations at `x[xb..xb+8]` (`x: array<vec4<f32>>`, declared by the caller), without
 * materialising the chunk (decode matvec: an array of 32 floats per thread would live in local memory).
 * Types without a direct form go through `load32`.
 */
export function dot32Wgsl(type: GgmlType, cols: number, rows: number): string {
  const nChunk = cols / 32;
  switch (type) {
    case GgmlType.Q4_0:
      return `${q4_0Block(cols, rows)}
fn dot32(row: u32, c: u32, xv: ptr<function, array<vec4<f32>, 8>>) -> f32 {
  let blk = row * ${nChunk}u + c;
  let qv = wq[blk];
  var s = 0.0;
  for (var i = 0u; i < 4u; i++) {
    let q = qv[i];
    let lo = vec4<f32>(f32(q & 15u), f32((q >> 8u) & 15u), f32((q >> 16u) & 15u), f32((q >> 24u) & 15u));
    let hi = vec4<f32>(f32((q >> 4u) & 15u), f32((q >> 12u) & 15u), f32((q >> 20u) & 15u), f32(q >> 28u));
    s += dot(lo - 8.0, (*xv)[i]) + dot(hi - 8.0, (*xv)[4u + i]);
  }
  return q4d(blk) * s;
}`;
    case GgmlType.Q8_0:
      return `fn dot32(row: u32, c: u32, xv: ptr<function, array<vec4<f32>, 8>>) -> f32 {
  let base = (row * ${nChunk}u + c) * 9u;
  var s = 0.0;
  for (var i = 0u; i < 8u; i++) {
    let q = bitcast<i32>(w[base + i]);
    let v = vec4<f32>(f32(extractBits(q, 0u, 8u)), f32(extractBits(q, 8u, 8u)), f32(extractBits(q, 16u, 8u)),
      f32(extractBits(q, 24u, 8u)));
    s += dot(v, (*xv)[i]);
  }
  return unpack2x16float(w[base + 8u]).x * s;
}`;
    case GgmlType.F16:
      return `fn dot32(row: u32, c: u32, xv: ptr<function, array<vec4<f32>, 8>>) -> f32 {
  let base = row * ${cols / 2}u + c * 16u;
  var s = 0.0;
  for (var i = 0u; i < 8u; i++) {
    s += dot(vec4<f32>(unpack2x16float(w[base + 2u * i]), unpack2x16float(w[base + 2u * i + 1u])), (*xv)[i]);
  }
  return s;
}`;
    case GgmlType.F32:
      return `fn dot32(row: u32, c: u32, xv: ptr<function, array<vec4<f32>, 8>>) -> f32 {
  let base = row * ${cols}u + c * 32u;
  var s = 0.0;
  for (var i = 0u; i < 8u; i++) {
    let b = base + 4u * i;
    s += dot(vec4<f32>(bitcast<f32>(w[b]), bitcast<f32>(w[b + 1u]), bitcast<f32>(w[b + 2u]), bitcast<f32>(w[b + 3u])),
      (*xv)[i]);
  }
  return s;
}`;
    default:
      return `${load32Wgsl(type, cols, rows)}
fn dot32(row: u32, c: u32, xv: ptr<function, array<vec4<f32>, 8>>) -> f32 {
  var v: array<f32, 32>;
  load32(row, c, &v);
  var s = 0.0;
  for (var i = 0u; i < 8u; i++) {
    s += dot(vec4<f32>(v[4u * i], v[4u * i + 1u], v[4u * i + 2u], v[4u * i + 3u]), (*xv)[i]);
  }
  return s;
}`;
  }
}

/**
 * WGSL for `fn load32(row: u32, c: u32, o: ptr<function, array<f32, 32>>)` reading from
 * `w: array<u32>` (declared by the caller) a row of `cols` elements.
 */
export function load32Wgsl(type: GgmlType, cols: number, rows: number): string {
  const nChunk = cols / 32;
  switch (type) {
    case GgmlType.F32:
      return `fn load32(row: u32, c: u32, o: ptr<function, array<f32, 32>>) {
  let base = row * ${cols}u + c * 32u;
  for (var i = 0u; i < 32u; i++) { (*o)[i] = bitcast<f32>(w[base + i]); }
}`;
    case GgmlType.F16:
      return `fn load32(row: u32, c: u32, o: ptr<function, array<f32, 32>>) {
  let base = row * ${cols / 2}u + c * 16u;
  for (var i = 0u; i < 16u; i++) { let v = unpack2x16float(w[base + i]); (*o)[2u * i] = v.x; (*o)[2u * i + 1u] = v.y; }
}`;
    case GgmlType.Q8_0:
      return `fn load32(row: u32, c: u32, o: ptr<function, array<f32, 32>>) {
  let base = (row * ${nChunk}u + c) * 9u;
  let d = unpack2x16float(w[base + 8u]).x;
  for (var i = 0u; i < 8u; i++) {
    let q = bitcast<i32>(w[base + i]);
    for (var j = 0u; j < 4u; j++) { (*o)[4u * i + j] = d * f32(extractBits(q, 8u * j, 8u)); }
  }
}`;
    case GgmlType.Q4_0:
      return `${q4_0Block(cols, rows)}
fn load32(row: u32, c: u32, o: ptr<function, array<f32, 32>>) {
  let blk = row * ${nChunk}u + c;
  let d = q4d(blk);
  let qv = wq[blk];
  for (var i = 0u; i < 4u; i++) {
    let q = qv[i];
    for (var j = 0u; j < 4u; j++) {
      (*o)[4u * i + j] = d * (f32((q >> (8u * j)) & 15u) - 8.0);
      (*o)[4u * i + j + 16u] = d * (f32((q >> (8u * j + 4u)) & 15u) - 8.0);
    }
  }
}`;
    case GgmlType.Q4_K:
      return `fn sbyte(base: u32, k: u32) -> u32 { return (w[base + 1u + k / 4u] >> (8u * (k % 4u))) & 255u; }
fn load32(row: u32, c: u32, o: ptr<function, array<f32, 32>>) {
  let base = (row * ${cols / 256}u + c / 8u) * 36u;
  let j = c % 8u;
  let dm = unpack2x16float(w[base]);
  var sc: u32; var mn: u32;
  if (j < 4u) {
    sc = sbyte(base, j) & 63u; mn = sbyte(base, j + 4u) & 63u;
  } else {
    sc = (sbyte(base, j + 4u) & 15u) | ((sbyte(base, j - 4u) >> 6u) << 4u);
    mn = (sbyte(base, j + 4u) >> 4u) | ((sbyte(base, j) >> 6u) << 4u);
  }
  let d1 = dm.x * f32(sc);
  let m1 = dm.y * f32(mn);
  let qbase = base + 4u + (j / 2u) * 8u;
  let sh = (j % 2u) * 4u;
  for (var i = 0u; i < 8u; i++) {
    let q = w[qbase + i];
    for (var b = 0u; b < 4u; b++) { (*o)[4u * i + b] = d1 * f32((q >> (8u * b + sh)) & 15u) - m1; }
  }
}`;
    case GgmlType.Q6_K:
      return `fn load32(row: u32, c: u32, o: ptr<function, array<f32, 32>>) {
  let base = (row * ${cols / 256}u + c / 8u) * 53u;
  let j = c % 8u;
  let h = j / 4u;
  let qq = j % 4u;
  let d = unpack2x16float(w[base + 52u]).x;
  let qlb = base + (64u * h + (qq & 1u) * 32u) / 4u;
  let nsh = select(0u, 4u, qq >= 2u);
  let qhb = base + 32u + 8u * h;
  let scw = base + 48u;
  for (var half = 0u; half < 2u; half++) {
    let si = 8u * h + 2u * qq + half;
    let s = f32(extractBits(bitcast<i32>(w[scw + si / 4u]), 8u * (si % 4u), 8u));
    let ds = d * s;
    for (var i = 0u; i < 4u; i++) {
      let ql = w[qlb + 4u * half + i];
      let qh = w[qhb + 4u * half + i];
      for (var b = 0u; b < 4u; b++) {
        let q = ((ql >> (8u * b + nsh)) & 15u) | (((qh >> (8u * b + 2u * qq)) & 3u) << 4u);
        (*o)[16u * half + 4u * i + b] = ds * (f32(q) - 32.0);
      }
    }
  }
}`;
    default:
      throw new SparqError(`webgpu: tensor type ${ggmlTypeName(type)} is not supported`);
  }
}
