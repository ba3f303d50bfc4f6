/**
 * `sparq generate` (placeholder until its issue lands).
 * @module
 */
import type { Command } from "./args.ts";
import { SparqError } from "../errors.ts";

/** The `generate` subcommand. */
export const command: Command = {
  name: "generate",
  summary: "(not implemented yet)",
  help: "sparq generate: not implemented yet",
  run() {
    return Promise.reject(new SparqError("generate: not implemented yet"));
  },
};
