/**
 * How the WGSL kernels read and write the KV cache (K, V, SparQ's Kt) for each element type:
 * - `f32`: plain `array<f32>` / `array<vec4<f32>>` (the kernels' WGSL is the same as before f16 existed);
 * - `f16`: `array<f16>` / `array<vec4<f16>>` through the `shader-f16` feature, widened to f32 on load;
 * - `f16p` (no `shader-f16`, e.g. llvmpipe): the same bytes as u32 words of two halves,
 *   `unpack2x16float` on load; a store replaces its half of the word with two atomics, because the
 *   other half can be another invocation's element (Kt columns, neighbouring dimensions).
 * All arithmetic stays f32; only the cache's storage is narrower (half the bytes and the memory).
 * @module
 */

/** Element storage of the GPU KV cache. */
export type CacheElem = "f32" | "f16" | "f16p";

/** Bytes per cache element. */
export function cacheElemBytes(e: CacheElem | undefined): number {
  return (e ?? "f32") === "f32" ? 4 : 2;
}

/** Bytes of a cache buffer of `n` elements (rounded up to whole 4-byte words). */
export function cacheBufferBytes(e: CacheElem | undefined, n: number): number {
  return Math.ceil((n * cacheElemBytes(e)) / 4) * 4;
}

/**
 * `enable f16;` where the shader declares f16 data (must open the module). Empty otherwise.
 */
export function cacheEnableWgsl(e: CacheElem | undefined): string {
  return e === "f16" ? "enable f16;\n" : "";
}

/**
 * Declaration of cache buffer `name` at `binding`, read as four elements at a time (`vec4`), two (`vec2`), one at a
 * time (`scalar`), or written with {@link cachePutWgsl} (`store`; then reads are not allowed).
 */
export function cacheDeclWgsl(
  e: CacheElem | undefined,
  binding: number,
  name: string,
  view: "vec4" | "vec2" | "scalar" | "store",
): string {
  const decl = (access: string, type: string) =>
    `@group(0) @binding(${binding}) var<storage, ${access}> ${name}: array<${type}>;`;
  if ((e ?? "f32") !== "f16p") {
    const t = e === "f16" ? "f16" : "f32";
    return decl(view === "store" ? "read_write" : "read", view === "scalar" || view === "store" ? t : `${view}<${t}>`);
  }
  if (view === "store") {
    return `${decl("read_write", "atomic<u32>")}
fn put_${name}(e: u32, x: f32) {
  let w = e >> 1u;
  let sh = (e & 1u) * 16u;
  atomicAnd(&${name}[w], ~(0xffffu << sh));
  atomicOr(&${name}[w], (pack2x16float(vec2<f32>(x, 0.0)) & 0xffffu) << sh);
}`;
  }
  return decl("read", view === "vec4" ? "vec2<u32>" : "u32");
}

/**
 * WGSL expression: `n` elements of cache buffer `name` as f32 (`n` = 1) or vec`n`<f32>: element `i` (declared
 * `scalar`), or elements n·i … n·i + n − 1 (declared `vec2` / `vec4`).
 */
export function cacheLoad(e: CacheElem | undefined, name: string, i: string, n: 1 | 2 | 4): string {
  switch (e ?? "f32") {
    case "f32":
      return `${name}[${i}]`;
    case "f16":
      return n === 1 ? `f32(${name}[${i}])` : `vec${n}<f32>(${name}[${i}])`;
    default:
      if (n === 4) return `f16x4(${name}[${i}])`;
      return n === 2 ? `unpack2x16float(${name}[${i}])` : `unpack2x16float(${name}[(${i}) >> 1u])[(${i}) & 1u]`;
  }
}

/** Helper functions the `f16p` vec4 loads use (empty for the other types); once per module. */
export function cacheFnsWgsl(e: CacheElem | undefined): string {
  return e === "f16p"
    ? "fn f16x4(u: vec2<u32>) -> vec4<f32> { return vec4<f32>(unpack2x16float(u.x), unpack2x16float(u.y)); }\n"
    : "";
}

/** WGSL statement: element `i` of cache buffer `name` (declared `store`) = `x` (an f32 expression). */
export function cachePutWgsl(e: CacheElem | undefined, name: string, i: string, x: string): string {
  switch (e ?? "f32") {
    case "f32":
      return `${name}[${i}] = ${x};`;
    case "f16":
      return `${name}[${i}] = f16(${x});`;
    default:
      return `put_${name}(${i}, ${x});`;
  }
}

/** WGSL expression: the f32 expression `x` rounded as the cache stores it (for sums of stored values). */
export function cacheRoundWgsl(e: CacheElem | undefined, x: string): string {
  switch (e ?? "f32") {
    case "f32":
      return x;
    case "f16":
      return `f32(f16(${x}))`;
    default:
      return `unpack2x16float(pack2x16float(vec2<f32>(${x}, 0.0))).x`;
  }
}
