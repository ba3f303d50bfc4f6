/**
 * `deno task compile`: (1) a static check that every file the binary opens at run time through
 * `new URL(…, import.meta.url)` (wasm builds, the worker script) is embedded — either a module of the
 * import graph or under an `--include` of the compile task; (2) where Deno's `denort` can be had
 * (`$DENORT_BIN`, or the download works), the binary is built, copied alone to an empty directory and
 * run on the demo model; otherwise that part skips with the reason printed.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { repoRoot } from "./testing.ts";

const root = repoRoot.replace(/\/$/, "");
const deno = Deno.execPath();

/** The compile task from deno.json, split into argv (it has no quoted arguments). */
function compileTask(): string[] {
  const tasks = JSON.parse(Deno.readTextFileSync(`${root}/deno.json`)).tasks as Record<string, string>;
  const argv = tasks.compile.split(/\s+/);
  assertEquals(argv.slice(0, 2), ["deno", "compile"]);
  return argv.slice(2);
}

function includes(argv: string[]): string[] {
  return argv.flatMap((a, i) => (a === "--include" ? [argv[i + 1]] : a.startsWith("--include=") ? [a.slice(10)] : []));
}

/** Local modules reachable from `entry` by static imports (`deno info --json`). */
async function localModules(entry: string): Promise<string[]> {
  const out = await new Deno.Command(deno, { args: ["info", "--json", entry], cwd: root, stdout: "piped" }).output();
  assert(out.success, `deno info ${entry} failed`);
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: { specifier: string }[] };
  return info.modules.map((m) => m.specifier).filter((s) => s.startsWith("file://")).map((s) => new URL(s).pathname);
}

interface RuntimeFile {
  from: string;
  /** Absolute path, or for a template literal the directory its fixed prefix names. */
  target: string;
  isDir: boolean;
}

