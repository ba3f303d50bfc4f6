/**
 * `sparq generate`: load a model, tokenize a prompt, stream a continuation to stdout and the
 * statistics (load time, prompt and decode tokens/s) to stderr; `--json` writes JSON lines instead.
 * @module
 */
import { type Command, floatFlag, intFlag, parseFlags } from "./args.ts";
import { SparqError } from "../errors.ts";
import { type LanguageModel, openModel, parseBackend } from "../backend.ts";
import { parseCacheType } from "../kv_cache.ts";
import { generate, type GenerateResult } from "../generate.ts";
import { DEFAULT_SAMPLER, type SamplerOptions, validateSamplerOptions } from "../sampler.ts";
import { type AttentionSpec, attentionSpecFromFlags } from "../attention/spec.ts";
import { resolveModelPath } from "../model_cache.ts";

const HELP = `sparq generate — generate text with a GGUF model

usage: sparq generate -m MODEL [-p TEXT | -f FILE | (prompt on stdin)] [flags]

  -m, --model PATH        GGUF file (or hf:/URL reference already fetched with sparq pull)
  -p, --prompt TEXT       prompt text
  -f, --file PATH         read the prompt from a file (stdin when neither -p nor -f is given)
  -n, --n-predict N       tokens to generate (default 128; 0 = only evaluate the prompt)
  -c, --ctx N             context length (default: the model's, at most 4096)
  -t, --threads N         kernel threads (default: all cores)
  -b, --batch N           prompt-processing batch (default 512)
      --cache-type T      KV cache element type: f32 (default) or f16 (K, V and SparQ's K copy stored
                          as f16: half the cache memory and attention reads; both backends)
      --backend B         wasm (default: WebAssembly SIMD on the CPU) or webgpu (needs deno run
                          --unstable-webgpu; dense and sparq attention)
      --temp X            temperature (default 0.8; 0 = greedy)
      --top-k N           top-k (default 40; 0 = off)
      --top-p X           top-p (default 0.95; 1 = off)
      --min-p X           min-p (default 0.05; 0 = off)
      --repeat-penalty X  repetition penalty (default 1.0 = off)
      --repeat-last-n N   tokens the penalty looks back (default 64; -1 = all)
      --seed N            RNG seed (default: random; printed in the statistics)
      --stop STR          stop when the output contains STR (repeatable; STR is not printed)
      --no-bos            do not add the BOS token
      --no-display-prompt do not print the prompt before the generated text
      --json              JSON lines: {"id","text"} per generated token, then a summary object
      --attention SPEC    attention mode: dense (default), sparq[:ratio=1/8,r=…,k=…,window=…],
                          h2o:…, streaming:…, topk:… (prefill is always dense)
      --sparq-ratio R     SparQ compression (e.g. 1/8); --sparq-r N, --sparq-k N, --sparq-window N,
                          --sparq-reallocate on|off (only with --attention sparq)

Sampling follows llama.cpp's chain: repetition penalty → top-k → top-p → min-p → temperature.
With --backend webgpu it runs on the GPU, a few steps ahead of the text (--top-k 0 or above 1024:
on the CPU, with the logits read back per token, several times slower).
Generation stops at an end-of-generation/control token, after -n tokens, at a --stop string, when
the context is full (a message on stderr says so), or on Ctrl-C (statistics are still printed).
A prompt longer than the context is an error (exit 2).`;

/** `--attention` and the `--sparq-*` flags (generate and logits); see {@link attentionFromFlags}. */
export const ATTENTION_FLAGS = {
  attention: { type: "string" },
  "sparq-ratio": { type: "string" },
  "sparq-r": { type: "string" },
  "sparq-k": { type: "string" },
  "sparq-window": { type: "string" },
  "sparq-reallocate": { type: "string" },
} as const;

