/**
 * The generation loop shared by `sparq generate`, `compare` and the tests: evaluate the prompt in
 * batches, then sample → stream text → evaluate one token at a time, until a stop condition.
 *
 * Stops (reported as `stopReason`):
 * - `eos`: the model produced an end-of-generation or other control token (not printed);
 * - `length`: `maxTokens` were generated;
 * - `stop`: the output contains one of the stop strings (the text is cut before it);
 * - `context`: the KV cache is full (the last sampled token is printed but cannot be evaluated);
 * - `interrupted`: the abort signal fired (Ctrl-C in the CLI).
 * @module
 */
import type { ModelConfig } from "./model_config.ts";
import type { Tokenizer } from "./tokenizer.ts";
import { Sampler, type SamplerOptions } from "./sampler.ts";
import type { DeviceSampling } from "./webgpu/sampling.ts";

/**
 * What generation needs from a model: the wasm `Model` (synchronous) and the `LanguageModel` of
 * lib/backend.ts (WebGPU, asynchronous) both fit.
 */
export interface GenerationModel {
  readonly config: ModelConfig;
  readonly tokenizer: Tokenizer;
  readonly pos: number;
  readonly nCtx: number;
  evaluate(tokens: readonly number[]): Float32Array | Promise<Float32Array>;
  /** Optional: sampling on the device, evaluating ahead (see lib/webgpu/sampling.ts). */
  sampleOnDevice?(prompt: readonly number[], sampler: Sampler, maxSamples: number): DeviceSampling | undefined;
}

/** Options of {@link generate}. */
export interface GenerateOptions {
  /** Most tokens to generate (0: only evaluate the prompt). */
  maxTokens: number;
  sampler: SamplerOptions;
  /** Stop strings: generation ends when the text contains one; it is not printed. */
  stop?: string[];
  /** Text as soon as it is final (held back only while it could be the start of a stop string). */
  onText?: (text: string) => void;
  /** Every generated token with the text it decoded to (before stop-string handling). */
  onToken?: (id: number, text: string) => void;
  /** Ends generation cleanly when aborted (checked between tokens). */
  signal?: AbortSignal;
}

/** Why generation ended; see the module comment. */
export type StopReason = "eos" | "length" | "stop" | "context" | "interrupted";

/** The outcome of {@link generate}. */
export interface GenerateResult {
  /** Generated ids (an end-of-generation token that stopped the loop is not included). */
  tokens: number[];
  /** Generated text as printed (cut before a stop string). */
  text: string;
  stopReason: StopReason;
  promptTokens: number;
  /** Milliseconds evaluating the prompt. */
  promptMs: number;
  /** Tokens evaluated one at a time after the prompt, and the milliseconds they took. */
  decodeTokens: number;
  decodeMs: number;
  /** Milliseconds spent sampling on the CPU (all steps; 0 when the device sampled). */
  sampleMs: number;
  /** Whether the model's device sampled (the GPU: no logits read back). */
  deviceSampled: boolean;
}

/**
 * Generates a continuation of `prompt` (token ids) with `model`, starting from the model's current
 * position (call `model.reset()` first for a fresh sequence).
 */
