/**
 * `sparq synth` (placeholder until its issue lands).
 * @module
 */
import type { Command } from "./args.ts";
import { SparqError } from "../errors.ts";

/** The `synth` subcommand. */
export const command: Command = {
  name: "synth",
  summary: "(not implemented yet)",
  help: "sparq synth: not implemented yet",
  run() {
    return Promise.reject(new SparqError("synth: not implemented yet"));
  },
};
