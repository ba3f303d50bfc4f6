/**
 * Runtime support exports: where static data ends (the JS bump allocator starts above it).
 */

/** First byte after the module's static data; `lib/wasm_runtime.ts` allocates only above it. */
export function heap_base(): usize {
  return __heap_base;
}