const FLAGS = {
  model: { type: "string", short: "m" },
  prompt: { type: "string", short: "p" },
  file: { type: "string", short: "f" },
  "n-predict": { type: "string", short: "n" },
  ctx: { type: "string", short: "c" },
  threads: { type: "string", short: "t" },
  batch: { type: "string", short: "b" },
  "cache-type": { type: "string" },
  backend: { type: "string" },
  temp: { type: "string" },
  "top-k": { type: "string" },
  "top-p": { type: "string" },
  "min-p": { type: "string" },
  "repeat-penalty": { type: "string" },
  "repeat-last-n": { type: "string" },
  seed: { type: "string" },
  stop: { type: "string", multiple: true },
  "no-bos": { type: "boolean" },
  "no-display-prompt": { type: "boolean" },
  json: { type: "boolean" },
  ...ATTENTION_FLAGS,
} as const;

type Values = ReturnType<typeof parseFlags<typeof FLAGS>>["values"];

/** The attention spec of `--attention` and the `--sparq-*` flags. */
export function attentionFromFlags(v: Partial<Record<string, string | boolean | string[] | undefined>>): AttentionSpec {
  return attentionSpecFromFlags((v.attention as string | undefined) ?? "dense", {
    ratio: v["sparq-ratio"] as string | undefined,
    r: v["sparq-r"] as string | undefined,
    k: v["sparq-k"] as string | undefined,
    window: v["sparq-window"] as string | undefined,
    reallocate: v["sparq-reallocate"] as string | undefined,
  });
}

/** Reads the prompt from -p, -f or stdin. */
async function readPrompt(v: Values): Promise<string> {
  if (v.prompt !== undefined && v.file !== undefined) throw new SparqError("generate: give either -p or -f, not both");
  if (v.prompt !== undefined) return v.prompt;
  if (v.file !== undefined) {
    try {
      return await Deno.readTextFile(v.file);
    } catch (e) {
      throw new SparqError(`-f ${v.file}: cannot read (${(e as Error).message})`);
    }
  }
  if (Deno.stdin.isTerminal()) throw new SparqError("generate: no prompt (use -p TEXT, -f FILE or pipe it on stdin)");
  return await new Response(Deno.stdin.readable).text();
}

function samplerFromFlags(v: Values): SamplerOptions {
  const o: SamplerOptions = {
    temp: floatFlag("--temp", v.temp, DEFAULT_SAMPLER.temp, 0),
    topK: intFlag("--top-k", v["top-k"], DEFAULT_SAMPLER.topK, 0),
    topP: floatFlag("--top-p", v["top-p"], DEFAULT_SAMPLER.topP, 0, 1),
    minP: floatFlag("--min-p", v["min-p"], DEFAULT_SAMPLER.minP, 0, 1),
    repeatPenalty: floatFlag("--repeat-penalty", v["repeat-penalty"], DEFAULT_SAMPLER.repeatPenalty, 0),
    repeatLastN: intFlag("--repeat-last-n", v["repeat-last-n"], DEFAULT_SAMPLER.repeatLastN, -1),
    seed: intFlag("--seed", v.seed, (Math.random() * 0x100000000) >>> 0, 0, 0xffffffff),
  };
  validateSamplerOptions(o);
  return o;
}

function rate(tokens: number, ms: number): string {
  return ms > 0 ? (tokens / (ms / 1000)).toFixed(2) : "-";
}

