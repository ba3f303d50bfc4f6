/**
 * Tokenizer throughput: encodes 1 MiB of English text with each vocabulary and prints MB/s, with
 * `/proc/loadavg` on every line (the machine is shared: figures are only as good as the load allows).
 *
 * "cold" is the first encode with a fresh tokenizer (its word/segment caches start empty); "warm"
 * is the best of three further encodes of the same text. Each is given per wall-clock second and
 * per second of process CPU time (user + system, all threads): on a loaded machine the CPU figure
 * is the steadier one. Load time (vocabulary → tokenizer) is printed separately.
 *
 * The default text is the six evaluation passages of ../shared/models/eval (Python documentation,
 * 145 KB) plus the shared README files, repeated to 1 MiB; `--text FILE` uses any UTF-8 file
 * instead (repeated or cut to 1 MiB).
 *
 * `--shared DIR` reads the vocabularies (and default text) from DIR instead of ../shared (vocab-only
 * copies are enough: only the GGUF header is read).
 *
 *   deno run -A bench/tokenize.ts [--text FILE] [--vocab NAME,…] [--shared DIR]
 * @module
 */
import { parseArgs } from "node:util";
import process from "node:process";
import { openGguf } from "../lib/gguf.ts";
import { tokenizerFromGguf } from "../lib/tokenizer.ts";
import { sharedPath } from "../tests/testing.ts";

const VOCABS: Record<string, string> = {
  "llama-spm": "fixtures/tokenizer/ggml-vocab-llama-spm.gguf",
  "gpt-2": "fixtures/tokenizer/ggml-vocab-gpt-2.gguf",
  "pydoc4k": "models/pydoc11M/pydoc11M-f16.gguf",
  "stories260K": "models/stories260K/stories260K.gguf",
  "bpe512-llama-bpe": "fixtures/models/llama3-gqa.gguf",
  "bpe512-qwen2": "fixtures/models/qwen2.gguf",
  "bpe512-default": "fixtures/models/gptneox.gguf",
};
const MIB = 1 << 20;

const { values } = parseArgs({
  args: Deno.args,
  options: { text: { type: "string" }, vocab: { type: "string" }, shared: { type: "string" } },
});

/** Path of `rel` under --shared or ../shared; undefined when absent. */
function shared(rel: string): string | undefined {
  if (!values.shared) return sharedPath(rel);
  const p = `${values.shared}/${rel}`;
  try {
    Deno.statSync(p);
    return p;
  } catch {
    console.log(`  skipped: ${p} not found`);
    return undefined;
  }
}

function defaultText(): string | undefined {
  const dir = shared("models/eval");
  if (!dir) return undefined;
  const files = [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".txt")).map((e) => `${dir}/${e.name}`).sort();
  for (const rel of ["README.md", "fixtures/README.md", "models/README.md", "sparq.md"]) {
    const p = shared(rel);
    if (p) files.push(p);
  }
  return files.map((f) => Deno.readTextFileSync(f)).join("\n\n");
}

/** `s` repeated or cut to exactly `bytes` UTF-8 bytes (cut at a character boundary). */
function toSize(s: string, bytes: number): string {
  const enc = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes);
  for (let o = 0; o < bytes; o += enc.length) out.set(enc.subarray(0, Math.min(enc.length, bytes - o)), o);
  return new TextDecoder().decode(out).replace(/\uFFFD$/, "");
}

const base = values.text ? Deno.readTextFileSync(values.text) : defaultText();
if (!base) {
  console.log("no text: pass --text FILE (the default text lives in ../shared)");
  Deno.exit(0);
}
const text = toSize(base, MIB);
const mb = new TextEncoder().encode(text).length / 1e6;
const names = values.vocab ? values.vocab.split(",") : Object.keys(VOCABS);
const loadavg = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");

console.log(
  `text: ${values.text ?? "shared eval passages + READMEs"}, ${mb.toFixed(3)} MB (${base.length} chars unique)`,
);
console.log("vocab               n_vocab  load ms  tokens   MB/s cold (wall/cpu)  MB/s warm (wall/cpu)  loadavg");
for (const name of names) {
  const rel = VOCABS[name];
  if (!rel) throw new Error(`unknown vocab ${name} (known: ${Object.keys(VOCABS).join(", ")})`);
  const path = shared(rel);
  if (!path) continue;
  const t0 = performance.now();
  const tok = tokenizerFromGguf(await openGguf(path));
  const loadMs = performance.now() - t0;
  let ids: number[] = [];
  /** Encodes the text once; returns [wall MB/s, CPU MB/s]. */
  const run = (): [number, number] => {
    const c0 = process.cpuUsage(), w0 = performance.now();
    ids = tok.encode(text);
    const c = process.cpuUsage(c0);
    return [mb / ((performance.now() - w0) / 1000), mb / ((c.user + c.system) / 1e6)];
  };
  const cold = run();
  const warm = [run(), run(), run()].reduce((a, b) => [Math.max(a[0], b[0]), Math.max(a[1], b[1])]);
  const fmt = ([w, c]: number[]) => `${w.toFixed(1)} / ${c.toFixed(1)}`.padStart(20);
  console.log(
    `${name.padEnd(18)} ${String(tok.nVocab).padStart(8)} ${loadMs.toFixed(0).padStart(8)} ${
      String(ids.length).padStart(7)
    } ${fmt(cold)}  ${fmt(warm)}  ${loadavg()}`,
  );
}
