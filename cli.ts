#!/usr/bin/env -S deno run --allow-read --allow-write
/**
 * The `sparq` command line: a thin dispatcher over `lib/commands/*.ts` (each subcommand parses
 * its own flags and calls the library in `mod.ts`).
 * @module
 */
import { SparqError } from "./lib/errors.ts";
import type { Command } from "./lib/commands/args.ts";
import { command as info } from "./lib/commands/info.ts";
import { command as synth } from "./lib/commands/synth.ts";
import { command as tokenize } from "./lib/commands/tokenize.ts";
import { command as detokenize } from "./lib/commands/detokenize.ts";
import { command as generate } from "./lib/commands/generate.ts";
import { command as logits } from "./lib/commands/logits.ts";
import { command as profile } from "./lib/commands/profile.ts";
import { command as compare } from "./lib/commands/compare.ts";
import { command as pull } from "./lib/commands/pull.ts";

/** Every subcommand, in the order `sparq --help` lists them. */
export const COMMANDS: Command[] = [info, generate, logits, tokenize, detokenize, profile, compare, synth, pull];

const VERSION = "0.1.0";

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    `sparq ${VERSION} — GGUF language models on WebAssembly SIMD and WebGPU, with SparQ Attention`,
    "",
    "usage: sparq <command> [flags]      (sparq <command> --help for its flags)",
    "",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "global flags: --debug (stack traces on errors), --version, --help",
  ].join("\n");
}

/** Runs the CLI with `argv`; resolves to the exit code. Errors in input exit with 2. */
export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes("--debug");
  const args = argv.filter((a) => a !== "--debug");
  const name = args[0];
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === "--version") {
    console.log(`sparq ${VERSION}`);
    return 0;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  try {
    if (!cmd) throw new SparqError(`unknown command "${name}" (commands: ${COMMANDS.map((c) => c.name).join(", ")})`);
    if (args.includes("--help") || args.includes("-h")) {
      console.log(cmd.help);
      return 0;
    }
    return await cmd.run(args.slice(1));
  } catch (e) {
    if (e instanceof SparqError) {
      console.error(`sparq: ${e.message}`);
      if (debug) console.error(e.stack);
      return e.exitCode;
    }
    if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
      console.error(`sparq: ${(e as Error).message} (see docs/PERMISSIONS.md)`);
      return 2;
    }
    console.error(
      `sparq: internal error: ${(e as Error)?.message ?? e}${debug ? "" : " (run with --debug for details)"}`,
    );
    if (debug) console.error((e as Error)?.stack);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exitCode = await main(Deno.args);
}
