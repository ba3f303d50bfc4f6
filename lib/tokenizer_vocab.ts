/**
 * The vocabulary of a GGUF model as llama.cpp's `llama_vocab::load` sees it: token strings,
 * scores and attributes, the special token ids with llama.cpp's defaults and text-based
 * auto-detection (EOT, end-of-generation tokens), the BOS/EOS flags, and the list of special
 * tokens that split text before tokenization.
 * @module
 */
import { type GgufFile, metaArray, metaBool, metaNumber, metaString, stringItems } from "./gguf.ts";
import { SparqError } from "./errors.ts";

/** Token attribute bits (llama.cpp's `llama_token_attr`). */
export const Attr = {
  UNDEFINED: 0,
  UNKNOWN: 1 << 0,
  UNUSED: 1 << 1,
  NORMAL: 1 << 2,
  CONTROL: 1 << 3,
  USER_DEFINED: 1 << 4,
  BYTE: 1 << 5,
  LSTRIP: 1 << 7,
  RSTRIP: 1 << 8,
} as const;

/** GGUF `tokenizer.ggml.token_type` values → attribute bits. */
const TYPE_TO_ATTR: Record<number, number> = {
  0: Attr.UNDEFINED,
  1: Attr.NORMAL,
  2: Attr.UNKNOWN,
  3: Attr.CONTROL,
  4: Attr.USER_DEFINED,
  5: Attr.UNUSED,
  6: Attr.BYTE,
};

/** Texts llama.cpp takes as the end-of-turn token when the metadata names none. */
const EOT_TEXTS = new Set([
  "<|eot_id|>",
  "<|im_end|>",
  "<|end|>",
  "<end_of_turn>",
  "<|endoftext|>",
  "<|end_of_text|>",
  "<EOT>",
  "_<EOT>",
  "[EOT]",
  "<｜end▁of▁sentence｜>",
  "<end_of_utterance>",
]);

/** Texts llama.cpp treats as end of generation (and forces to CONTROL). */
const EOG_TEXTS = new Set([
  ...EOT_TEXTS,
  "<|return|>",
  "<|call|>",
  "<|flush|>",
  "<|calls|>",
  "<|eom_id|>",
  "[EOS]",
]);

/** A loaded vocabulary; ids that a model lacks are -1. */
export interface Vocab {
  path: string;
  /** `tokenizer.ggml.model`: "llama" (SentencePiece) or "gpt2" (byte-level BPE). */
  model: "llama" | "gpt2";
  /** `tokenizer.ggml.pre` ("" when absent). */
  pre: string;
  tokens: string[];
  scores: Float32Array;
  /** Attribute bits per token (after llama.cpp's overrides). */
  attrs: Uint16Array;
  tokenToId: Map<string, number>;
  bos: number;
  eos: number;
  eot: number;
  eom: number;
  unk: number;
  pad: number;
  addBos: boolean;
  addEos: boolean;
  /** SPM: prefix the text with a space (the "dummy prefix"); decode strips it again. */
  addSpacePrefix: boolean;
  /** End-of-generation ids (EOS, EOT, EOM and the texts llama.cpp recognises). */
  eog: Set<number>;
  /** CONTROL, USER_DEFINED and UNKNOWN tokens, longest text first (text is split on them). */
  specialTokens: number[];
}

