/**
 * User-facing errors. A `SparqError` means bad input (a malformed file, a wrong flag, too little
 * memory): the CLI prints its one-line message and exits with `exitCode` (2), no stack trace.
 * Any other exception is a bug in sparq.
 * @module
 */

/** Bad input that the user can fix; the message names the file or flag at fault. */
export class SparqError extends Error {
  /** Process exit code the CLI uses for this error. */
  readonly exitCode: number;
  constructor(message: string, exitCode = 2) {
    super(message);
    this.name = "SparqError";
    this.exitCode = exitCode;
  }
}
