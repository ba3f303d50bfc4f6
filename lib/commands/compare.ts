/**
 * `sparq compare` (placeholder until its issue lands).
 * @module
 */
import type { Command } from "./args.ts";
import { SparqError } from "../errors.ts";

/** The `compare` subcommand. */
export const command: Command = {
  name: "compare",
  summary: "(not implemented yet)",
  help: "sparq compare: not implemented yet",
  run() {
    return Promise.reject(new SparqError("compare: not implemented yet"));
  },
};
