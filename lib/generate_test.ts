import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { StopFilter } from "./generate.ts";

Deno.test("stop filter: holds back possible prefixes, cuts at the stop string", () => {
  const out: string[] = [];
  const f = new StopFilter(["END", "\n\n"], (t) => out.push(t));
  assertEquals(f.push("Hello E"), false);
  assertEquals(out.join(""), "Hello ");
  assertEquals(f.push("N"), false);
  assertEquals(f.push("x"), false);
  assertEquals(out.join(""), "Hello ENx");
  assertEquals(f.push(" and\n"), false);
  assertEquals(f.push("\nmore"), true);
  assertEquals(f.emitted, "Hello ENx and");
});
