/**
 * `sparq pull` (placeholder until its issue lands).
 * @module
 */
import type { Command } from "./args.ts";
import { SparqError } from "../errors.ts";

/** The `pull` subcommand. */
export const command: Command = {
  name: "pull",
  summary: "(not implemented yet)",
  help: "sparq pull: not implemented yet",
  run() {
    return Promise.reject(new SparqError("pull: not implemented yet"));
  },
};
