/**
 * Accuracy of attention modes against dense, on one model and one text (`sparq compare`):
 *
 * - **ppl**: teacher-forced perplexity and bits per character. The first `prefix` tokens are one
 *   dense batch; every later token is a decode step, so the approximation applies the way it does
 *   during generation (the paper's evaluation). Also, per position, top-1 agreement with dense and
 *   KL(dense ‖ mode) over the full next-token distribution.
 * - **repetition**: the model reads a passage, is then shown the first `cue` tokens of a sentence
 *   of it again and continues greedily; the score is how many tokens it reproduces verbatim
 *   before the first miss (the paper's repetition task), averaged over probes at several depths.
 * - **needle**: a pass key hidden at several depths of a filler text, then asked for; recalled or not.
 * - **greedy**: dense generates greedily after prompts of several lengths cut from the text; each
 *   mode then follows that same token sequence (prompt as one dense batch, every generated token a
 *   decode step) and the score is the fraction of steps whose argmax equals dense's token — the
 *   next-token agreement of greedy generation. The first disagreement is where the mode's own
 *   greedy output would leave dense's (reported per probe).
 *
 * Bytes: every mode reports the bytes of K, V and index data it read; `transfer` is that total
 * over the decode steps of the ppl task divided by dense's on the same steps (measured), next to
 * the formula of sparq.md §2.3 (predicted).
 * @module
 */
import { type BackendName, type LanguageModel, openModel } from "./backend.ts";
import type { CacheType } from "./kv_cache.ts";
import { type AttentionSpec, formatAttentionSpec, parseAttentionSpec, predictedTransfer } from "./attention/spec.ts";
import { argmax } from "./sampler.ts";
import { SparqError } from "./errors.ts";

/** The tasks `compare` can run. */
export type CompareTask = "ppl" | "greedy" | "repetition" | "needle";
/** All tasks, in table order. */
export const COMPARE_TASKS: CompareTask[] = ["ppl", "greedy", "repetition", "needle"];

/** Options of {@link compareModes}. */
export interface CompareOptions {
  /** Model path. */
  model: string;
  /** The evaluation text. */
  text: string;
  /** Attention specs; `dense` is always evaluated first (it is the reference). */
  modes: string[];
  tasks: CompareTask[];
  /** Context length (tokens of the text used); default the model's training context. */
  ctx?: number;
  /** Tokens evaluated as one dense batch before the decode steps (ppl). */
  prefix?: number;
  threads?: number;
  /** wasm (default) or webgpu. */
  backend?: BackendName;
  /** KV cache element type (default f32; wasm only). */
  cacheType?: CacheType;
  /** Repetition: number of probes, cue length and tokens generated per probe. */
  repetitionProbes?: number;
  repetitionCue?: number;
  repetitionTokens?: number;
  /** Greedy: number of prompts (evenly spaced lengths up to the context) and tokens generated after each. */
  greedyProbes?: number;
  greedyTokens?: number;
  /** Needle: context length of each probe and the depths (0..1) of the pass key. */
  needleCtx?: number;
  needleDepths?: number[];
  /** Called with (mode, task, done, total) as work advances. */
  onProgress?: (mode: string, task: string, done: number, total: number) => void;
}

/** Results of one mode; the `--json` output is `{model, text, tokens, prefix, results: ModeResult[]}`. */
export interface ModeResult {
  /** Canonical spec string. */
  mode: string;
  /** Nominal compression (1/R) of the spec, 1 for dense. */
  ratio: number;
  /** Attention bytes over the ppl decode steps relative to dense: formula and measured. */
  transfer?: { predicted: number; measured: number };
  /** Mean negative log-likelihood (nats/token), perplexity and bits per character over the scored tokens. */
  nll?: number;
  ppl?: number;
  bpc?: number;
  /** Fraction of scored positions whose argmax equals dense's, and mean KL(dense ‖ mode) in nats. */
  top1?: number;
  kl?: number;
  /**
   * Greedy agreement: prompt lengths, steps scored per prompt, steps where the argmax equals dense's greedy
   * token (per prompt), the index of the first disagreement (= length of the identical greedy prefix; `steps`
   * when none), and the overall fraction.
   */
  greedy?: { prompts: number[]; steps: number; agreed: number[]; firstDiff: number[]; agreement: number };
  repetition?: { probes: number; cue: number; generated: number; matched: number[]; meanMatch: number };
  needle?: { ctx: number; depths: number[]; recalled: boolean[]; rate: number };
}