export async function generate(
  model: GenerationModel,
  prompt: readonly number[],
  opts: GenerateOptions,
): Promise<GenerateResult> {
  const tok = model.tokenizer;
  const sampler = new Sampler(opts.sampler, model.config.nVocab);
  const stopFilter = new StopFilter(opts.stop ?? [], (t) => opts.onText?.(t));
  const decoder = tok.streamDecoder();
  const history = [...prompt];
  const result: GenerateResult = {
    tokens: [],
    text: "",
    stopReason: "length",
    promptTokens: prompt.length,
    promptMs: 0,
    decodeTokens: 0,
    decodeMs: 0,
    sampleMs: 0,
    deviceSampled: false,
  };
  // Positions used: the prompt, then every generated token that was evaluated (decodeTokens).
  const pos0 = model.pos + prompt.length;

  let t0 = performance.now();
  const device = opts.maxTokens > 0 ? model.sampleOnDevice?.(prompt, sampler, opts.maxTokens) : undefined;
  let logits: Float32Array = new Float32Array(0);
  let first: number | undefined;
  if (device) {
    // The prompt's time includes its sampled token (the first one read back).
    result.deviceSampled = true;
    first = await device.next();
  } else if (prompt.length > 0) {
    logits = await model.evaluate(prompt);
  }
  result.promptMs = performance.now() - t0;

  try {
    while (result.tokens.length < opts.maxTokens) {
      if (opts.signal?.aborted) {
        result.stopReason = "interrupted";
        break;
      }
      let id: number;
      if (!device) {
        t0 = performance.now();
        id = sampler.sample(logits, history);
        result.sampleMs += performance.now() - t0;
      } else if (first !== undefined) {
        id = first;
        first = undefined;
      } else {
        // The step that evaluated the previous token sampled this one: its time is decode time.
        t0 = performance.now();
        id = await device.next();
        result.decodeMs += performance.now() - t0;
      }
      if (tok.isEog(id) || tok.isControl(id)) {
        result.stopReason = "eos";
        break;
      }
      result.tokens.push(id);
      history.push(id);
      const piece = decoder.push(id);
      opts.onToken?.(id, piece);
      if (stopFilter.push(piece)) {
        result.stopReason = "stop";
        break;
      }
      if (result.tokens.length >= opts.maxTokens) break;
      if (pos0 + result.decodeTokens >= model.nCtx) {
        result.stopReason = "context";
        break;
      }
      if (!device) {
        t0 = performance.now();
        logits = await model.evaluate([id]);
        result.decodeMs += performance.now() - t0;
      }
      result.decodeTokens++;
      // Let signal handlers (Ctrl-C) run between tokens.
      await yieldToEventLoop();
    }
  } finally {
    await device?.end(result.decodeTokens);
  }
  if (result.stopReason !== "stop") stopFilter.push(decoder.flush(), true);
  result.text = stopFilter.emitted;
  return result;
}

/**
 * Streams text while watching for stop strings: text is passed on as soon as no stop string can
 * start inside it; a suffix that is a prefix of a stop string is held back until it is decided.
 */
export class StopFilter {
  /** All text passed on so far. */
  emitted = "";
  #pending = "";
  readonly #stops: string[];
  readonly #out: (text: string) => void;

  constructor(stops: string[], out: (text: string) => void) {
    this.#stops = stops.filter((s) => s.length > 0);
    this.#out = out;
  }

  /** Adds text; returns true when a stop string was found (the text before it has been passed on). */
  push(text: string, final = false): boolean {
    this.#pending += text;
    let cut = -1;
    for (const s of this.#stops) {
      const i = this.#pending.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      this.#emit(this.#pending.slice(0, cut));
      this.#pending = "";
      return true;
    }
    let hold = 0;
    if (!final) {
      for (const s of this.#stops) {
        for (let n = Math.min(s.length - 1, this.#pending.length); n > hold; n--) {
          if (this.#pending.endsWith(s.slice(0, n))) {
            hold = n;
            break;
          }
        }
      }
    }
    this.#emit(this.#pending.slice(0, this.#pending.length - hold));
    this.#pending = this.#pending.slice(this.#pending.length - hold);
    return false;
  }

  #emit(text: string): void {
    if (!text) return;
    this.emitted += text;
    this.#out(text);
  }
}

/**
 * Returns to the event loop through a MessageChannel (a macrotask without setTimeout's 4 ms
 * clamp for nested timers), so that signal listeners run during a long generation.
 */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => {
      ch.port1.close();
      ch.port2.close(); // an open port per token would leak ~5 KB of RSS each
      resolve();
    };
    ch.port2.postMessage(null);
  });
}
