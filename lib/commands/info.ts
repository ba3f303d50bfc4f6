/**
 * `sparq info` (placeholder until its issue lands).
 * @module
 */
import type { Command } from "./args.ts";
import { SparqError } from "../errors.ts";

/** The `info` subcommand. */
export const command: Command = {
  name: "info",
  summary: "(not implemented yet)",
  help: "sparq info: not implemented yet",
  run() {
    return Promise.reject(new SparqError("info: not implemented yet"));
  },
};