/** The whole comparison (what `--json` prints). */
export interface CompareReport {
  model: string;
  tokens: number;
  prefix: number;
  scored: number;
  tasks: CompareTask[];
  results: ModeResult[];
}

/** Log-softmax of `logits` into `out` (f64 accumulation). */
function logSoftmax(logits: Float32Array, out: Float32Array): void {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const lse = max + Math.log(sum);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i] - lse;
}

/** KL(p ‖ q) from log-probabilities. */
function klDivergence(logP: Float32Array, logQ: Float32Array): number {
  let kl = 0;
  for (let i = 0; i < logP.length; i++) {
    const p = Math.exp(logP[i]);
    if (p > 0) kl += p * (logP[i] - logQ[i]);
  }
  return Math.max(0, kl);
}

function specRatio(spec: AttentionSpec): number {
  return spec.kind === "dense" ? 1 : spec.ratio ?? (1 / 8);
}

/** Runs every task for every mode; dense first, as the reference for agreement and transfer. */
export async function compareModes(opts: CompareOptions): Promise<CompareReport> {
  // Dense is the reference and runs first; a second `dense` in the list is compared against it
  // like any other mode (a self-check: KL 0, top-1 100%).
  const rest = opts.modes.map(parseAttentionSpec);
  const firstDense = rest.findIndex((s) => s.kind === "dense");
  if (firstDense >= 0) rest.splice(firstDense, 1);
  const specs: AttentionSpec[] = [{ kind: "dense" }, ...rest];
  const progress = opts.onProgress ?? (() => {});
  const load = (spec: AttentionSpec, ctx?: number) =>
    openModel(opts.model, {
      backend: opts.backend,
      attention: spec,
      threads: opts.threads,
      ctx,
      cacheType: opts.cacheType,
    });

  // The dense reference model also tokenizes the text (one tokenizer for every mode).
  const dense = await load(specs[0], opts.ctx);
  const nCtx = dense.nCtx;
  const all = dense.tokenizer.encode(opts.text, { addSpecial: true });
  const tokens = all.slice(0, nCtx);
  const prefix = Math.min(opts.prefix ?? Math.min(128, Math.floor(tokens.length / 4)), tokens.length - 2);
  if (all.length < 8 || prefix < 1) {
    dense.close();
    throw new SparqError(
      all.length < 8
        ? `compare: the text has only ${all.length} tokens (need at least 8)`
        : `--prefix must be at least 1`,
    );
  }
  const scoredTargets = tokens.slice(prefix + 1);
  const chars = Math.max(1, dense.tokenizer.decode(scoredTargets).length);
  const headDim = dense.config.headDim;

  const results: ModeResult[] = [];
  let denseRows: Float32Array[] = [];
  let denseBytes = 0, densePredicted = 0;
  let denseGreedy: GreedyProbe[] = [];
  for (const [i, spec] of specs.entries()) {
    const name = formatAttentionSpec(spec);
    const res: ModeResult = { mode: name, ratio: specRatio(spec) };
    const model = i === 0 ? dense : await load(spec, nCtx);
    try {
      if (opts.tasks.includes("ppl")) {
        const reference = i === 0;
        const r = await runPpl(
          model,
          tokens,
          prefix,
          reference ? undefined : denseRows,
          (d, t) => progress(name, "ppl", d, t),
        );
        if (reference) denseRows = r.rows;
        let predicted = 0;
        for (let S = prefix + 1; S < tokens.length; S++) predicted += predictedTransfer(spec, headDim, S);
        if (reference) {
          denseBytes = r.bytes;
          densePredicted = predicted;
        }
        res.transfer = { predicted: predicted / densePredicted, measured: denseBytes > 0 ? r.bytes / denseBytes : 1 };
        res.nll = r.nll;
        res.ppl = Math.exp(r.nll);
        res.bpc = (r.nll * scoredTargets.length) / Math.LN2 / chars;
        res.top1 = r.top1;
        res.kl = r.kl;
      }
      if (opts.tasks.includes("greedy")) {
        if (i === 0) {
          // The reference follows its own greedy tokens by construction: every step agrees, no second pass.
          denseGreedy = await denseGreedyProbes(model, tokens, opts, (d, t) => progress(name, "greedy", d, t));
          const full = denseGreedy.map((p) => p.generated.length);
          res.greedy = greedyResult(denseGreedy, full, full);
        } else {
          res.greedy = await runGreedy(model, denseGreedy, (d, t) => progress(name, "greedy", d, t));
        }
      }
      if (opts.tasks.includes("repetition")) {
        res.repetition = await runRepetition(model, tokens, opts, (d, t) => progress(name, "repetition", d, t));
      }
      if (opts.tasks.includes("needle")) {
        res.needle = await runNeedle(model, opts, (d, t) => progress(name, "needle", d, t));
      }
    } finally {
      model.close();
    }
    results.push(res);
  }
  return { model: opts.model, tokens: tokens.length, prefix, scored: scoredTargets.length, tasks: opts.tasks, results };
}

