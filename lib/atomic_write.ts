/**
 * Writing output files without ever leaving a partial file under the final name.
 * @module
 */
import { SparqError } from "./errors.ts";

/** Writes `text` to `path` through a temporary file and a rename; `flag` names the option in errors. */
export function writeFileAtomic(path: string, text: string, flag: string): void {
  const tmp = `${path}.tmp-${Deno.pid}`;
  try {
    Deno.writeTextFileSync(tmp, text);
    Deno.renameSync(tmp, path);
  } catch (e) {
    try {
      Deno.removeSync(tmp);
    } catch { /* nothing was written */ }
    throw new SparqError(`${flag} ${path}: cannot write (${(e as Error).message})`);
  }
}
