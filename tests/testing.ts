/**
 * Test helpers: locating `../shared` (present on developer and CI machines, not for users) and
 * skipping with a printed reason when it is absent.
 * @module
 */

/** Absolute path of the repository root. */
export const repoRoot: string = new URL("../", import.meta.url).pathname;

/** Path of `rel` under `../shared`, or undefined (with a printed reason) when it does not exist. */
export function sharedPath(rel: string): string | undefined {
  const p = new URL(`../../shared/${rel}`, import.meta.url).pathname;
  try {
    Deno.statSync(p);
    return p;
  } catch {
    console.log(`  skipped: ${p} not found (../shared is only on developer and CI machines)`);
    return undefined;
  }
}

/** Reads and parses a JSON file. */
export function readJson<T = unknown>(path: string): T {
  return JSON.parse(Deno.readTextFileSync(path)) as T;
}
