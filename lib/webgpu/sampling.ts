/**
 * Decoding with the sampler on the GPU: each step's sampled token feeds the next step on the GPU,
 * so steps are submitted ahead of the tokens being read back. A readback costs at least 10 ms in
 * Deno (`mapAsync` sleeps 10 ms between device polls), which capped a token-by-token loop at
 * ~60 tok/s on an H200; with several reads in flight they overlap and the GPU sets the pace
 * (7B Q4_0: 341–348 tok/s, 95% of the benchmark's back-to-back steps).
 *
 * Steps run ahead speculatively: when generation stops (end-of-text, a stop string, the token
 * limit), `end` cuts the cache back to the tokens generation actually used; the positions after it
 * are overwritten later, and SparQ's running V sums are recomputed.
 * @module
 */
import { penaltyWindow, type Sampler, type SamplerOptions } from "../sampler.ts";
import { tuningEnv } from "../env.ts";
import { SAMPLE_MAX_K, sampleUniform } from "./shaders/sample.ts";

/** Tokens sampled on the device, in order, with the model evaluating ahead of the reader. */
export interface DeviceSampling {
  /** The next sampled token (the first comes from the prompt). */
  next(): Promise<number>;
  /**
   * Ends sampling: waits for the steps in flight and leaves the model as if the prompt and the
   * first `evaluated` sampled tokens had been evaluated (nothing after them).
   */
  end(evaluated: number): Promise<void>;
}

/** What the stream needs from the GPU model. */
export interface SampledSteps {
  readonly device: GPUDevice;
  readonly pos: number;
  readonly ctx: number;
  /**
   * Submits the `prompt` (checked by the model when it made the stream) in batches (its ids become
   * the sampler's history); the sampler runs on the last one's logits with `uniform`, and its token
   * is copied to `out`.
   */
  submitPromptSampled(prompt: number[], uniform: ArrayBuffer, out: GPUBuffer): void;
  /**
   * Records the decode step of the token the last sample left on the GPU, with the sampler
   * (`uniform`) and the copy of its token to `out`; the step's uniforms are written now, so it
   * must be submitted before the next step is recorded.
   */
  encodeSampled(uniform: ArrayBuffer, out: GPUBuffer): GPUCommandBuffer;
  /** Cuts the cache back to `pos` positions. */
  rewind(pos: number): void;
  throwIfFailed(): void;
}

/** Whether the GPU sampler implements these settings: greedy, or a top-k of 1 … SAMPLE_MAX_K. */
export function gpuSamples(o: SamplerOptions): boolean {
  return o.temp <= 0 || (o.topK >= 1 && o.topK <= SAMPLE_MAX_K);
}

/**
 * Steps in flight: SPARQ_GPU_AHEAD, else 8 on a hardware adapter (7B Q4_0 on an H200 decoded at 293
 * tok/s with 4, 341–348 with 8, 354 with 16) and 2 on a software one (llvmpipe: a step takes far
 * longer than the 10 ms poll, and steps run past a stop are wasted). SPARQ_GPU_SAMPLE=0 turns GPU
 * sampling off (logits read back, CPU sampler).
 */
export function samplingEnv(software = false): { on: boolean; ahead: number } {
  const dflt = software ? 2 : 8;
  const ahead = Number(tuningEnv("SPARQ_GPU_AHEAD") ?? dflt);
  return {
    on: tuningEnv("SPARQ_GPU_SAMPLE") !== "0",
    ahead: Number.isInteger(ahead) && ahead >= 1 ? ahead : dflt,
  };
}

/**
 * The GPU sampler's uniform for settings `o`, a history of `histLen` tokens (the sampled one is
 * written at that index), the RNG's `draw` and the step's penalty-mark `stamp`.
 */
export function samplerStep(o: SamplerOptions, histLen: number, draw: number, stamp: number): ArrayBuffer {
  return sampleUniform({
    temp: o.temp,
    topK: o.topK,
    topP: o.topP,
    minP: o.minP,
    penalty: o.repeatPenalty,
    lastN: penaltyWindow(o, histLen),
    histLen,
    draw,
    stamp,
  });
}

/** A {@link DeviceSampling} over a GPU model; see the module comment. */
export class GpuSampling implements DeviceSampling {
  readonly #slots: GPUBuffer[] = [];
  readonly #pending: Promise<number>[] = [];
  readonly #pos0: number;
  readonly #max: number;
  #submitted = 0;
  /** The next decode step, recorded while the GPU runs the one before. */
  #recorded?: GPUCommandBuffer;

  /**
   * Starts after `prompt` (at least one token) at the model's position; at most `maxSamples`
   * tokens, fewer where the context ends (each token after the first needs one position).
   */
  constructor(
    private readonly model: SampledSteps,
    private readonly prompt: number[],
    private readonly sampler: Sampler,
    maxSamples: number,
    private readonly ahead: number,
  ) {
    this.#pos0 = model.pos;
    this.#max = Math.max(0, Math.min(maxSamples, model.ctx - model.pos - prompt.length + 1));
    // One slot more than the steps in flight: a slot is reused only after its token was read.
    for (let i = 0; i <= ahead; i++) {
      this.#slots.push(
        model.device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }),
      );
    }
  }

  next(): Promise<number> {
    while (this.#pending.length < this.ahead && this.#submitted < this.#max) this.#submit();
    const p = this.#pending.shift();
    if (!p) return Promise.reject(new Error(`GpuSampling: only ${this.#max} tokens fit`));
    return p;
  }

  async end(evaluated: number): Promise<void> {
    try {
      await Promise.all(this.#pending.splice(0));
    } finally {
      for (const s of this.#slots) s.destroy();
    }
    this.model.rewind(this.#pos0 + this.prompt.length + evaluated);
    this.model.throwIfFailed();
  }

  /**
   * Submits the step of sample `#submitted` and records the next one, then starts reading the
   * token. Deno's first poll inside `mapAsync` waits for the GPU to finish everything submitted, so
   * the next step is recorded before it: the GPU idles only while that step is submitted, not
   * while it is recorded (7B on an H200: ~1 ms of a ~3 ms step).
   */
  #submit(): void {
    const i = this.#submitted++;
    const slot = this.#slots[i % this.#slots.length];
    if (i === 0) this.model.submitPromptSampled(this.prompt, this.#uniform(0), slot);
    else this.model.device.queue.submit([this.#recorded ?? this.model.encodeSampled(this.#uniform(i), slot)]);
    this.#recorded = i + 1 < this.#max
      ? this.model.encodeSampled(this.#uniform(i + 1), this.#slots[(i + 1) % this.#slots.length])
      : undefined;
    this.#pending.push(
      slot.mapAsync(GPUMapMode.READ, 0, 4).then(() => {
        const id = new Uint32Array(slot.getMappedRange(0, 4))[0];
        slot.unmap();
        this.model.throwIfFailed();
        return id;
      }),
    );
  }

  /** The sampler uniform of sample `i` (takes the RNG's next draw when sampling). */
  #uniform(i: number): ArrayBuffer {
    const o = this.sampler.options;
    // Stamps start at 1 per stream: the penalty marks are cleared with the prompt's submit.
    return samplerStep(o, this.prompt.length + i, o.temp > 0 ? this.sampler.nextDraw() : 0, i + 1);
  }
}
