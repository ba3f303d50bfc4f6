/**
 * `sparq synth`: writes a random-weight model of a real shape (see lib/synth.ts).
 * @module
 */
import { type Command, intFlag, parseFlags } from "./args.ts";
import { SparqError } from "../errors.ts";
import { SHAPES, SYNTH_TYPES, synthModel } from "../synth.ts";
import type { Arch } from "../model_config.ts";
import { formatBytes, ProgressBar } from "../progress.ts";

const HELP = `sparq synth — write a random-weight GGUF model of a real shape (for benchmarks)

usage: sparq synth --shape NAME --type TYPE -o FILE [--arch ARCH] [--seed N] [--vocab FILE.gguf]

  --shape NAME     ${Object.keys(SHAPES).join(", ")}
  --arch ARCH      llama, gemma, qwen2 or gptneox; default: the shape's own (llama for tiny)
  --type TYPE      ${Object.keys(SYNTH_TYPES).join(", ")}: every 2-D weight (token_embd and output
                   included) in TYPE, norms and biases F32 (llama-quantize --pure layout)
  -o, --output F   output file (written to F.tmp-<pid>, renamed when complete)
  --seed N         random seed (default 1); the same seed gives the same file
  --vocab F.gguf   copy the tokenizer (tokenizer.ggml.*) from F.gguf; its size sets n_vocab.
                   Default: a generated SentencePiece-style vocabulary of the shape's size

Weights are N(0, 0.02), norm weights 1, biases 0. A progress bar is drawn on stderr when it is a
terminal.

shapes:
${
  Object.entries(SHAPES).map(([k, s]) =>
    `  ${k.padEnd(15)} ${(s.arch ?? "any").padEnd(8)} dim ${s.nEmbd}, ${s.nLayer} layers, ${s.nHead} heads, ` +
    `${s.nHeadKv} KV heads, ffn ${s.nFf}, vocab ${s.nVocab}, ctx ${s.ctx} (${s.source})`
  ).join("\n")
}`;

/** The `synth` subcommand. */
export const command: Command = {
  name: "synth",
  summary: "write a random-weight model of a real shape (tinyllama-1.1b, llama2-7b, …)",
  help: HELP,
  async run(args) {
    const { values } = parseFlags("synth", args, {
      shape: { type: "string" },
      arch: { type: "string" },
      type: { type: "string" },
      output: { type: "string", short: "o" },
      seed: { type: "string" },
      vocab: { type: "string" },
    });
    if (!values.shape) throw new SparqError("synth: --shape is required (see sparq synth --help)");
    if (!values.type) throw new SparqError("synth: --type is required (see sparq synth --help)");
    if (!values.output) throw new SparqError("synth: -o FILE is required (see sparq synth --help)");
    const shape = SHAPES[values.shape];
    const arch = (values.arch ?? shape?.arch ?? "llama") as Arch;
    let bar: ProgressBar | undefined; // made on the first report, which gives the total
    // Ctrl-C stops after the current chunk; the writer then removes its temporary file.
    const interrupted = new AbortController();
    const onSigint = () => interrupted.abort();
    Deno.addSignalListener("SIGINT", onSigint);
    const size = await synthModel(values.output, {
      arch,
      shape: values.shape,
      type: values.type.toLowerCase(),
      seed: intFlag("--seed", values.seed, 1, 0, 2 ** 31 - 1),
      vocab: values.vocab,
      onProgress: (done, total) => {
        bar ??= new ProgressBar({ label: values.output!, total });
        bar.update(done);
        if (done === total) bar.finish();
      },
      signal: interrupted.signal,
    }).catch((e) => {
      if (interrupted.signal.aborted) throw new SparqError(`synth: interrupted, ${values.output} not written`, 130);
      throw e;
    }).finally(() => Deno.removeSignalListener("SIGINT", onSigint));
    console.log(`${values.output}: ${values.shape} ${arch} ${values.type.toUpperCase()}, ${formatBytes(size)}`);
    return 0;
  },
};
