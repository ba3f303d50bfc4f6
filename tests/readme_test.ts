import assert from "node:assert/strict";
import { COMMANDS } from "../cli.ts";
import { repoRoot } from "./testing.ts";

Deno.test("README documents every subcommand and every flag its --help lists", () => {
  const readme = Deno.readTextFileSync(`${repoRoot}README.md`);
  for (const c of COMMANDS) {
    assert.ok(readme.includes(`sparq ${c.name}`), `README lacks sparq ${c.name}`);
    for (const flag of new Set(c.help.match(/--[a-z][a-z0-9-]*/g) ?? [])) {
      assert.ok(readme.includes(flag), `README lacks ${flag} of sparq ${c.name}`);
    }
  }
});

Deno.test("README names the test and demo commands", () => {
  const readme = Deno.readTextFileSync(`${repoRoot}README.md`);
  assert.ok(readme.includes("deno task test"));
  assert.ok(readme.includes("deno task demo"));
});
