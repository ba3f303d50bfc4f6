/**
 * Long-run memory check (issue: "generating 10,000 tokens keeps resident memory flat"): runs
 * `sparq generate` for N tokens in a child process and samples its resident set size
 * (/proc/PID/status VmRSS) once a second; prints the samples and the growth between the first
 * and last quarter of the run.
 *
 *   deno run -A tools/long_run_rss.ts [-m MODEL] [-n 10000] [-c 10240]
 * @module
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string", short: "m" },
    n: { type: "string", short: "n" },
    ctx: { type: "string", short: "c" },
  },
});
const root = new URL("../", import.meta.url).pathname;
const model = values.model ?? `${root}testdata/stories260K.gguf`;
const n = Number(values.n ?? 10000);
const ctx = Number(values.ctx ?? n + 64);

const child = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "--allow-read",
    `${root}cli.ts`,
    "generate",
    "-m",
    model,
    "-p",
    "Once upon a time",
    "-n",
    String(n),
    "-c",
    String(ctx),
    "--temp",
    "0.8",
    "--seed",
    "1",
  ],
  stdout: "null",
  stderr: "piped",
}).spawn();

function rssKiB(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

const samples: number[] = [];
const t0 = performance.now();
const timer = setInterval(() => {
  const r = rssKiB(child.pid);
  if (r !== undefined) samples.push(r);
}, 1000);
const status = await child.status;
clearInterval(timer);
const stderr = new TextDecoder().decode(await new Response(child.stderr).arrayBuffer());
console.log(stderr.trim().split("\n").slice(-3).join("\n"));
const q = Math.max(1, Math.floor(samples.length / 4));
const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
const first = mean(samples.slice(0, q)), last = mean(samples.slice(-q));
console.log(
  `exit ${status.code}, ${((performance.now() - t0) / 1000).toFixed(0)} s, ${samples.length} RSS samples (MiB): ${
    samples.map((s) => (s / 1024).toFixed(0)).join(" ")
  }`,
);
console.log(
  `RSS first quarter ${(first / 1024).toFixed(1)} MiB, last quarter ${(last / 1024).toFixed(1)} MiB, growth ${
    (100 * (last - first) / first).toFixed(1)
  }%; load ${Deno.readTextFileSync("/proc/loadavg").trim()}`,
);
