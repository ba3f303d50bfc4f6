/**
 * `sparq compare`: accuracy of attention modes (SparQ, H2O, StreamingLLM, exact top-k) against
 * dense on a model and a text, at equal transfer; table, JSON or a paper-style SVG plot.
 * @module
 */
import { type Command, intFlag, listFlag, parseFlags, splitAttentionList } from "./args.ts";
import { COMPARE_TASKS, compareModes, type CompareReport, type CompareTask, formatCompareTable } from "../compare.ts";
import { SparqError } from "../errors.ts";
import { type PlotSeries, svgLinePlot } from "../svg_plot.ts";
import { writeFileAtomic } from "../atomic_write.ts";
import { parseBackend } from "../backend.ts";
import { parseCacheType } from "../kv_cache.ts";

const METRICS = ["ppl", "bpc", "top1", "kl", "greedy", "repetition", "needle"] as const;
type Metric = typeof METRICS[number];

const HELP = `sparq compare — SparQ and the baselines against dense attention, on one model and text

usage: sparq compare -m MODEL -f TEXT [flags]

  -m, --model FILE        GGUF model (or hf:OWNER/REPO/FILE.gguf from the pull cache)
  -f, --file FILE         evaluation text (UTF-8)
      --attention LIST    comma-separated modes (default: dense,sparq,h2o,streaming,topk); a mode
                          without options is expanded over --ratios, e.g. sparq → sparq:ratio=1/8;
                          explicit options as in generate: sparq:r=16,k=256,window=64,reallocate=off,
                          h2o:k=256, streaming:sinks=4,window=252, topk:k=256
      --ratios LIST       compressions used for bare modes (default: 1/2,1/4,1/8,1/16)
      --task LIST         ppl, greedy, repetition, needle (default: ppl)
  -c, --ctx N             context length: tokens of the text used (default: the model's training context)
      --prefix N          tokens evaluated densely as one batch before the decode steps (default: min(128, n/4))
  -t, --threads N         kernel threads (default: all cores)
      --cache-type T      KV cache element type: f32 (default) or f16 (K, V and SparQ's K copy stored
                          as f16: half the cache memory and attention reads; both backends)
      --backend B         wasm (default) or webgpu (dense and sparq modes; needs --unstable-webgpu)
      --greedy-probes N   greedy: prompts of evenly spaced lengths (default 4)
      --greedy-tokens N   greedy: tokens dense generates after each prompt (default 64)
      --rep-probes N      repetition: probes at evenly spaced depths (default 4)
      --rep-cue N         repetition: tokens of the passage shown again as the cue (default 16)
      --rep-tokens N      repetition: greedy tokens generated per probe (default 32)
      --needle-ctx N      needle: context length of each probe (default: --ctx)
      --needle-depths L   needle: depths of the pass key, fractions (default 0.1,0.3,0.5,0.7,0.9)
      --json              print one JSON object (see README "compare --json")
      --svg FILE          write a plot of --svg-metric against the measured transfer ratio
      --svg-metric M      ppl, bpc, top1, kl, greedy, repetition or needle (default: ppl, or the first task's metric)

ppl: perplexity and bits per character, teacher-forced, every position after the prefix a decode
step (so the approximation applies as in generation); top-1 and KL are against dense at each
position. greedy: dense generates after prompts cut from the text; each mode follows the same
tokens and scores the fraction of steps whose argmax equals dense's token (next-token agreement
of greedy generation). transfer: attention bytes relative to dense, predicted (sparq.md §2.3)
and measured.`;