interface PplResult {
  nll: number;
  top1: number;
  kl: number;
  bytes: number;
  /** Log-probability rows of the scored positions (kept for dense only). */
  rows: Float32Array[];
}

/** Teacher-forced pass: a dense prefix batch, then one decode step per token. */
async function runPpl(
  model: LanguageModel,
  tokens: number[],
  prefix: number,
  dense: Float32Array[] | undefined,
  progress: (done: number, total: number) => void,
): Promise<PplResult> {
  model.reset();
  const nVocab = model.config.nVocab;
  await model.evaluate(tokens.slice(0, prefix));
  model.resetCounters();
  const rows: Float32Array[] = [];
  const lp = new Float32Array(nVocab);
  let nll = 0, agree = 0, kl = 0;
  const total = tokens.length - 1 - prefix;
  for (let i = prefix; i < tokens.length - 1; i++) {
    const logits = await model.evaluate([tokens[i]]);
    const row = dense ? lp : new Float32Array(nVocab);
    logSoftmax(logits, row);
    nll -= row[tokens[i + 1]];
    const j = i - prefix;
    if (dense) {
      if (argmax(row) === argmax(dense[j])) agree++;
      kl += klDivergence(dense[j], row);
    } else {
      rows.push(row);
      agree++;
    }
    if (j % 32 === 0) progress(j, total);
  }
  progress(total, total);
  const b = model.attentionBytes();
  return { nll: nll / total, top1: agree / total, kl: kl / total, bytes: b.k + b.v + b.index, rows };
}

/** Greedy continuation of `n` tokens after the current position, feeding `first` first. */
async function greedy(model: LanguageModel, firstLogits: Float32Array, n: number): Promise<number[]> {
  const out: number[] = [];
  let logits = firstLogits;
  for (let i = 0; i < n && model.pos < model.nCtx; i++) {
    const id = argmax(logits);
    out.push(id);
    if (i + 1 < n) logits = await model.evaluate([id]);
  }
  return out;
}

/** One greedy probe: the prompt (a prefix of the text) and dense's greedy continuation. */
interface GreedyProbe {
  prompt: number[];
  generated: number[];
}

