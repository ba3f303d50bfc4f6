/**
 * Transparent huge pages for the wasm memories (Linux): `madvise(MADV_HUGEPAGE)` on a memory's pages
 * before they are first touched, so the kernel backs them with 2 MiB pages where it can. One TLB entry
 * then covers 512 times more memory — it matters for the KV cache, whose SparQ/H2O row gathers land on
 * a different 4 KiB page for nearly every row, each a page walk (a two-level one inside a VM).
 *
 * Opt-in (`--huge-pages`): it needs Deno's FFI permission (`--allow-ffi`) to reach libc, which the
 * plain commands do not ask for. Where it cannot be applied (no permission, not Linux, THP disabled,
 * libc missing) {@link adviseHugePages} says why and the memory keeps normal pages.
 * @module
 */

const MADV_HUGEPAGE = 14;
const HUGE = 2n * 1024n * 1024n;

interface Libc {
  symbols: { madvise(addr: Deno.PointerValue, len: bigint, advice: number): number };
}
let libc: Libc | undefined;

/** Why huge pages cannot be used here, or undefined when they can. */
export function hugePagesUnavailable(): string | undefined {
  if (Deno.build.os !== "linux") return "transparent huge pages are a Linux feature";
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
    return "--huge-pages needs --allow-ffi (madvise from libc)";
  }
  try {
    const mode = Deno.readTextFileSync("/sys/kernel/mm/transparent_hugepage/enabled");
    if (mode.includes("[never]")) return "transparent huge pages are disabled (/sys/kernel/mm/transparent_hugepage)";
  } catch {
    return "no /sys/kernel/mm/transparent_hugepage (kernel without THP)";
  }
  return undefined;
}

/**
 * Advises the kernel to back the 2 MiB-aligned part of `buffer` with huge pages. Returns the bytes
 * advised (0 when it could not be done). Call it before the memory is written: pages already touched
 * keep their size until khugepaged collapses them.
 */
export function adviseHugePages(buffer: ArrayBufferLike): number {
  if (hugePagesUnavailable()) return 0;
  libc ??= Deno.dlopen("libc.so.6", {
    madvise: { parameters: ["pointer", "usize", "i32"], result: "i32" },
  }) as unknown as Libc;
  const start = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer as ArrayBuffer)));
  const end = start + BigInt(buffer.byteLength);
  const a = (start + HUGE - 1n) & ~(HUGE - 1n), b = end & ~(HUGE - 1n);
  if (b <= a) return 0;
  const rc = libc.symbols.madvise(Deno.UnsafePointer.create(a), b - a, MADV_HUGEPAGE);
  return rc === 0 ? Number(b - a) : 0;
}
