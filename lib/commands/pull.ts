/**
 * `sparq pull URL|hf:OWNER/REPO/FILE.gguf [-o DIR]`: downloads a model into the cache (or DIR).
 * @module
 */
import { type Command, parseFlags } from "./args.ts";
import { SparqError } from "../errors.ts";
import { cachedPath, join, parseRemoteRef } from "../model_cache.ts";
import { pullFile } from "../pull.ts";
import { formatBytes } from "../progress.ts";

const HELP = `sparq pull URL|hf:OWNER/REPO/FILE.gguf [-o DIR] [--quiet]

Downloads a model file. hf:OWNER/REPO/FILE maps to https://huggingface.co/OWNER/REPO/resolve/main/FILE.
Without -o the file goes to the model cache ($SPARQ_CACHE, else $XDG_CACHE_HOME/sparq, else
~/.cache/sparq), where "sparq generate -m hf:OWNER/REPO/FILE.gguf" finds it.

The download is streamed to FILE.part and renamed when complete; an interrupted pull resumes where it
stopped (HTTP Range). When the server publishes a SHA-256 (X-Linked-ETag, ETag, X-Sha256, Digest) the
file is verified before the rename. Prints the final path on stdout.

  -o, --output DIR   directory to save into (default: the cache)
  -q, --quiet        no progress bar (it is only drawn on a terminal anyway)

Permissions: --allow-net (the host), --allow-write and --allow-read (the destination),
--allow-env (to find the cache directory).`;

/** The `pull` subcommand. */
export const command: Command = {
  name: "pull",
  summary: "download a model (URL or hf:OWNER/REPO/FILE.gguf) into the cache, resumable",
  help: HELP,
  async run(args) {
    const { values, positionals } = parseFlags("pull", args, {
      output: { type: "string", short: "o" },
      quiet: { type: "boolean", short: "q" },
    }, true);
    if (positionals.length !== 1) throw new SparqError("pull: expected one URL or hf:OWNER/REPO/FILE.gguf");
    const remote = parseRemoteRef(positionals[0]);
    const dest = values.output !== undefined ? join(values.output, remote.fileName) : cachedPath(remote);
    const result = await pullFile(remote.url, dest, { progress: values.quiet ? false : undefined });
    if (result.alreadyPresent) {
      console.error(`already downloaded (${formatBytes(result.bytes)}); delete it to download again`);
    } else {
      const notes = [formatBytes(result.bytes)];
      if (result.resumedFrom > 0) notes.push(`resumed from ${formatBytes(result.resumedFrom)}`);
      notes.push(result.checksum ? `sha256 verified (${result.checksum.source})` : "no checksum from the server");
      console.error(`downloaded ${remote.ref}: ${notes.join(", ")}`);
    }
    console.log(result.path);
    return 0;
  },
};
