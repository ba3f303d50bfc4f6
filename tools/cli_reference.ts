/**
 * Prints the CLI reference (every subcommand's `--help`) as Markdown, for README.md's "Commands"
 * section: `deno run --allow-read tools/cli_reference.ts`. tests/readme_test.ts checks that the
 * README documents every flag that the help texts list.
 * @module
 */
import { COMMANDS } from "../cli.ts";

/** The Markdown reference: one subsection per command with its help text. */
export function cliReference(): string {
  return COMMANDS.map((c) => `### \`sparq ${c.name}\`\n\n${c.summary}\n\n\`\`\`text\n${c.help.trim()}\n\`\`\``).join(
    "\n\n",
  );
}

if (import.meta.main) console.log(cliReference());
