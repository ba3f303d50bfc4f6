/**
 * `sparq profile`: decode tokens/s, bytes per token and op times against the bandwidth wall, for
 * each context length × attention mode × thread count (see lib/profile.ts).
 * @module
 */
import { type Command, intFlag, listFlag, parseFlags, splitAttentionList } from "./args.ts";
import { SparqError } from "../errors.ts";
import { resolveModelPath } from "../model_cache.ts";
import { parseCacheType } from "../kv_cache.ts";
import { type Backend, type FillMode, formatProfileTable, profileSvg, runProfile } from "../profile.ts";

const HELP = `sparq profile -m MODEL [flags]

For every combination of context length, attention mode and thread count: fill the KV cache to the
context length, then time decode steps. Prints a table (llama-bench style): tokens/s, bytes read per
token (weights / K / V / other), achieved GB/s and its % of a bandwidth probe run in the same process,
time per op group (matvec, attention, other kernels, untimed JS) from the per-kernel timers, and for
sparse modes the attention transfer ratio vs dense (predicted by formula, and measured) and the
attention speedup. List dense first in --attention to get the measured ratio and speedup.

  -m, --model MODEL       GGUF path, or hf:OWNER/REPO/FILE.gguf / URL already pulled
  -c, --ctx LIST          context lengths (default 512,4096,16384)
      --attention LIST    attention specs (default dense,sparq:ratio=1/8); options of a spec may
                          follow it after commas: dense,sparq:r=16,k=256
  -t, --threads LIST      thread counts (default: all cores)
      --cache-type T      KV cache element type: f32 (default) or f16 (K, V and SparQ's K copy stored
                          as f16: half the cache memory and attention reads; both backends)
      --backend B         wasm (default) or webgpu (needs --unstable-webgpu; random fill only; op
                          times are each op kind replayed alone on the GPU, probe is the GPU's)
  -n, --tokens N          decode steps timed per combination (default 16)
      --fill MODE         prompt: process random tokens (real prefill, slow at long contexts);
                          random: write random K/V straight into the cache (fast; labelled as such)
      --seed N            seed of the random tokens / cache contents (default 1)
      --probe-mb N        buffer of the bandwidth probe in MiB (default 1024; keep it far above the L3)
      --huge-pages        back the wasm memories (model, KV cache, probe) with transparent huge pages
                          (Linux; needs --allow-ffi): fewer TLB misses on scattered KV rows
      --json              print the report as JSON instead of the table
      --svg FILE          write tokens/s vs context (log x) with each mode's bandwidth limit

Permissions: --allow-read (model), --allow-write=FILE for --svg, --unstable-webgpu for --backend webgpu,
--allow-ffi for --huge-pages.`;

function intList(flag: string, value: string | undefined, def: number[], min: number): number[] {
  if (value === undefined) return def;
  const items = listFlag(value, []);
  if (items.length === 0) throw new SparqError(`${flag}: expected a comma-separated list of integers`);
  return items.map((v) => intFlag(flag, v, 0, min));
}

/** The `profile` subcommand. */
export const command: Command = {
  name: "profile",
  summary: "decode speed, bytes/token and op times vs context length and the bandwidth limit",
  help: HELP,
  async run(args) {
    const { values: v } = parseFlags("profile", args, {
      model: { type: "string", short: "m" },
      ctx: { type: "string", short: "c" },
      attention: { type: "string", multiple: true },
      threads: { type: "string", short: "t" },
      "cache-type": { type: "string" },
      backend: { type: "string" },
      tokens: { type: "string", short: "n" },
      fill: { type: "string" },
      seed: { type: "string" },
      "probe-mb": { type: "string" },
      "huge-pages": { type: "boolean" },
      json: { type: "boolean" },
      svg: { type: "string" },
    });
    if (!v.model) throw new SparqError("profile: -m/--model is required");
    const backend = (v.backend ?? "wasm") as Backend;
    if (backend !== "wasm" && backend !== "webgpu") {
      throw new SparqError(`--backend ${backend}: expected wasm or webgpu`);
    }
    const cacheType = parseCacheType(v["cache-type"]);
    const fill = (v.fill ?? (backend === "webgpu" ? "random" : "prompt")) as FillMode;
    if (fill !== "prompt" && fill !== "random") throw new SparqError(`--fill ${v.fill}: expected prompt or random`);
    const attention = splitAttentionList(v.attention ?? ["dense,sparq:ratio=1/8"]);
    if (attention.length === 0) throw new SparqError("--attention: no mode given");
    const contexts = intList("--ctx", v.ctx, [512, 4096, 16384], 1);
    const threads = intList("--threads", v.threads, [navigator.hardwareConcurrency ?? 1], 1);
    const nTokens = intFlag("--tokens", v.tokens, 16, 1, 100_000);
    const seed = intFlag("--seed", v.seed, 1, 0);
    const probeMb = intFlag("--probe-mb", v["probe-mb"], 1024, 16, 3072);

    const report = await runProfile({
      model: resolveModelPath(v.model),
      contexts,
      attention,
      threads,
      backend,
      cacheType,
      nTokens,
      fill,
      seed,
      probeBytes: probeMb << 20,
      hugePages: v["huge-pages"] ?? false,
      log: (line) => console.error(line),
    });
    console.log(v.json ? JSON.stringify(report, null, 2) : formatProfileTable(report));
    if (v.svg) {
      // Never leave a half-written plot under the requested name.
      const tmp = `${v.svg}.tmp-${Deno.pid}`;
      await Deno.writeTextFile(tmp, profileSvg(report));
      await Deno.rename(tmp, v.svg);
      console.error(`wrote ${v.svg}`);
    }
    return 0;
  },
};
