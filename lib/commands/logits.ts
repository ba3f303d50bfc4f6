/**
 * `sparq logits` (placeholder until its issue lands).
 * @module
 */
import type { Command } from "./args.ts";
import { SparqError } from "../errors.ts";

/** The `logits` subcommand. */
export const command: Command = {
  name: "logits",
  summary: "(not implemented yet)",
  help: "sparq logits: not implemented yet",
  run() {
    return Promise.reject(new SparqError("logits: not implemented yet"));
  },
};
