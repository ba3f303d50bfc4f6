/**
 * `sparq tokenize` (placeholder until its issue lands).
 * @module
 */
import type { Command } from "./args.ts";
import { SparqError } from "../errors.ts";

/** The `tokenize` subcommand. */
export const command: Command = {
  name: "tokenize",
  summary: "(not implemented yet)",
  help: "sparq tokenize: not implemented yet",
  run() {
    return Promise.reject(new SparqError("tokenize: not implemented yet"));
  },
};
