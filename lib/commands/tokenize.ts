/**
 * `sparq tokenize`: text → token ids with a model's tokenizer (the same ids as llama.cpp), for
 * scripts and for debugging prompts.
 * @module
 */
import { type Command, parseFlags } from "./args.ts";
import { SparqError } from "../errors.ts";
import { openGguf } from "../gguf.ts";
import { tokenizerFromGguf } from "../tokenizer.ts";

const HELP = `sparq tokenize — turn text into token ids with a model's tokenizer

usage: sparq tokenize -m MODEL (-p TEXT | -f FILE | --stdin) [--ids | --pieces | --json]
                      [--no-bos] [--special]

  -m, --model MODEL   GGUF file whose tokenizer.ggml.* metadata defines the tokenizer
                      (only the header is read, so any model size is fine)
  -p, --prompt TEXT   the text to tokenize
  -f, --file FILE     read the text from FILE (UTF-8; invalid bytes are replaced by U+FFFD,
                      with a warning on stderr, as a UTF-8 decoder reading the file would)
      --stdin         read the text from standard input (same UTF-8 rule as -f)
      --ids           print only the ids, as one list: [1, 403, 407]
      --pieces        print only the pieces: one JSON-quoted vocabulary string per line
                      ("▁Once", "<0x0A>", "Ġworld")
      --json          print one JSON object {"ids": [...], "pieces": [...]} (pieces as for --pieces)
      --no-bos        add no BOS/EOS token (by default they are added as the model's metadata
                      says: tokenizer.ggml.add_bos_token / add_eos_token)
      --special       parse special-token text: "<s>", "<|endoftext|>" … become their ids
                      (by default such text is tokenized as plain text)
  -h, --help          this text

Without --ids/--pieces/--json each token is printed on its own line as
  ID -> 'TEXT'
where TEXT is what the token decodes to (control tokens shown as their text; bytes that are
not a whole UTF-8 character shown as U+FFFD). Empty text is an error (exit 2).`;

/** Reads a UTF-8 text file; invalid byte sequences become U+FFFD (a warning names the file). */
export async function readTextLossy(path: string, read: () => Promise<Uint8Array>): Promise<string> {
  const bytes = await read();
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    console.error(`sparq: warning: ${path}: invalid UTF-8 replaced by U+FFFD`);
    return new TextDecoder("utf-8").decode(bytes);
  }
}

async function readStdin(): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const c of Deno.stdin.readable) chunks.push(c);
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

async function readFile(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new SparqError(`tokenize: -f ${path}: no such file`);
    if (e instanceof Deno.errors.IsADirectory) throw new SparqError(`tokenize: -f ${path}: is a directory`);
    throw e;
  }
}

/** The `tokenize` subcommand. */
export const command: Command = {
  name: "tokenize",
  summary: "text → token ids with a model's tokenizer (same ids as llama.cpp)",
  help: HELP,
  async run(args) {
    const { values: v } = parseFlags("tokenize", args, {
      model: { type: "string", short: "m" },
      prompt: { type: "string", short: "p" },
      file: { type: "string", short: "f" },
      stdin: { type: "boolean" },
      ids: { type: "boolean" },
      pieces: { type: "boolean" },
      json: { type: "boolean" },
      "no-bos": { type: "boolean" },
      special: { type: "boolean" },
    });
    if (!v.model) throw new SparqError("tokenize: -m MODEL is required");
    const sources = [v.prompt !== undefined, v.file !== undefined, v.stdin === true].filter((x) => x).length;
    if (sources !== 1) throw new SparqError("tokenize: give exactly one of -p TEXT, -f FILE, --stdin");
    if ([v.ids, v.pieces, v.json].filter((x) => x).length > 1) {
      throw new SparqError("tokenize: --ids, --pieces and --json exclude each other");
    }
    const text = v.prompt ??
      (v.file !== undefined
        ? await readTextLossy(v.file, () => readFile(v.file!))
        : await readTextLossy("stdin", readStdin));
    if (text.length === 0) throw new SparqError(`tokenize: the text is empty${v.file ? ` (${v.file})` : ""}`);
    const tok = tokenizerFromGguf(await openGguf(v.model));
    const ids = tok.encode(text, { addSpecial: !v["no-bos"], parseSpecial: v.special ?? false });
    const pieces = ids.map((id) => tok.piece(id));
    let out: string;
    if (v.ids) out = `[${ids.join(", ")}]`;
    else if (v.pieces) out = pieces.map((p) => JSON.stringify(p)).join("\n");
    else if (v.json) out = JSON.stringify({ ids, pieces });
    else {
      const dec = new TextDecoder();
      out = ids.map((id) => `${String(id).padStart(6)} -> '${dec.decode(tok.pieceBytes(id, true))}'`).join("\n");
    }
    await Deno.stdout.write(new TextEncoder().encode(out + "\n"));
    return 0;
  },
};
