/**
 * Tokenizer behaviour on small vocabularies built in memory: byte fallback and the dummy prefix
 * (SPM), merge ranks and pre-tokenization (BPE), special tokens, streaming decode, bad input.
 * The llama.cpp reference vectors are in tokenizer_fixtures_test.ts.
 */
import { deepStrictEqual as assertEquals, ok, throws } from "node:assert/strict";
import { GgufValueType, parseGgufBytes } from "./gguf.ts";
import { ggufBytes, meta } from "./gguf_writer.ts";
import { SparqError } from "./errors.ts";
import { type Tokenizer, tokenizerFromGguf } from "./tokenizer.ts";
import { BYTE_TO_CHAR } from "./tokenizer_bpe.ts";
import { codePoints, preTokenize, preTokenizerFor, QWEN2_REGEX, regexPreTokenize } from "./bpe_pretokenizers.ts";

type Entry = [string, ReturnType<typeof meta.str>];

/** A SentencePiece vocab: <unk> <s> </s>, 256 byte tokens, then `pieces` (score = -index). */
function spmEntries(pieces: string[]): Entry[] {
  const tokens = ["<unk>", "<s>", "</s>"];
  const types = [2, 3, 3];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(6);
  }
  for (const p of pieces) {
    tokens.push(p);
    types.push(1);
  }
  const scores = tokens.map((_, i) => (i < 259 ? 0 : -(i - 259)));
  return [
    ["tokenizer.ggml.model", meta.str("llama")],
    ["tokenizer.ggml.tokens", meta.arr(GgufValueType.STRING, tokens)],
    ["tokenizer.ggml.scores", meta.arr(GgufValueType.FLOAT32, new Float32Array(scores))],
    ["tokenizer.ggml.token_type", meta.arr(GgufValueType.INT32, new Int32Array(types))],
    ["tokenizer.ggml.bos_token_id", meta.u32(1)],
    ["tokenizer.ggml.eos_token_id", meta.u32(2)],
    ["tokenizer.ggml.unknown_token_id", meta.u32(0)],
    ["tokenizer.ggml.add_bos_token", meta.bool(true)],
  ];
}

/** A byte-level BPE vocab: the 256 byte characters (id = byte), `merges` in order, then specials. */
function bpeEntries(merges: string[], pre: string, specials: string[] = ["<|endoftext|>"]): Entry[] {
  const tokens = [...BYTE_TO_CHAR];
  for (const m of merges) tokens.push(m.replace(" ", ""));
  const types = tokens.map(() => 1);
  for (const s of specials) {
    tokens.push(s);
    types.push(3);
  }
  return [
    ["tokenizer.ggml.model", meta.str("gpt2")],
    ["tokenizer.ggml.pre", meta.str(pre)],
    ["tokenizer.ggml.tokens", meta.arr(GgufValueType.STRING, tokens)],
    ["tokenizer.ggml.token_type", meta.arr(GgufValueType.INT32, new Int32Array(types))],
    ["tokenizer.ggml.merges", meta.arr(GgufValueType.STRING, merges)],
    ["tokenizer.ggml.bos_token_id", meta.u32(tokens.length - 1)],
    ["tokenizer.ggml.eos_token_id", meta.u32(tokens.length - 1)],
  ];
}

function load(entries: Entry[]): Tokenizer {
  return tokenizerFromGguf(parseGgufBytes(ggufBytes(entries, []), "test.gguf"));
}

const SPM_PIECES = ["▁", "a", "b", "c", "ab", "▁a", "▁ab", "bc", "▁abc"];
const id = (s: string) => 259 + SPM_PIECES.indexOf(s);

Deno.test("SPM: dummy prefix, best-score merges, byte fallback, llama.cpp decode", () => {
  const t = load(spmEntries(SPM_PIECES));
  assertEquals([t.kind, t.nVocab, t.bos, t.eos, t.unk, t.eot, t.pad, t.addBos, t.addEos], [
    "spm",
    268,
    1,
    2,
    0,
    -1,
    -1,
    true,
    false,
  ]);
  // "▁ab" (score -6) beats "bc" (-7), so "▁abc" (needs "▁ab"+"c") forms.
  assertEquals(t.encode("abc"), [1, id("▁abc")]);
  assertEquals(t.encode("abc", { addSpecial: false }), [id("▁abc")]);
  // "é" is no piece: its UTF-8 bytes C3 A9 become <0xC3> <0xA9>.
  assertEquals(t.encode("aé", { addSpecial: false }), [id("▁a"), 3 + 0xc3, 3 + 0xa9]);
  assertEquals(t.decode([id("▁a"), 3 + 0xc3, 3 + 0xa9]), "aé");
  // The first token loses its leading space; after BOS (rendered as nothing) it keeps it.
  assertEquals(t.decode([1, id("▁a")]), " a");
  assertEquals(t.decode([1, id("▁a")], { unparseSpecial: true }), "<s> a");
  assertEquals(t.piece(id("▁a")), "▁a");
});

Deno.test("SPM: empty text, special-token text, control tokens", () => {
  const t = load(spmEntries(SPM_PIECES));
  assertEquals(t.encode(""), [1]);
  assertEquals(t.encode("", { addSpecial: false }), []);
  // Not parsed: "<s>" is plain text (bytes, as no piece covers "<"); parsed: the id, and the
  // text after a special token gets the dummy prefix again.
  const plain = t.encode("<s>a", { addSpecial: false });
  ok(!plain.includes(1));
  assertEquals(t.encode("<s>a", { addSpecial: false, parseSpecial: true }), [1, id("▁a")]);
  ok(t.isControl(2) && t.isEog(2) && !t.isControl(id("a")) && !t.isEog(1));
});