/** One stats block for stderr. */
function statsText(model: LanguageModel, r: GenerateResult, seed: number): string {
  const stop = {
    eos: "end of generation token",
    length: "-n reached",
    stop: "stop string",
    context: `context full (${model.nCtx} positions; use a larger -c)`,
    interrupted: "interrupted",
  }[r.stopReason];
  return [
    `sparq: load ${
      model.loadSeconds.toFixed(2)
    } s (${model.config.arch}, ${model.description}, ctx ${model.nCtx}, attention ${model.attentionName}, seed ${seed})`,
    `sparq: prompt ${r.promptTokens} tokens in ${(r.promptMs / 1000).toFixed(2)} s (${
      rate(r.promptTokens, r.promptMs)
    } tok/s)`,
    `sparq: generated ${r.tokens.length} tokens, decode ${r.decodeTokens} in ${(r.decodeMs / 1000).toFixed(2)} s (${
      rate(r.decodeTokens, r.decodeMs)
    } tok/s); stopped: ${stop}`,
    ...(model.backend === "webgpu"
      ? [
        `sparq: sampled on the ${
          r.deviceSampled
            ? "GPU"
            : "CPU (--top-k 0 or above 1024, SPARQ_GPU_SAMPLE=0 or no prompt: logits read back per token)"
        }`,
      ]
      : []),
  ].join("\n");
}

/** The `generate` subcommand. */
export const command: Command = {
  name: "generate",
  summary: "generate text from a prompt (streams to stdout, statistics to stderr)",
  help: HELP,
  async run(args: string[]): Promise<number> {
    const { values: v } = parseFlags("generate", args, FLAGS);
    if (v.model === undefined) throw new SparqError("generate: -m MODEL is required (see sparq generate --help)");
    const nPredict = intFlag("-n", v["n-predict"], 128, 0);
    const ctx = v.ctx === undefined ? undefined : intFlag("-c", v.ctx, 0, 1);
    const threads = v.threads === undefined ? undefined : intFlag("-t", v.threads, 1, 1, 256);
    const batch = v.batch === undefined ? undefined : intFlag("-b", v.batch, 512, 1);
    const sampler = samplerFromFlags(v);
    const attention = attentionFromFlags(v);
    const cacheType = parseCacheType(v["cache-type"]);
    const backend = parseBackend(v.backend);
    const stop = v.stop ?? [];
    const text = await readPrompt(v);

    const model = await openModel(resolveModelPath(v.model), { backend, threads, ctx, batch, attention, cacheType });
    const enc = new TextEncoder();
    const write = (s: string) => Deno.stdout.writeSync(enc.encode(s));
    const abort = new AbortController();
    const onSigint = () => abort.abort();
    Deno.addSignalListener("SIGINT", onSigint);
    try {
      const prompt = model.tokenizer.encode(text, { addSpecial: !v["no-bos"], parseSpecial: true });
      if (prompt.length === 0) throw new SparqError("generate: the prompt is empty (and --no-bos leaves no token)");
      if (prompt.length > model.nCtx) {
        throw new SparqError(
          `generate: the prompt has ${prompt.length} tokens, more than the context of ${model.nCtx} (use a larger -c or a shorter prompt)`,
        );
      }
      if (!v.json && !v["no-display-prompt"]) write(text);
      const r = await generate(model, prompt, {
        maxTokens: nPredict,
        sampler,
        stop,
        signal: abort.signal,
        onText: v.json ? undefined : write,
        onToken: v.json ? (id, t) => write(JSON.stringify({ id, text: t }) + "\n") : undefined,
      });
      if (v.json) {
        write(
          JSON.stringify({
            done: true,
            stop: r.stopReason,
            text: r.text,
            prompt_tokens: r.promptTokens,
            generated_tokens: r.tokens.length,
            load_s: model.loadSeconds,
            prompt_ms: r.promptMs,
            prompt_tokens_per_s: r.promptMs > 0 ? r.promptTokens / (r.promptMs / 1000) : null,
            decode_tokens: r.decodeTokens,
            decode_ms: r.decodeMs,
            decode_tokens_per_s: r.decodeMs > 0 ? r.decodeTokens / (r.decodeMs / 1000) : null,
            attention: model.attentionName,
            backend: model.backend,
            seed: sampler.seed,
          }) + "\n",
        );
      } else {
        write("\n");
      }
      console.error(statsText(model, r, sampler.seed));
      return 0;
    } finally {
      Deno.removeSignalListener("SIGINT", onSigint);
      model.close();
    }
  },
};
