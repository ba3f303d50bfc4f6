/**
 * Builds every AssemblyScript entry file `asm/*.ts` (except this script) into ONE WebAssembly module, twice:
 * `asm/build/sparq_simd.wasm` (SIMD) and `asm/build/sparq_relaxed.wasm` (SIMD + relaxed SIMD). The memory is
 * imported and shared (created by `lib/wasm_runtime.ts`), the runtime is the stub (kernels allocate nothing).
 * The output is committed and CI checks that a rebuild is byte-identical, so the argument list is fixed and the
 * entry files are sorted.
 *
 * Run with `deno task build`.
 * @module
 */
import asc from "assemblyscript/asc";

const asmDir = new URL("./", import.meta.url);
const root = new URL("../", asmDir).pathname;

/** Entry files relative to the repository root, sorted so the module layout does not depend on readdir order. */
function entryFiles(): string[] {
  const names: string[] = [];
  for (const e of Deno.readDirSync(asmDir)) {
    if (e.isFile && e.name.endsWith(".ts") && e.name !== "build.ts") names.push(`asm/${e.name}`);
  }
  return names.sort();
}

const common = [
  "--runtime",
  "stub",
  "--importMemory",
  "--sharedMemory",
  "--initialMemory",
  "1",
  "--maximumMemory",
  "65536",
  "--noExportMemory",
  "-O3",
  "--noAssert",
  "--use",
  "abort=",
];

const builds: [string, string][] = [
  ["asm/build/sparq_simd.wasm", "simd,threads"],
  ["asm/build/sparq_relaxed.wasm", "simd,relaxed-simd,threads"],
];

Deno.chdir(root);
const entries = entryFiles();
for (const [out, features] of builds) {
  const { error, stderr } = await asc.main([...entries, ...common, "--enable", features, "-o", out]);
  if (error) {
    console.error(stderr.toString());
    console.error(`asm/build.ts: building ${out} failed: ${error.message}`);
    Deno.exit(1);
  }
  console.log(`${out}: ${Deno.statSync(out).size} bytes from ${entries.length} entry files`);
}