Deno.test("streaming decode holds partial UTF-8 and joins byte-fallback pieces", () => {
  const t = load(spmEntries(SPM_PIECES));
  const euro = [...new TextEncoder().encode("€")].map((b) => 3 + b); // E2 82 AC
  const s = t.streamDecoder();
  assertEquals([s.push(id("▁a")), s.push(euro[0]), s.push(euro[1]), s.push(euro[2]), s.flush()], [
    " a",
    "",
    "",
    "€",
    "",
  ]);
  // An incomplete sequence left at the end becomes U+FFFD; control tokens produce nothing.
  const s2 = t.streamDecoder();
  assertEquals([s2.push(1), s2.push(euro[0]), s2.flush()], ["", "", "\uFFFD"]);
  // A byte that cannot continue the sequence is replaced at once.
  const s3 = t.streamDecoder();
  assertEquals([s3.push(euro[0]), s3.push(id("a"))], ["", "\uFFFDa"]);
});

Deno.test("BPE: lowest-rank merges inside pre-tokens, special tokens, clean-up of spaces", () => {
  const merges = ["Ġ w", "o r", "Ġw or", "l d", "Ġwor ld", "h e", "l l", "he ll", "hell o"];
  const t = load(bpeEntries(merges, "gpt-2"));
  const tokId = (s: string) => 256 + merges.findIndex((m) => m.replace(" ", "") === s);
  assertEquals(t.kind, "bpe");
  assertEquals(t.eot, t.nVocab - 1); // <|endoftext|> found by its text, as llama.cpp does
  assertEquals(t.encode("hello world"), [tokId("hello"), tokId("Ġworld")]); // gpt-2 adds no BOS
  const eot = t.nVocab - 1;
  assertEquals(t.encode("hello<|endoftext|>", { parseSpecial: true }), [tokId("hello"), eot]);
  ok(!t.encode("hello<|endoftext|>").includes(eot));
  assertEquals(t.decode(t.encode("hello , world !")), "hello, world!");
  // Non-ASCII text is byte-level: every UTF-8 byte has its own symbol.
  assertEquals(t.encode("é"), [0xc3, 0xa9].map((b) => BYTE_TO_CHAR.indexOf(BYTE_TO_CHAR[b])));
});

Deno.test("pre-tokenizers split as llama.cpp's regexes do", () => {
  const split = (pre: string, text: string) => {
    const cpts = codePoints(text);
    const lens = preTokenize(preTokenizerFor(pre, "t"), cpts);
    const out: string[] = [];
    let p = 0;
    for (const n of lens) {
      out.push(String.fromCodePoint(...cpts.subarray(p, p + n)));
      p += n;
    }
    return out;
  };
  assertEquals(split("gpt-2", "I'm  here 12345!\n"), ["I", "'m", " ", " here", " 12345", "!", "\n"]);
  assertEquals(split("llama-bpe", "I'M  here 12345!\n\nx"), ["I", "'M", " ", " here", " ", "123", "45", "!\n\n", "x"]);
  assertEquals(split("qwen2", "ab 123  c"), ["ab", " ", "1", "2", "3", " ", " c"]);
  assertEquals(split("default", "a=b 1234"), ["a", "=", "b", " ", "123", "4"]);
});

Deno.test("bad vocabularies and ids are SparqErrors naming the problem", () => {
  const base = spmEntries(SPM_PIECES);
  const short = base.map(([k, v]): Entry =>
    k === "tokenizer.ggml.scores" ? [k, meta.arr(GgufValueType.FLOAT32, new Float32Array(10))] : [k, v]
  );
  throws(() => load(short), (e) => e instanceof SparqError && /scores has 10 entries/.test(e.message));
  const noModel = base.filter(([k]) => k !== "tokenizer.ggml.model");
  throws(() => load(noModel), (e) => e instanceof SparqError && /tokenizer.ggml.model/.test(e.message));
  const noMerges = bpeEntries([], "gpt-2").filter(([k]) => k !== "tokenizer.ggml.merges");
  throws(() => load(noMerges), (e) => e instanceof SparqError && /merges/.test(e.message));
  throws(() => load(bpeEntries([], "no-such-pre")), (e) => e instanceof SparqError && /no-such-pre/.test(e.message));
  const t = load(base);
  throws(() => t.decode([1, 5000]), (e) => e instanceof SparqError && /5000 is out of range/.test(e.message));
  throws(() => t.piece(-1), SparqError);
  // Lone surrogates are encoded like U+FFFD (EF BF BD), as invalid UTF-8 is in llama.cpp.
  assertEquals(t.encode("\uD800", { addSpecial: false }), t.encode("\uFFFD", { addSpecial: false }));
});

Deno.test("the Qwen 2 scanner splits exactly as the std::regex expression llama.cpp runs", () => {
  // Random strings over characters that exercise every branch: letters (ASCII, accented, CJK),
  // digits (ASCII and others), apostrophes and contractions, spaces of several kinds, CR/LF,
  // punctuation, symbols, marks and emoji.
  const alphabet = Array.from("aZé漢s'tdmlrevSTD 0٣7\n\r\t\u00A0\u3000.,!?-_$+€\u0301😀\u2028\u000B");
  let seed = 12345;
  const rand = (n: number) => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n;
  const scanner = preTokenizerFor("qwen2", "t");
  for (let i = 0; i < 3000; i++) {
    let s = "";
    for (let k = rand(24); k > 0; k--) s += alphabet[rand(alphabet.length)];
    const cpts = codePoints(s);
    assertEquals(preTokenize(scanner, cpts), regexPreTokenize(QWEN2_REGEX, cpts), JSON.stringify(s));
  }
});
