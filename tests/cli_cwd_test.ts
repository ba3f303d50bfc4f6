/**
 * The CLI runs from any directory: `deno run <checkout>/cli.ts …` with the working directory an
 * empty temp dir and only the permissions docs/PERMISSIONS.md lists, so no path may be relative to
 * the working directory (wasm, workers, fixtures are all found through import.meta.url).
 */
import { ok as assert } from "node:assert/strict";
import { repoRoot } from "./testing.ts";

const root = repoRoot.replace(/\/$/, "");
const model = `${root}/testdata/stories260K.gguf`;

async function sparq(perms: string[], args: string[]) {
  const cwd = await Deno.makeTempDir();
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-lock", ...perms, `${root}/cli.ts`, ...args],
      cwd,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const entries = [...Deno.readDirSync(cwd)].map((e) => e.name);
    assert(entries.length === 0, `wrote into the working directory: ${entries.join(", ")}`);
    return {
      code: out.code,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
    };
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
}

/** Runs `sparq <args>`; skips (printing why) while the command is still a placeholder. */
async function runOrSkip(name: string, perms: string[], args: string[]) {
  const r = await sparq(perms, args);
  if (r.stderr.includes("not implemented yet")) {
    console.log(`  skipped: sparq ${name} is not implemented yet`);
    return undefined;
  }
  assert(r.code === 0, `sparq ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return r;
}

Deno.test("cli from another directory: --help", async () => {
  const r = await sparq([], ["--help"]);
  assert(r.code === 0 && r.stdout.includes("pull"), r.stderr);
});

Deno.test("cli from another directory: info with --allow-read only", async () => {
  const r = await runOrSkip("info", ["--allow-read"], ["info", model]);
  if (r) assert(r.stdout.trim().length > 0);
});

Deno.test("cli from another directory: generate with --allow-read only", async () => {
  const r = await runOrSkip("generate", ["--allow-read"], [
    "generate",
    "-m",
    model,
    "-p",
    "Once upon a time",
    "-n",
    "12",
    "--temp",
    "0",
  ]);
  if (r) assert(r.stdout.trim().length > 0);
});

Deno.test("cli from another directory: profile with --allow-read only", async () => {
  const r = await runOrSkip("profile", ["--allow-read"], [
    "profile",
    "-m",
    model,
    "-c",
    "8",
    "-n",
    "2",
    "-t",
    "1",
    "--attention",
    "dense",
    "--probe-mb",
    "64",
  ]);
  if (r) assert(r.stdout.includes("| dense"), r.stdout);
});

Deno.test("cli from another directory: pull without --allow-net fails cleanly (exit 2)", async () => {
  const cache = await Deno.makeTempDir();
  try {
    const r = await sparq([
      `--allow-env=SPARQ_CACHE,XDG_CACHE_HOME,HOME`,
      `--allow-read=${cache}`,
      `--allow-write=${cache}`,
    ], [
      "pull",
      "-o",
      cache,
      "http://127.0.0.1:59999/x.gguf",
    ]);
    assert(r.code === 2 && r.stderr.includes("--allow-net"), `${r.code} ${r.stderr}`);
  } finally {
    await Deno.remove(cache, { recursive: true });
  }
});
