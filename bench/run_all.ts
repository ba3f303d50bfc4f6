/**
 * `deno task bench`: the benchmarks that need nothing but this checkout and ../shared, one after the
 * other (each prints `/proc/loadavg` with its figures): bandwidth probe, kernels (1 and 2 threads),
 * attention (dense vs SparQ), tokenizers. The model-level ones take extra setup and run alone:
 *
 *   deno run -A bench/decode.ts      # vs native llama.cpp (cd bench/native && npm install first)
 *   deno run -A cli.ts profile …     # see README
 *   deno run -A --unstable-webgpu bench/webgpu.ts --model M.gguf
 * @module
 */
const here = new URL("./", import.meta.url).pathname;
const runs: string[][] = [
  ["bandwidth.ts"],
  ["kernels.ts", "--threads", "1,2", "--model", "all"],
  ["attention.ts"],
  ["tokenize.ts"],
];
for (const [script, ...args] of runs) {
  console.log(`\n## bench/${script} ${args.join(" ")}`);
  const st = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", here + script, ...args] }).spawn().status;
  if (!st.success) Deno.exit(st.code);
}
