/**
 * Tokenizers built from a GGUF file's `tokenizer.ggml.*` metadata, producing the same ids as
 * llama.cpp: SentencePiece (`tokenizer.ggml.model = "llama"`) and byte-level BPE (`"gpt2"`, with
 * the pre-tokenizer named by `tokenizer.ggml.pre`).
 *
 * Input text is a JS string, so it is always valid Unicode: callers reading bytes (a prompt file)
 * decode them first, and invalid UTF-8 becomes U+FFFD there (see lib/commands/tokenize.ts).
 * @module
 */
import { type GgufFile, metaArray } from "./gguf.ts";
import { SparqError } from "./errors.ts";
import { Attr, type Fragment, loadVocab, partitionSpecial, type Vocab } from "./tokenizer_vocab.ts";
import { SpmEncoder } from "./tokenizer_spm.ts";
import { BpeEncoder, bpeMerges, CHAR_TO_BYTE } from "./tokenizer_bpe.ts";
import { createStreamDecoder, type StreamDecoder } from "./token_stream.ts";

export type { StreamDecoder } from "./token_stream.ts";

/** Options of `Tokenizer.encode`. */
export interface EncodeOptions {
  /** Add BOS/EOS as the model's metadata asks (`add_bos_token`/`add_eos_token`); default true. */
  addSpecial?: boolean;
  /** Turn the text of control tokens (`<s>`, `<|endoftext|>`, …) into their ids; default false. */
  parseSpecial?: boolean;
}

/** Options of `Tokenizer.decode`. */
export interface DecodeOptions {
  /** Drop a leading BOS and trailing EOS when the model adds them; default false. */
  removeSpecial?: boolean;
  /** Render control tokens as their text (`<s>`) instead of nothing; default false. */
  unparseSpecial?: boolean;
}

/** Options of `Tokenizer.streamDecoder`. */
export interface StreamOptions {
  /** Render control tokens as their text; default false. */
  unparseSpecial?: boolean;
}

/** A tokenizer equivalent to llama.cpp's for one model. */
export interface Tokenizer {
  readonly kind: "spm" | "bpe";
  readonly nVocab: number;
  readonly bos: number;
  readonly eos: number;
  /** End-of-turn token, -1 if none. */
  readonly eot: number;
  /** Unknown token, -1 if none. */
  readonly unk: number;
  /** Padding token, -1 if none. */
  readonly pad: number;
  readonly addBos: boolean;
  readonly addEos: boolean;
  /** Text → ids (llama.cpp `llama_tokenize`); empty text gives just the BOS (when added), as there. */
  encode(text: string, opts?: EncodeOptions): number[];
  /** Ids → text (llama.cpp `llama_detokenize`: SPM drops the first token's leading space). */
  decode(ids: number[], opts?: DecodeOptions): string;
  /** The raw vocabulary string of `id` (`tokenizer.ggml.tokens`). */
  piece(id: number): string;
  /** The bytes `id` contributes to decoded text (llama.cpp `llama_token_to_piece`). */
  pieceBytes(id: number, unparseSpecial?: boolean): Uint8Array;
  /** True for control tokens and every end-of-generation token (EOS, EOT, …): stop generating. */
  isControl(id: number): boolean;
  /** True for end-of-generation tokens only. */
  isEog(id: number): boolean;
  /** A decoder for generated tokens that never emits half a UTF-8 character (no space stripping). */
  streamDecoder(opts?: StreamOptions): StreamDecoder;
}

const SPACE_MARK = /\u2581/g;
const utf8 = new TextEncoder();
const EMPTY = new Uint8Array(0);

class GgufTokenizer implements Tokenizer {
  readonly kind: "spm" | "bpe";
  readonly nVocab: number;
  readonly bos: number;
  readonly eos: number;
  readonly eot: number;
  readonly unk: number;
  readonly pad: number;
  readonly addBos: boolean;
  readonly addEos: boolean;
  private readonly spm?: SpmEncoder;
  private readonly bpe?: BpeEncoder;
  private readonly cleanSpaces: boolean;
  /** llama.cpp's piece cache (rendered with special = true), built lazily. */
  private readonly pieces: (Uint8Array | undefined)[];

  constructor(private readonly vocab: Vocab, file: GgufFile) {
    this.kind = vocab.model === "llama" ? "spm" : "bpe";
    this.nVocab = vocab.tokens.length;
    this.bos = vocab.bos;
    this.eos = vocab.eos;
    this.eot = vocab.eot;
    this.unk = vocab.unk;
    this.pad = vocab.pad;
    this.addBos = vocab.addBos;
    this.addEos = vocab.addEos;
    if (this.kind === "spm") {
      this.spm = new SpmEncoder(vocab);
      this.cleanSpaces = false;
    } else {
      this.bpe = new BpeEncoder(vocab, bpeMerges(metaArray(file, "tokenizer.ggml.merges"), file.path));
      this.cleanSpaces = this.bpe.pre.cleanSpaces;
    }
    this.pieces = new Array(this.nVocab);
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const addSpecial = opts.addSpecial ?? true;
    // Lone surrogates become U+FFFD, as invalid UTF-8 does in llama.cpp.
    const frags: Fragment[] = partitionSpecial(
      this.vocab,
      text.isWellFormed() ? text : text.toWellFormed(),
      opts.parseSpecial ?? false,
    );
    const out: number[] = [];
    if (addSpecial && this.addBos) out.push(this.bos);
    if (this.spm) {
      // The dummy prefix goes before the first text and after every special token.
      let prevSpecial = true;
      for (const f of frags) {
        if (typeof f === "number") {
          out.push(f);
          prevSpecial = true;
          continue;
        }
        const t = this.vocab.addSpacePrefix && prevSpecial ? " " + f : f;
        this.spm.encode(t, out);
        prevSpecial = false;
      }
    } else {
      for (const f of frags) {
        if (typeof f === "number") out.push(f);
        else this.bpe!.encode(f, out);
      }
    }
    if (addSpecial && this.addEos) out.push(this.eos);
    return out;
  }