/** Reads the vocabulary arrays and special-token metadata of `file`. */
export function loadVocab(file: GgufFile): Vocab {
  const where = file.path;
  const modelName = metaString(file, "tokenizer.ggml.model", "");
  if (modelName !== "llama" && modelName !== "gpt2") {
    throw new SparqError(
      `${where}: tokenizer.ggml.model ${
        modelName ? `"${modelName}"` : "is missing"
      }; supported: "llama" (SentencePiece), "gpt2" (BPE)`,
    );
  }
  const model = modelName;
  // The file keeps the strings as bytes (GgufStringArray); the tokenizer decodes them once here.
  const tokens = stringItems(metaArray(file, "tokenizer.ggml.tokens"));
  if (!tokens || tokens.length === 0) {
    throw new SparqError(`${where}: tokenizer.ggml.tokens is missing or not a string array`);
  }
  const n = tokens.length;
  const scoresIn = metaArray<ArrayLike<number>>(file, "tokenizer.ggml.scores");
  const typesIn = metaArray<ArrayLike<number>>(file, "tokenizer.ggml.token_type");
  for (const [key, arr] of [["scores", scoresIn], ["token_type", typesIn]] as const) {
    if (arr !== undefined && arr.length !== n) {
      throw new SparqError(
        `${where}: tokenizer.ggml.${key} has ${arr.length} entries but tokenizer.ggml.tokens has ${n}`,
      );
    }
  }
  const scores = new Float32Array(n);
  if (scoresIn) scores.set(Array.from(scoresIn, Number));
  const attrs = new Uint16Array(n);
  const tokenToId = new Map<string, number>();
  const texts: string[] = new Array(n);
  for (let i = 0; i < n; i++) {
    // llama.cpp renames empty tokens so that every text maps back to one id.
    const text = tokens[i] === "" ? `[EMPTY_${i}]` : tokens[i];
    if (tokenToId.has(text)) {
      throw new SparqError(`${where}: token ${i} ${JSON.stringify(text)} duplicates token ${tokenToId.get(text)}`);
    }
    tokenToId.set(text, i);
    texts[i] = text;
    attrs[i] = typesIn ? (TYPE_TO_ATTR[Number(typesIn[i])] ?? Attr.UNDEFINED) : Attr.NORMAL;
  }

  const pre = model === "gpt2" ? metaString(file, "tokenizer.ggml.pre", "") : "";
  // llama.cpp's defaults before the metadata is read.
  const spm = model === "llama";
  const ids = {
    bos: spm ? 1 : 11,
    eos: spm ? 2 : 11,
    eot: -1,
    eom: -1,
    unk: spm ? 0 : -1,
    pad: -1,
  };
  const keys: [keyof typeof ids, string][] = [
    ["bos", "bos_token_id"],
    ["eos", "eos_token_id"],
    ["eot", "eot_token_id"],
    ["eom", "eom_token_id"],
    ["unk", "unknown_token_id"],
    ["pad", "padding_token_id"],
  ];
  for (const [name, key] of keys) {
    const v = metaNumber(file, `tokenizer.ggml.${key}`, -1);
    // llama.cpp ignores out-of-range ids (with a warning) and keeps its default.
    if (Number.isInteger(v) && v >= 0 && v < n) ids[name] = v;
  }
  const llama3Like = ["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "chameleon", "tekken"];
  const addBos = metaBool(file, "tokenizer.ggml.add_bos_token", spm || llama3Like.includes(pre));
  const addEos = metaBool(file, "tokenizer.ggml.add_eos_token", false);
  const addSpacePrefix = metaBool(file, "tokenizer.ggml.add_space_prefix", spm);

  // Text-based detection, as llama.cpp does for models whose converter did not set the ids.
  if (ids.eot < 0) {
    for (let i = 0; i < n; i++) {
      if (EOT_TEXTS.has(texts[i])) {
        ids.eot = i;
        break;
      }
    }
  }
  if (ids.eom < 0 && tokenToId.has("<|eom_id|>")) ids.eom = tokenToId.get("<|eom_id|>")!;
  const eog = new Set<number>();
  for (let i = 0; i < n; i++) {
    if (EOG_TEXTS.has(texts[i])) {
      eog.add(i);
      attrs[i] |= Attr.CONTROL;
    }
  }
  for (let i = 0; i < n; i++) {
    if ((attrs[i] & Attr.CONTROL) && texts[i].includes("unused")) attrs[i] |= Attr.UNUSED;
  }
  // gpt-oss: these control-looking tokens are always rendered.
  for (const t of ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"]) {
    const id = tokenToId.get(t);
    if (id !== undefined) attrs[id] = Attr.USER_DEFINED;
  }
  for (const id of [ids.eos, ids.eot, ids.eom]) if (id >= 0) eog.add(id);

  const specialTokens: number[] = [];
  for (let i = 0; i < n; i++) {
    if (attrs[i] & (Attr.CONTROL | Attr.USER_DEFINED | Attr.UNKNOWN)) specialTokens.push(i);
  }
  specialTokens.sort((a, b) => texts[b].length - texts[a].length || a - b);

  // Phi-3: special tokens swallow the whitespace after them (llama.cpp sets this by model name).
  const name = metaString(file, "general.name", "").toLowerCase();
  if (name.includes("phi-3") || name.includes("phi3")) {
    for (const id of specialTokens) attrs[id] |= Attr.RSTRIP;
    const eosText = tokenToId.get("</s>");
    if (eosText !== undefined) attrs[eosText] |= Attr.RSTRIP;
    for (const t of ["<unk>", "<s>", "<|endoftext|>"]) {
      const id = tokenToId.get(t);
      if (id !== undefined) attrs[id] &= ~Attr.RSTRIP;
    }
  }

  return {
    path: where,
    model,
    pre,
    tokens: texts,
    scores,
    attrs,
    tokenToId,
    ...ids,
    addBos,
    addEos,
    addSpacePrefix,
    eog,
    specialTokens,
  };
}

/** A piece of input text, or a special token that was found in it. */
export type Fragment = string | number;

function isCSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

/**
 * Splits `text` on the text of special tokens (llama.cpp's `tokenizer_st_partition`): longest
 * tokens first; CONTROL and UNKNOWN tokens only when `parseSpecial`, USER_DEFINED always.
 */
export function partitionSpecial(vocab: Vocab, text: string, parseSpecial: boolean): Fragment[] {
  let frags: Fragment[] = text.length > 0 ? [text] : [];
  for (const id of vocab.specialTokens) {
    const attr = vocab.attrs[id];
    if (!parseSpecial && (attr & (Attr.CONTROL | Attr.UNKNOWN))) continue;
    const tok = vocab.tokens[id];
    if (!frags.some((f) => typeof f === "string" && f.includes(tok))) continue;
    const next: Fragment[] = [];
    for (const f of frags) {
      if (typeof f !== "string") {
        next.push(f);
        continue;
      }
      let start = 0;
      for (;;) {
        const at = f.indexOf(tok, start);
        if (at < 0) {
          if (start < f.length) next.push(start === 0 ? f : f.slice(start));
          break;
        }
        let leftEnd = at;
        if (attr & Attr.LSTRIP) { while (leftEnd > start && isCSpace(f.charCodeAt(leftEnd - 1))) leftEnd--; }
        if (leftEnd > start) next.push(f.slice(start, leftEnd));
        next.push(id);
        start = at + tok.length;
        if (attr & Attr.RSTRIP) { while (start < f.length && isCSpace(f.charCodeAt(start))) start++; }
      }
    }
    frags = next;
  }
  return frags;
}
