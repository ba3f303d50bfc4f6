/**
 * Shared flag parsing for subcommands: `node:util` parseArgs with errors turned into one-line
 * SparqErrors that name the flag, plus number/list helpers.
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { SparqError } from "../errors.ts";

/** A subcommand of the CLI. */
export interface Command {
  name: string;
  /** One line for `sparq --help`. */
  summary: string;
  /** Full `--help` text. */
  help: string;
  /** Runs the command; resolves to the process exit code. */
  run(args: string[]): Promise<number>;
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Parses `args` against `options`; unknown flags and missing values become SparqErrors. */
export function parseFlags<O extends Options>(
  command: string,
  args: string[],
  options: O,
  allowPositionals = false,
) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (e) {
    throw new SparqError(`${command}: ${(e as Error).message.split("\n")[0]} (see sparq ${command} --help)`);
  }
}

/** Parses an integer flag value in [min, max]. */
export function intFlag(flag: string, value: string | undefined, def: number, min = -Infinity, max = Infinity): number {
  if (value === undefined) return def;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new SparqError(`${flag}: expected an integer${rangeText(min, max)}, got "${value}"`);
  }
  return n;
}

/** Parses a float flag value in [min, max]. */
export function floatFlag(
  flag: string,
  value: string | undefined,
  def: number,
  min = -Infinity,
  max = Infinity,
): number {
  if (value === undefined) return def;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < min || n > max) {
    throw new SparqError(`${flag}: expected a number${rangeText(min, max)}, got "${value}"`);
  }
  return n;
}

/** Splits a comma-separated flag value into trimmed, non-empty items. */
export function listFlag(value: string | undefined, def: string[]): string[] {
  if (value === undefined) return def;
  return value.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}

function rangeText(min: number, max: number): string {
  if (min === -Infinity && max === Infinity) return "";
  if (max === Infinity) return ` >= ${min}`;
  if (min === -Infinity) return ` <= ${max}`;
  return ` in ${min}..${max}`;
}

/**
 * Splits an --attention list on commas, keeping `key=value` options with the spec before them:
 * `dense,sparq:r=16,k=256` → [`dense`, `sparq:r=16,k=256`].
 */
export function splitAttentionList(values: string[]): string[] {
  const out: string[] = [];
  for (const part of values.flatMap((v) => v.split(",")).map((s) => s.trim()).filter((s) => s !== "")) {
    const continuation = part.includes("=") && !part.includes(":");
    if (continuation && out.length > 0) out[out.length - 1] += `,${part}`;
    else out.push(part);
  }
  return out;
}
