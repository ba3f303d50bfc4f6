/**
 * `sparq detokenize`: token ids → text with a model's tokenizer, as llama.cpp's
 * `llama_detokenize` renders it.
 * @module
 */
import { type Command, parseFlags } from "./args.ts";
import { SparqError } from "../errors.ts";
import { openGguf } from "../gguf.ts";
import { tokenizerFromGguf } from "../tokenizer.ts";

const HELP = `sparq detokenize — turn token ids back into text with a model's tokenizer

usage: sparq detokenize -m MODEL [--special] [--remove-special] [-n] IDS…

  -m, --model MODEL    GGUF file whose tokenizer.ggml.* metadata defines the tokenizer
  IDS…                 token ids, as separate arguments and/or comma-separated lists;
                       "[1, 403, 407]" (the output of sparq tokenize --ids) works too
      --special        render control tokens as their text ("<s>"); by default they
                       produce no text, as in llama.cpp
      --remove-special drop a leading BOS and a trailing EOS when the model adds them
  -n, --no-newline     do not print a newline after the text
  -h, --help           this text

The text is llama.cpp's: for SentencePiece vocabularies the first token loses one leading space
(the dummy prefix; when the first token is BOS nothing is lost, so "1 403" gives " Once"); for
most BPE vocabularies spaces before punctuation are cleaned up (" ," → ","), as llama.cpp does.
An id outside the vocabulary is an error (exit 2).`;

/** Parses ids given as arguments ("1 2", "1,2", "[1, 2]"). */
export function parseIds(args: string[]): number[] {
  const items = args.join(" ").split(/[\s,\[\]]+/).filter((s) => s.length > 0);
  return items.map((s) => {
    if (!/^-?\d+$/.test(s)) throw new SparqError(`detokenize: "${s}" is not a token id (integers expected)`);
    return Number(s);
  });
}

/** The `detokenize` subcommand. */
export const command: Command = {
  name: "detokenize",
  summary: "token ids → text with a model's tokenizer (as llama.cpp renders it)",
  help: HELP,
  async run(args) {
    const { values: v, positionals } = parseFlags("detokenize", args, {
      model: { type: "string", short: "m" },
      special: { type: "boolean" },
      "remove-special": { type: "boolean" },
      "no-newline": { type: "boolean", short: "n" },
    }, true);
    if (!v.model) throw new SparqError("detokenize: -m MODEL is required");
    const ids = parseIds(positionals);
    if (ids.length === 0) throw new SparqError("detokenize: no token ids given");
    const tok = tokenizerFromGguf(await openGguf(v.model));
    const bad = ids.find((id) => id < 0 || id >= tok.nVocab);
    if (bad !== undefined) {
      throw new SparqError(`detokenize: token id ${bad} is out of range (${v.model} has ${tok.nVocab} tokens)`);
    }
    const text = tok.decode(ids, { unparseSpecial: v.special ?? false, removeSpecial: v["remove-special"] ?? false });
    await Deno.stdout.write(new TextEncoder().encode(v["no-newline"] ? text : text + "\n"));
    return 0;
  },
};