/** Every `new URL(<literal>, import.meta.url)` in `path`; non-literal ones are returned in `dynamic`. */
function runtimeFiles(path: string): { files: RuntimeFile[]; dynamic: string[] } {
  const src = Deno.readTextFileSync(path);
  const files: RuntimeFile[] = [];
  const dynamic: string[] = [];
  for (const m of src.matchAll(/new URL\(\s*([^,()]+?)\s*,\s*import\.meta\.url\s*\)/g)) {
    const lit = /^(["'`])(.*)\1$/.exec(m[1]);
    if (!lit) {
      dynamic.push(`${path}: ${m[0]}`);
      continue;
    }
    const spec = lit[2];
    const hole = lit[1] === "`" ? spec.indexOf("${") : -1;
    if (hole >= 0) {
      const prefix = spec.slice(0, hole);
      const dir = prefix.slice(0, prefix.lastIndexOf("/") + 1) || "./";
      files.push({ from: path, target: new URL(dir, `file://${path}`).pathname.replace(/\/$/, ""), isDir: true });
    } else {
      files.push({ from: path, target: new URL(spec, `file://${path}`).pathname, isDir: false });
    }
  }
  return { files, dynamic };
}

/** Files opened through import.meta.url that the compile flags `argv` would not embed. */
async function missingEmbeds(argv: string[]): Promise<{ missing: string[]; dynamic: string[]; checked: number }> {
  const incl = includes(argv).map((p) => `${root}/${p.replace(/^\.\//, "").replace(/\/$/, "")}`);
  for (const p of incl) assert(Deno.statSync(p), `--include ${p} does not exist`);
  const entry = argv[argv.length - 1];
  // The graph of the CLI plus that of every included module (workers are only reachable that way).
  const entries = [entry, ...incl.filter((p) => p.endsWith(".ts")).map((p) => p.slice(root.length + 1))];
  const graph = new Set((await Promise.all(entries.map(localModules))).flat());
  const covered = (p: string) => graph.has(p) || incl.some((i) => p === i || p.startsWith(`${i}/`));
  const missing: string[] = [];
  const dynamic: string[] = [];
  let checked = 0;
  for (const mod of graph) {
    const r = runtimeFiles(mod);
    dynamic.push(...r.dynamic);
    for (const f of r.files) {
      checked++;
      if (!covered(f.target)) missing.push(`${f.from} opens ${f.target}${f.isDir ? "/*" : ""}`);
      if (f.isDir) {
        assert([...Deno.readDirSync(f.target)].length > 0, `${f.target} (opened by ${f.from}) is empty`);
      } else {
        assert(Deno.statSync(f.target).isFile, `${f.target} (opened by ${f.from}) does not exist`);
      }
    }
  }
  return { missing, dynamic, checked };
}

Deno.test("compile: every file opened via import.meta.url is in the graph or an --include", async () => {
  const { missing, dynamic, checked } = await missingEmbeds(compileTask());
  assertEquals(dynamic, [], "URLs built from non-literals cannot be checked; use a literal or template");
  assertEquals(missing, [], "add these to the --include list of the compile task in deno.json");
  console.log(`  ${checked} import.meta.url references, all embedded`);
  // The check has teeth: without the --include flags both the wasm builds and the worker go missing.
  const bare = compileTask().filter((a, i, all) => a !== "--include" && all[i - 1] !== "--include");
  const without = await missingEmbeds(bare);
  assert(without.missing.some((m) => m.includes("asm/build")), without.missing.join("\n"));
  assert(without.missing.some((m) => m.endsWith("lib/worker.ts")), without.missing.join("\n"));
});

/** Builds the binary into `dir`; returns the reason when denort cannot be had. */
async function compile(dir: string): Promise<string | undefined> {
  const argv = compileTask();
  const o = argv.indexOf("-o");
  assert(o > 0, "compile task has no -o");
  argv[o + 1] = `${dir}/sparq`;
  const out = await new Deno.Command(deno, {
    args: ["compile", ...argv],
    cwd: root,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(300_000),
  }).output();
  if (out.success) return undefined;
  const err = new TextDecoder().decode(out.stderr);
  if (!Deno.env.get("DENORT_BIN") && /denort|dns error|download|error sending request|connect/i.test(err)) {
    const lines = err.split("\n").map((l) => l.trim());
    const line = lines.filter((l) => /denort|dns error|download|error sending request|connect/i.test(l)).join(" / ");
    return `deno compile could not get denort (set DENORT_BIN to a local denort): ${line}`;
  }
  throw new Error(`deno compile failed:\n${err}`);
}

Deno.test("compile: the binary, alone in an empty directory, runs the demo model", async () => {
  const build = await Deno.makeTempDir();
  const empty = await Deno.makeTempDir();
  try {
    const reason = await compile(build);
    if (reason) {
      console.log(`  skipped: ${reason}`);
      return;
    }
    await Deno.copyFile(`${build}/sparq`, `${empty}/sparq`);
    await Deno.chmod(`${empty}/sparq`, 0o755);
    const model = `${root}/testdata/stories260K.gguf`;
    const run = (args: string[]) =>
      new Deno.Command(`${empty}/sparq`, { args, cwd: empty, stdout: "piped", stderr: "piped" }).output();
    const help = new TextDecoder().decode((await run(["generate", "--help"])).stdout);
    const args = help.includes("not implemented")
      ? ["info", model]
      : ["generate", "-m", model, "-p", "Once upon a time", "-n", "16", "--temp", "0"];
    const out = await run(args);
    const text = new TextDecoder().decode(out.stdout);
    assert(out.success, `sparq ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
    assert(text.trim().length > 0);
    console.log(`  sparq ${args[0]} from ${empty}: ${text.trim().split("\n")[0].slice(0, 80)}`);
    assertEquals([...Deno.readDirSync(empty)].map((e) => e.name), ["sparq"]);
  } finally {
    await Deno.remove(build, { recursive: true });
    await Deno.remove(empty, { recursive: true });
  }
});