/**
 * Dense's greedy continuations of `greedyTokens` tokens after `greedyProbes` prompts cut from the text at
 * evenly spaced lengths, the longest ending where its continuation still fits the context.
 */
async function denseGreedyProbes(
  model: LanguageModel,
  tokens: number[],
  opts: CompareOptions,
  progress: (done: number, total: number) => void,
): Promise<GreedyProbe[]> {
  const probes = opts.greedyProbes ?? 4;
  const gen = opts.greedyTokens ?? 64;
  const longest = Math.min(tokens.length, model.nCtx - gen);
  if (longest < 2 * probes) {
    throw new SparqError(`compare: greedy needs prompts of at least ${2 * probes} tokens (have ${longest})`);
  }
  const out: GreedyProbe[] = [];
  for (let p = 0; p < probes; p++) {
    const prompt = tokens.slice(0, Math.round(((p + 1) / probes) * longest));
    model.reset();
    const logits = await model.evaluate(prompt);
    out.push({ prompt, generated: await greedy(model, logits, gen) });
    progress(p + 1, probes);
  }
  return out;
}

/** The greedy task for one mode: its argmax at each step of dense's greedy continuations (see the module comment). */
async function runGreedy(
  model: LanguageModel,
  probes: GreedyProbe[],
  progress: (done: number, total: number) => void,
): Promise<NonNullable<ModeResult["greedy"]>> {
  const agreed: number[] = [], firstDiff: number[] = [];
  for (const [p, { prompt, generated }] of probes.entries()) {
    model.reset();
    let logits = await model.evaluate(prompt);
    let agree = 0, first = generated.length;
    for (let j = 0; j < generated.length; j++) {
      if (argmax(logits) === generated[j]) agree++;
      else if (first === generated.length) first = j;
      if (j + 1 < generated.length) logits = await model.evaluate([generated[j]]);
    }
    agreed.push(agree);
    firstDiff.push(first);
    progress(p + 1, probes.length);
  }
  return greedyResult(probes, agreed, firstDiff);
}

/** The greedy result from per-probe agreement counts and first disagreements. */
function greedyResult(probes: GreedyProbe[], agreed: number[], firstDiff: number[]): NonNullable<ModeResult["greedy"]> {
  const total = probes.reduce((a, p) => a + p.generated.length, 0);
  const sum = agreed.reduce((a, b) => a + b, 0);
  return {
    prompts: probes.map((p) => p.prompt.length),
    steps: probes[0]?.generated.length ?? 0,
    agreed,
    firstDiff,
    agreement: sum / Math.max(1, total),
  };
}

/** Evaluates `ids` one decode step at a time (so sparse modes apply) and returns the last logits. */
async function stepThrough(model: LanguageModel, ids: number[]): Promise<Float32Array> {
  let logits: Float32Array = new Float32Array(0);
  for (const id of ids) logits = await model.evaluate([id]);
  return logits;
}

/** The repetition task (see the module comment). */
async function runRepetition(
  model: LanguageModel,
  tokens: number[],
  opts: CompareOptions,
  progress: (done: number, total: number) => void,
): Promise<NonNullable<ModeResult["repetition"]>> {
  const probes = opts.repetitionProbes ?? 4;
  const cue = opts.repetitionCue ?? 16;
  const gen = opts.repetitionTokens ?? 32;
  const passageLen = Math.min(tokens.length, model.nCtx - cue - gen - 1);
  if (passageLen < 2 * (cue + gen)) {
    throw new SparqError(
      `compare: repetition needs a passage of at least ${2 * (cue + gen)} tokens (have ${passageLen})`,
    );
  }
  const passage = tokens.slice(0, passageLen);
  const matched: number[] = [];
  for (let p = 0; p < probes; p++) {
    // Cues start at evenly spaced depths of the passage (after BOS, leaving room for the answer).
    const start = 1 + Math.floor(((p + 0.5) / probes) * (passageLen - cue - gen - 1));
    model.reset();
    await model.evaluate(passage);
    const logits = await stepThrough(model, passage.slice(start, start + cue));
    const out = await greedy(model, logits, gen);
    const truth = passage.slice(start + cue, start + cue + gen);
    let m = 0;
    while (m < out.length && out[m] === truth[m]) m++;
    matched.push(m);
    progress(p + 1, probes);
  }
  return { probes, cue, generated: gen, matched, meanMatch: matched.reduce((a, b) => a + b, 0) / probes };
}

const FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. ";

/** The needle (pass key) task (see the module comment). */
async function runNeedle(
  model: LanguageModel,
  opts: CompareOptions,
  progress: (done: number, total: number) => void,
): Promise<NonNullable<ModeResult["needle"]>> {
  const tok = model.tokenizer;
  const ctx = Math.min(opts.needleCtx ?? model.nCtx, model.nCtx);
  const depths = opts.needleDepths ?? [0.1, 0.3, 0.5, 0.7, 0.9];
  const recalled: boolean[] = [];
  const question = tok.encode(" What is the pass key? The pass key is", { addSpecial: false });
  const answerLen = 8;
  const fillerIds = tok.encode(FILLER.repeat(4), { addSpecial: false });
  for (let i = 0; i < depths.length; i++) {
    // A different key per depth (deterministic), so a model cannot answer from an earlier probe.
    const key = String(10000 + ((i * 7919 + 4243) % 90000));
    const needle = tok.encode(` The pass key is ${key}. Remember it. ${key} is the pass key. `, { addSpecial: false });
    const bodyLen = ctx - needle.length - question.length - answerLen - 1;
    if (bodyLen < 16) throw new SparqError(`compare: needle context ${ctx} is too short`);
    const body: number[] = [];
    while (body.length < bodyLen) body.push(...fillerIds);
    body.length = bodyLen;
    const at = Math.round(depths[i] * bodyLen);
    const prompt = [tok.bos, ...body.slice(0, at), ...needle, ...body.slice(at)];
    model.reset();
    await model.evaluate(prompt);
    const logits = await stepThrough(model, question);
    const text = tok.decode(await greedy(model, logits, answerLen));
    recalled.push(text.replace(/[^0-9]/g, "").startsWith(key));
    progress(i + 1, depths.length);
  }
  return { ctx, depths, recalled, rate: recalled.filter((x) => x).length / depths.length };
}

/** The comparison as an aligned text table. */
export function formatCompareTable(r: CompareReport): string {
  const head = [
    "mode",
    "transfer pred",
    "transfer meas",
    "ppl",
    "bpc",
    "top-1",
    "KL",
    "greedy",
    "repetition",
    "needle",
  ];
  const f = (x: number | undefined, d: number) => (x === undefined ? "-" : x.toFixed(d));
  const rows = r.results.map((m) => [
    m.mode,
    f(m.transfer?.predicted, 3),
    f(m.transfer?.measured, 3),
    f(m.ppl, 3),
    f(m.bpc, 4),
    m.top1 === undefined ? "-" : (100 * m.top1).toFixed(1) + "%",
    m.kl === undefined ? "-" : m.kl.toExponential(2),
    m.greedy ? (100 * m.greedy.agreement).toFixed(1) + "%" : "-",
    m.repetition ? m.repetition.meanMatch.toFixed(2) : "-",
    m.needle ? `${m.needle.recalled.filter((x) => x).length}/${m.needle.depths.length}` : "-",
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    "| " + cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(" | ") + " |";
  return [
    `model ${r.model}: ${r.tokens} tokens, dense prefix ${r.prefix}, ${r.scored} scored decode steps`,
    line(head),
    "|" + w.map((x, i) => (i === 0 ? "-".repeat(x + 2) : "-".repeat(x + 1) + ":")).join("|") + "|",
    ...rows.map(line),
  ].join("\n");
}
