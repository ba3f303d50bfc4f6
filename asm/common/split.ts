// deno-fmt-ignore-file -- AssemblyScript (decorators, `<T>x` casts): deno fmt would drop `@inline`.
/**
 * Work splitting shared by every parallel kernel: thread `ith` of `nth` takes items
 * `[ith·n/nth, (ith+1)·n/nth)`. Items are whole rows, tokens or heads, never parts of a reduction, so results
 * do not depend on `nth`.
 */

/** First item of thread `ith` of `nth` over `n` items. */
// @ts-ignore: decorator
@inline export function splitStart(n: i32, ith: i32, nth: i32): i32 {
  return <i32>((<i64>n * <i64>ith) / <i64>nth);
}