  decode(ids: number[], opts: DecodeOptions = {}): string {
    let first = 0, end = ids.length;
    let stripSpace = this.vocab.addSpacePrefix;
    if (opts.removeSpecial && this.addBos && end > 0 && ids[0] === this.bos) {
      stripSpace = false;
      first = 1;
    }
    if (opts.removeSpecial && this.addEos && end > first && ids[end - 1] === this.eos) end--;
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let i = first; i < end; i++) {
      let p = this.pieceBytes(ids[i], opts.unparseSpecial ?? false);
      // Only the first token loses one leading space (the SPM dummy prefix).
      if (stripSpace && p.length > 0 && p[0] === 32) p = p.subarray(1);
      stripSpace = false;
      parts.push(p);
      total += p.length;
    }
    let bytes: Uint8Array = new Uint8Array(total);
    let o = 0;
    for (const p of parts) {
      bytes.set(p, o);
      o += p.length;
    }
    if (this.cleanSpaces) bytes = cleanSpaces(bytes);
    return new TextDecoder().decode(bytes);
  }

  piece(id: number): string {
    this.check(id);
    return this.vocab.tokens[id];
  }

  pieceBytes(id: number, unparseSpecial = false): Uint8Array {
    this.check(id);
    const attr = this.vocab.attrs[id];
    if (!unparseSpecial && (attr & (Attr.UNKNOWN | Attr.CONTROL))) return EMPTY;
    return this.pieces[id] ??= this.renderPiece(id);
  }

  isControl(id: number): boolean {
    this.check(id);
    return (this.vocab.attrs[id] & Attr.CONTROL) !== 0 || this.vocab.eog.has(id);
  }

  isEog(id: number): boolean {
    return this.vocab.eog.has(id);
  }

  streamDecoder(opts: StreamOptions = {}): StreamDecoder {
    const special = opts.unparseSpecial ?? false;
    return createStreamDecoder((id) => this.pieceBytes(id, special));
  }

  private check(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.nVocab) {
      throw new SparqError(`token id ${id} is out of range (vocabulary of ${this.nVocab} tokens)`);
    }
  }

  /** llama.cpp's token_to_piece with special = true. */
  private renderPiece(id: number): Uint8Array {
    const attr = this.vocab.attrs[id];
    const text = this.vocab.tokens[id];
    if (attr & (Attr.UNKNOWN | Attr.CONTROL | Attr.USER_DEFINED)) return utf8.encode(text);
    if (this.kind === "spm") {
      if (attr & Attr.NORMAL) return utf8.encode(text.replace(SPACE_MARK, " "));
      if (attr & Attr.BYTE) return new Uint8Array([parseInt(text.slice(3, 5), 16)]);
      return EMPTY;
    }
    if (attr & Attr.NORMAL) return bpeTextBytes(text);
    return EMPTY;
  }
}

/** Bytes of a byte-level BPE token (llama.cpp `llama_decode_text`, including its [UNK_BYTE_…] marker). */
function bpeTextBytes(text: string): Uint8Array {
  const out: number[] = [];
  for (const ch of text) {
    const b = CHAR_TO_BYTE.get(ch.codePointAt(0)!);
    if (b !== undefined) {
      out.push(b);
      continue;
    }
    const hex = Array.from(utf8.encode(ch), (x) => x.toString(16).padStart(2, "0")).join("");
    out.push(...utf8.encode(`[UNK_BYTE_0x${hex}${text}]`));
  }
  return new Uint8Array(out);
}

/** llama.cpp's `clean_spaces` passes over detokenized bytes (" ," → ",", " 's" → "'s", …). */
function cleanSpaces(t: Uint8Array): Uint8Array {
  const SP = 32, Q = 39;
  let a = Array.from(t);
  // 1: no space before ? ! . ,
  let out: number[] = a.length ? [a[0]] : [];
  for (let i = 1; i < a.length; i++) {
    const x = a[i];
    if (a[i - 1] === SP && (x === 63 || x === 33 || x === 46 || x === 44)) out.pop();
    out.push(x);
  }
  // 2: " ' " → "'"
  a = out;
  out = a.length ? [a[0]] : [];
  for (let i = 1; i < a.length; i++) {
    const x = a[i];
    if (x === Q && i + 1 < a.length && a[i - 1] === SP && a[i + 1] === SP) {
      out.pop();
      out.push(x);
      // llama.cpp overwrites the space after the apostrophe with NUL in place and skips it.
      a[++i] = 0;
      continue;
    }
    out.push(x);
  }
  // 3: " 's" " 'm" " 're" " 've" → no space
  a = out;
  out = a.length ? [a[0]] : [];
  for (let i = 1; i < a.length; i++) {
    const x = a[i];
    if (a[i - 1] === SP && x === Q && i + 1 < a.length) {
      const x1 = a[i + 1];
      if (x1 === 115 || x1 === 109) out.pop();
      else if (i + 2 < a.length) {
        const x2 = a[i + 2];
        if ((x1 === 114 && x2 === 101) || (x1 === 118 && x2 === 101)) out.pop();
      }
    }
    out.push(x);
  }
  return new Uint8Array(out);
}

/** Builds the tokenizer of a GGUF model; SparqError for malformed or unsupported vocabularies. */
export function tokenizerFromGguf(file: GgufFile): Tokenizer {
  return new GgufTokenizer(loadVocab(file), file);
}
