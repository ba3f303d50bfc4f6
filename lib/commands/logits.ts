/**
 * `sparq logits`: the next-token logits at every position of an input, for scripts, for checking
 * against llama.cpp and for `compare`. The input is evaluated as llama.cpp does (one prompt batch);
 * with a non-dense `--attention`, positions after `--prefix N` are evaluated one token at a time
 * (decode steps), so the approximation applies as during generation.
 * @module
 */
import { type Command, intFlag, listFlag, parseFlags } from "./args.ts";
import { SparqError } from "../errors.ts";
import { loadModel } from "../model.ts";
import { ATTENTION_FLAGS, attentionFromFlags } from "./generate.ts";
import { resolveModelPath } from "../model_cache.ts";
import { openGguf } from "../gguf.ts";
import { tokenizerFromGguf } from "../tokenizer.ts";
import { parseCacheType } from "../kv_cache.ts";

const HELP = `sparq logits — next-token logits at every position of an input

usage: sparq logits -m MODEL (-p TEXT | --ids 1,2,3) [flags]

  -m, --model PATH      GGUF file
  -p, --prompt TEXT     input text (tokenized with BOS unless --no-bos)
      --ids LIST        input token ids, comma-separated (used as given)
  -c, --ctx N           context length (default: the input length)
  -t, --threads N       kernel threads (default: all cores)
      --cache-type T    KV cache element type: f32 (default) or f16 (K, V and SparQ's K copy as f16)
      --attention SPEC  attention mode (see sparq generate --help); --sparq-* flags as there
      --prefix N        evaluate the first N positions as one batch and the rest one token at a
                        time (default: all positions in one batch for dense, N = 1 otherwise)
      --top N           print the N most likely next tokens with log-probabilities instead of logits
      --json            one JSON object per line and position:
                        {"pos": i, "id": input id, "logits": [...]} or {"pos", "id", "top": [[id, logprob], …]}

Without --json: one line per position with the input token and the 5 (or --top) most likely next tokens.`;

const FLAGS = {
  model: { type: "string", short: "m" },
  prompt: { type: "string", short: "p" },
  ids: { type: "string" },
  ctx: { type: "string", short: "c" },
  threads: { type: "string", short: "t" },
  "cache-type": { type: "string" },
  ...ATTENTION_FLAGS,
  prefix: { type: "string" },
  top: { type: "string" },
  json: { type: "boolean" },
  "no-bos": { type: "boolean" },
} as const;

/** The `n` largest entries of `row` as `[id, logprob]`, most likely first. */
export function topLogprobs(row: Float32Array, n: number): [number, number][] {
  let mx = -Infinity;
  for (const x of row) if (x > mx) mx = x;
  let sum = 0;
  for (const x of row) sum += Math.exp(x - mx);
  const lse = mx + Math.log(sum);
  const ids = Array.from(row.keys()).sort((a, b) => row[b] - row[a] || a - b).slice(0, n);
  return ids.map((id) => [id, row[id] - lse]);
}

/** The `logits` subcommand. */
export const command: Command = {
  name: "logits",
  summary: "next-token logits (or top-N log-probs) at every position of an input",
  help: HELP,
  async run(args: string[]): Promise<number> {
    const { values: v } = parseFlags("logits", args, FLAGS);
    if (v.model === undefined) throw new SparqError("logits: -m MODEL is required (see sparq logits --help)");
    if ((v.prompt === undefined) === (v.ids === undefined)) {
      throw new SparqError("logits: give exactly one of -p TEXT or --ids LIST");
    }
    const threads = v.threads === undefined ? undefined : intFlag("-t", v.threads, 1, 1, 256);
    const top = v.top === undefined ? undefined : intFlag("--top", v.top, 5, 1);
    const attention = attentionFromFlags(v);
    const cacheType = parseCacheType(v["cache-type"]);
    let ids: number[] | undefined;
    if (v.ids !== undefined) {
      ids = listFlag(v.ids, []).map((s) => intFlag("--ids", s, 0, 0));
      if (ids.length === 0) throw new SparqError("--ids: no token ids given");
    }
    const ctxFlag = v.ctx === undefined ? undefined : intFlag("-c", v.ctx, 0, 1);
    // Tokenize first (the header alone holds the vocabulary) so the context can be the input's length.
    const path = resolveModelPath(v.model);
    const input = ids ??
      tokenizerFromGguf(await openGguf(path)).encode(v.prompt!, { addSpecial: !v["no-bos"], parseSpecial: true });
    if (input.length === 0) throw new SparqError("logits: the input has no tokens");
    if (ctxFlag !== undefined && input.length > ctxFlag) {
      throw new SparqError(`logits: the input has ${input.length} tokens, more than the context of ${ctxFlag} (-c)`);
    }
    const model = await loadModel(path, { threads, ctx: ctxFlag ?? input.length, attention, cacheType });
    try {
      const dense = attention.kind === "dense";
      const prefix = intFlag("--prefix", v.prefix, dense ? input.length : 1, 1, input.length);
      const nVocab = model.config.nVocab;
      const enc = new TextEncoder();
      const write = (s: string) => Deno.stdout.writeSync(enc.encode(s));
      const print = (pos: number, row: Float32Array) => {
        const id = input[pos];
        if (v.json) {
          const obj = top === undefined
            ? { pos, id, logits: Array.from(row) }
            : { pos, id, top: topLogprobs(row, top) };
          write(JSON.stringify(obj) + "\n");
        } else {
          const best = topLogprobs(row, top ?? 5)
            .map(([t, lp]) => `${t} ${JSON.stringify(model.tokenizer.decode([t]))} ${lp.toFixed(4)}`)
            .join("  ");
          write(`${pos}\t${id} ${JSON.stringify(model.tokenizer.decode([id]))}\t→ ${best}\n`);
        }
      };
      const first = model.evaluate(input.slice(0, prefix), { allLogits: true });
      for (let i = 0; i < prefix; i++) print(i, first.subarray(i * nVocab, (i + 1) * nVocab));
      for (let i = prefix; i < input.length; i++) print(i, model.evaluate([input[i]]));
      return 0;
    } finally {
      model.close();
    }
  },
};
