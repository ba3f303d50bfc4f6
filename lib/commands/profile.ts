/**
 * `sparq profile` (placeholder until its issue lands).
 * @module
 */
import type { Command } from "./args.ts";
import { SparqError } from "../errors.ts";

/** The `profile` subcommand. */
export const command: Command = {
  name: "profile",
  summary: "(not implemented yet)",
  help: "sparq profile: not implemented yet",
  run() {
    return Promise.reject(new SparqError("profile: not implemented yet"));
  },
};