/** The `compare` subcommand. */
export const command: Command = {
  name: "compare",
  summary: "accuracy of SparQ and baselines vs dense: ppl, agreement, greedy, repetition, needle",
  help: HELP,
  async run(args) {
    const { values } = parseFlags("compare", args, {
      model: { type: "string", short: "m" },
      file: { type: "string", short: "f" },
      attention: { type: "string" },
      ratios: { type: "string" },
      task: { type: "string" },
      ctx: { type: "string", short: "c" },
      prefix: { type: "string" },
      threads: { type: "string", short: "t" },
      "cache-type": { type: "string" },
      backend: { type: "string" },
      "greedy-probes": { type: "string" },
      "greedy-tokens": { type: "string" },
      "rep-probes": { type: "string" },
      "rep-cue": { type: "string" },
      "rep-tokens": { type: "string" },
      "needle-ctx": { type: "string" },
      "needle-depths": { type: "string" },
      json: { type: "boolean" },
      svg: { type: "string" },
      "svg-metric": { type: "string" },
    });
    if (!values.model) throw new SparqError("compare: -m/--model is required");
    if (!values.file) throw new SparqError("compare: -f/--file is required");
    let text: string;
    try {
      text = Deno.readTextFileSync(values.file);
    } catch (e) {
      throw new SparqError(`-f ${values.file}: cannot read (${(e as Error).message})`);
    }
    const tasks = listFlag(values.task, ["ppl"]);
    for (const t of tasks) {
      if (!COMPARE_TASKS.includes(t as CompareTask)) {
        throw new SparqError(`--task ${t}: unknown task (tasks: ${COMPARE_TASKS.join(", ")})`);
      }
    }
    const ratios = listFlag(values.ratios, ["1/2", "1/4", "1/8", "1/16"]);
    for (const r of ratios) {
      if (!/^1\/\d+(\.\d+)?$|^0?\.\d+$/.test(r)) throw new SparqError(`--ratios ${r}: expected a compression like 1/8`);
    }
    // `sparq:r=16,k=256,window=64`: options after commas stay with their mode.
    const modes = splitAttentionList(
      values.attention === undefined ? ["dense,sparq,h2o,streaming,topk"] : [values.attention],
    )
      .flatMap((m) => (m === "dense" || m.includes(":") ? [m] : ratios.map((r) => `${m}:ratio=${r}`)));
    const metric = (values["svg-metric"] ?? (tasks[0] === "ppl" ? "ppl" : tasks[0])) as Metric;
    if (!METRICS.includes(metric)) {
      throw new SparqError(`--svg-metric ${metric}: expected one of ${METRICS.join(", ")}`);
    }
    const depths = values["needle-depths"]
      ? listFlag(values["needle-depths"], []).map((d) => {
        const x = Number(d);
        if (!(x >= 0 && x <= 1)) throw new SparqError(`--needle-depths ${d}: expected a fraction in 0..1`);
        return x;
      })
      : undefined;

    const backend = parseBackend(values.backend);
    const cacheType = parseCacheType(values["cache-type"]);

    const tty = Deno.stderr.isTerminal();
    const enc = new TextEncoder();
    const report = await compareModes({
      model: values.model,
      text,
      modes,
      tasks: tasks as CompareTask[],
      ctx: values.ctx === undefined ? undefined : intFlag("--ctx", values.ctx, 0, 8),
      prefix: values.prefix === undefined ? undefined : intFlag("--prefix", values.prefix, 0, 1),
      threads: values.threads === undefined ? undefined : intFlag("--threads", values.threads, 1, 1, 256),
      backend,
      cacheType,
      greedyProbes: intFlag("--greedy-probes", values["greedy-probes"], 4, 1),
      greedyTokens: intFlag("--greedy-tokens", values["greedy-tokens"], 64, 1),
      repetitionProbes: intFlag("--rep-probes", values["rep-probes"], 4, 1),
      repetitionCue: intFlag("--rep-cue", values["rep-cue"], 16, 1),
      repetitionTokens: intFlag("--rep-tokens", values["rep-tokens"], 32, 1),
      needleCtx: values["needle-ctx"] === undefined ? undefined : intFlag("--needle-ctx", values["needle-ctx"], 0, 64),
      needleDepths: depths,
      onProgress: tty
        ? (mode, task, done, total) => {
          Deno.stderr.writeSync(enc.encode(`\r\x1b[2Kcompare: ${mode} ${task} ${done}/${total}`));
        }
        : undefined,
    });
    if (tty) Deno.stderr.writeSync(enc.encode("\r\x1b[2K"));
    if (values.json) console.log(JSON.stringify(report));
    else console.log(formatCompareTable(report));
    if (values.svg) writeFileAtomic(values.svg, compareSvg(report, metric), "--svg");
    return 0;
  },
};

function metricValue(m: CompareReport["results"][number], metric: Metric): number | undefined {
  switch (metric) {
    case "greedy":
      return m.greedy?.agreement;
    case "repetition":
      return m.repetition?.meanMatch;
    case "needle":
      return m.needle?.rate;
    default:
      return m[metric];
  }
}

/** Paper-style plot: the metric against the measured transfer ratio, one line per mode kind. */
export function compareSvg(r: CompareReport, metric: Metric): string {
  const byKind = new Map<string, [number, number][]>();
  let dense: number | undefined;
  for (const m of r.results) {
    const y = metricValue(m, metric);
    if (y === undefined) continue;
    const kind = m.mode.split(":")[0];
    if (kind === "dense") {
      dense ??= y;
      continue;
    }
    const x = m.transfer?.measured ?? m.ratio;
    byKind.set(kind, [...(byKind.get(kind) ?? []), [x, y]]);
  }
  const series: PlotSeries[] = [...byKind].map(([name, pts]) => ({ name, points: pts.sort((a, b) => a[0] - b[0]) }));
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  if (dense !== undefined && xs.length) {
    series.push({ name: "dense", points: [[Math.min(...xs), dense], [1, dense]], dashed: true, markers: false });
  }
  return svgLinePlot({
    title: `${r.model.split("/").pop()}: ${metric} vs attention transfer (${r.scored} decode steps)`,
    xLabel: "attention transfer relative to dense (measured)",
    yLabel: metric,
    series,
    logX: true,
    yFromZero: metric === "top1" || metric === "greedy" || metric === "needle",
  });
}
