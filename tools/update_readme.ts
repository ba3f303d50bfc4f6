/**
 * Rewrites the CLI reference in README.md (between the `cli-reference` markers) from the
 * subcommands' `--help` texts: `deno run --allow-read --allow-write=README.md tools/update_readme.ts`.
 * @module
 */
import { cliReference } from "./cli_reference.ts";

const path = new URL("../README.md", import.meta.url).pathname;
const readme = Deno.readTextFileSync(path);
const start = "<!-- cli-reference:start -->", end = "<!-- cli-reference:end -->";
const a = readme.indexOf(start), b = readme.indexOf(end);
if (a < 0 || b < a) throw new Error("README.md lacks the cli-reference markers");
Deno.writeTextFileSync(path, readme.slice(0, a + start.length) + "\n\n" + cliReference() + "\n\n" + readme.slice(b));
