/**
 * Small layer over the WebGPU device: compute pipelines cached by their WGSL, bind groups from
 * `{binding: buffer}` maps, buffers, and "ops" (pipeline + bind group + workgroup counts) that a
 * model records once at load time and replays into one compute pass per step.
 * @module
 */
import type { Gpu } from "./device.ts";
import { STEP_BYTES, STEP_FIELDS } from "./shaders/common.ts";

/** Values of the step uniform (see `STEP_FIELDS`); missing fields are 0. */
export type StepValues = Partial<Record<typeof STEP_FIELDS[number], number>>;

/** One recorded dispatch; `groups` maps the step to workgroup counts (0 in any dimension = skipped). */
export interface Op {
  pipeline: GPUComputePipeline;
  bind: GPUBindGroup;
  groups: (s: Required<StepValues>) => [number, number, number];
  /** Label for errors and profiles. */
  name: string;
}

/** Pipelines, buffers and the step uniform of one model. */
export class Kernels {
  readonly device: GPUDevice;
  readonly stepBuffer: GPUBuffer;
  private pipelines = new Map<string, GPUComputePipeline>();
  private stepData = new Uint32Array(STEP_FIELDS.length);
  private owned: GPUBuffer[] = [];
  private firstError?: string;

  constructor(readonly gpu: Gpu) {
    this.device = gpu.device;
    // Validation and out-of-memory errors surface asynchronously; keep the first for throwIfFailed().
    this.device.addEventListener("uncapturederror", (e) => {
      this.firstError ??= (e as GPUUncapturedErrorEvent).error.message;
    });
    this.stepBuffer = this.buffer(STEP_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, "step");
  }

  /** The compute pipeline of `wgsl` (entry point `main`), compiled once per distinct source. */
  pipeline(wgsl: string): GPUComputePipeline {
    let p = this.pipelines.get(wgsl);
    if (!p) {
      const module = this.device.createShaderModule({ code: wgsl });
      p = this.device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
      this.pipelines.set(wgsl, p);
    }
    return p;
  }

  /** A storage buffer (STORAGE | COPY_SRC | COPY_DST unless `usage` is given), freed by `destroy()`. */
  buffer(bytes: number, usage?: number, label?: string): GPUBuffer {
    const b = this.device.createBuffer({
      size: Math.max(16, Math.ceil(bytes / 16) * 16),
      usage: usage ?? (GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST),
      label,
    });
    this.owned.push(b);
    return b;
  }

  /**
   * An op binding `entries` (binding number → buffer; undefined entries are left out; the step
   * uniform is added at `stepBinding`).
   */
  op(
    name: string,
    wgsl: string,
    entries: Record<number, GPUBuffer | undefined>,
    stepBinding: number,
    groups: Op["groups"],
  ): Op {
    const pipeline = this.pipeline(wgsl);
    const all: GPUBindGroupEntry[] = Object.entries(entries).filter(([, b]) => b).map(([b, buffer]) => ({
      binding: Number(b),
      resource: { buffer: buffer! },
    }));
    all.push({ binding: stepBinding, resource: { buffer: this.stepBuffer } });
    const bind = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: all });
    return { pipeline, bind, groups, name };
  }

  /** Writes the step uniform (takes effect for the next submit). */
  setStep(v: StepValues): Required<StepValues> {
    const full = {} as Required<StepValues>;
    STEP_FIELDS.forEach((f, i) => {
      full[f] = v[f] ?? 0;
      this.stepData[i] = full[f];
    });
    this.device.queue.writeBuffer(this.stepBuffer, 0, this.stepData);
    return full;
  }

  /**
   * Runs `ops` one submit each and logs each op's wall time (debugging: SPARQ_GPU_TRACE=1).
   */
  async trace(ops: Op[], s: Required<StepValues>): Promise<void> {
    for (const op of ops) {
      const [x, y, z] = op.groups(s);
      if (x === 0 || y === 0 || z === 0) continue;
      const t = performance.now();
      const enc = this.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(op.pipeline);
      pass.setBindGroup(0, op.bind);
      pass.dispatchWorkgroups(x, y, z);
      pass.end();
      this.device.queue.submit([enc.finish()]);
      await this.device.queue.onSubmittedWorkDone();
      console.error(`${op.name} [${x},${y},${z}] ${(performance.now() - t).toFixed(1)} ms`);
    }
  }

  /** Records `ops` `repeats` times into one compute pass and submits it (does not wait for the GPU). */
  submit(ops: Op[], s: Required<StepValues>, repeats = 1): void {
    const enc = this.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    for (let i = 0; i < repeats; i++) this.encode(pass, ops, s);
    pass.end();
    this.device.queue.submit([enc.finish()]);
  }

  /**
   * GPU seconds of `repeats` replays of `ops` in one compute pass (timestamps at the pass's start
   * and end: no CPU encode or completion polling in the figure), or undefined without the
   * timestamp-query feature.
   */
  async gpuSeconds(ops: Op[], s: Required<StepValues>, repeats = 1): Promise<number | undefined> {
    if (!this.device.features.has("timestamp-query")) return undefined;
    const qs = this.device.createQuerySet({ type: "timestamp", count: 2 });
    const res = this.device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    try {
      const enc = this.device.createCommandEncoder();
      const pass = enc.beginComputePass({
        timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 },
      });
      for (let i = 0; i < repeats; i++) this.encode(pass, ops, s);
      pass.end();
      enc.resolveQuerySet(qs, 0, 2, res, 0);
      this.device.queue.submit([enc.finish()]);
      const t = new BigUint64Array(await this.read(res, 0, 16));
      return Number(t[1] - t[0]) / 1e9;
    } finally {
      qs.destroy();
      res.destroy();
    }
  }

  /** Records `ops` into `pass`. */
  encode(pass: GPUComputePassEncoder, ops: Op[], s: Required<StepValues>): number {
    let n = 0;
    for (const op of ops) {
      const [x, y, z] = op.groups(s);
      if (x === 0 || y === 0 || z === 0) continue;
      pass.setPipeline(op.pipeline);
      pass.setBindGroup(0, op.bind);
      pass.dispatchWorkgroups(x, y, z);
      n++;
    }
    return n;
  }

  /** Reads `bytes` from `src` at `offset` (one submit + map). */
  async read(src: GPUBuffer, offset: number, bytes: number): Promise<ArrayBuffer> {
    const rb = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(src, offset, rb, 0, bytes);
    this.device.queue.submit([enc.finish()]);
    await rb.mapAsync(GPUMapMode.READ);
    const out = rb.getMappedRange().slice(0);
    rb.destroy();
    return out;
  }

  /** Throws if the device reported an error since creation (a bug, or the GPU ran out of memory). */
  throwIfFailed(): void {
    if (this.firstError) throw new Error(`webgpu: ${this.firstError.trim().replace(/\s*\n\s*/g, " | ")}`);
  }

  /** Frees every buffer made by this object. */
  destroy(): void {
    for (const b of this.owned) b.destroy();
    this.owned = [];
  }
}
