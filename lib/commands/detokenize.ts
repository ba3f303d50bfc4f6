/**
 * `sparq detokenize` (placeholder until its issue lands).
 * @module
 */
import type { Command } from "./args.ts";
import { SparqError } from "../errors.ts";

/** The `detokenize` subcommand. */
export const command: Command = {
  name: "detokenize",
  summary: "(not implemented yet)",
  help: "sparq detokenize: not implemented yet",
  run() {
    return Promise.reject(new SparqError("detokenize: not implemented yet"));
  },
};
