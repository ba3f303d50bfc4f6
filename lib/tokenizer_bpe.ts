/**
 * Byte-level BPE as llama.cpp's `llm_tokenizer_bpe` does it: the text is pre-tokenized into words
 * (lib/bpe_pretokenizers.ts), each word's UTF-8 bytes are mapped to GPT-2's printable byte
 * characters (`bytes_to_unicode`), then the adjacent pair with the lowest merge rank
 * (`tokenizer.ggml.merges`) is merged, leftmost first on ties, until no ranked pair is left. Each
 * resulting symbol is looked up in the vocabulary. Words are cached: English text repeats them.
 * @module
 */
import { codePoints, preTokenize, type PreTokenizer, preTokenizerFor } from "./bpe_pretokenizers.ts";
import { MergeHeap, mergeSymbols } from "./tokenizer_heap.ts";
import { hashStep, WordCache } from "./tokenizer_cache.ts";
import type { Vocab } from "./tokenizer_vocab.ts";
import { SparqError } from "./errors.ts";
import { stringItems } from "./gguf.ts";

/** GPT-2's byte → printable character table (bytes_to_unicode). */
export const BYTE_TO_CHAR: string[] = (() => {
  const out: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    out[b] = String.fromCharCode(printable ? b : 256 + n++);
  }
  return out;
})();

/** The inverse of BYTE_TO_CHAR, by code point (-1: not a byte character). */
export const CHAR_TO_BYTE: Map<number, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c.charCodeAt(0), b]));

/** Encoder for one byte-level BPE vocabulary. */
export class BpeEncoder {
  readonly pre: PreTokenizer;
  /** first → second → rank (the first occurrence of a pair wins, as in llama.cpp). */
  private readonly ranks = new Map<string, Map<string, number>>();
  /**
   * The same ranks by token id, for pairs whose halves are both tokens (almost all): left id →
   * right id → rank. Merging then needs no strings.
   */
  private readonly ranksById: (Map<number, number> | undefined)[];
  /** Token id of each merge's result (-1: not in the vocabulary). */
  private readonly mergeResult: Int32Array;
  /** Token id of each byte's character (-1: none). */
  private readonly byteId = new Int32Array(256);
  private readonly cache = new WordCache();
  private readonly heap = new MergeHeap();
  private bytes = new Uint8Array(64);
  private len = new Int32Array(64);
  private prev = new Int32Array(64);
  private next = new Int32Array(64);
  private id = new Int32Array(64);

  constructor(private readonly vocab: Vocab, merges: string[]) {
    this.pre = preTokenizerFor(vocab.pre, vocab.path);
    const { tokenToId } = vocab;
    this.ranksById = new Array(vocab.tokens.length);
    this.mergeResult = new Int32Array(merges.length);
    for (let i = 0; i < merges.length; i++) {
      const m = merges[i];
      // llama.cpp splits at the first space after the first character.
      const sp = m.indexOf(" ", 1);
      const first = sp < 0 ? "" : m.slice(0, sp);
      const second = sp < 0 ? "" : m.slice(sp + 1);
      let inner = this.ranks.get(first);
      if (!inner) this.ranks.set(first, inner = new Map());
      if (inner.has(second)) continue;
      inner.set(second, i);
      this.mergeResult[i] = tokenToId.get(first + second) ?? -1;
      const a = tokenToId.get(first), b = tokenToId.get(second);
      if (a !== undefined && b !== undefined) (this.ranksById[a] ??= new Map()).set(b, i);
    }
    for (let b = 0; b < 256; b++) this.byteId[b] = tokenToId.get(BYTE_TO_CHAR[b]) ?? -1;
  }

  /** Appends the tokens of `text` (one fragment between special tokens, well-formed UTF-16) to `out`. */
  encode(text: string, out: number[]): void {
    const cpts = codePoints(text);
    const lens = preTokenize(this.pre, cpts);
    let pos = 0, u16 = 0;
    for (const n of lens) {
      // The cache is keyed by the word's original text.
      let u16End = u16, h = 0;
      for (let k = pos; k < pos + n; k++) {
        const c = cpts[k];
        if (c > 0xffff) {
          h = hashStep(hashStep(h, text.charCodeAt(u16End)), text.charCodeAt(u16End + 1));
          u16End += 2;
        } else {
          h = hashStep(h, c);
          u16End++;
        }
      }
      let ids = this.cache.get(text, u16, u16End, h);
      if (!ids) {
        ids = this.encodeWord(cpts, pos, pos + n);
        this.cache.set(text.slice(u16, u16End), h, ids);
      }
      for (let i = 0; i < ids.length; i++) out.push(ids[i]);
      pos += n;
      u16 = u16End;
    }
  }

  /** Byte-level text of symbol i (its bytes mapped to GPT-2 byte characters). */
  private symbolText(i: number): string {
    let s = "";
    for (let k = i; k < i + this.len[i]; k++) s += BYTE_TO_CHAR[this.bytes[k]];
    return s;
  }

  /** Queues the merge of symbols l and r when the pair has a rank. */
  private tryAdd(l: number, r: number): void {
    if (l < 0 || r < 0) return;
    const { id, len } = this;
    const rank = id[l] >= 0 && id[r] >= 0
      ? this.ranksById[id[l]]?.get(id[r])
      : this.ranks.get(this.symbolText(l))?.get(this.symbolText(r));
    if (rank !== undefined) this.heap.push(rank, l, r, len[l] + len[r], this.mergeResult[rank]);
  }

  /** The merge loop of llama.cpp's BPE session on the word cpts[from, to). */
  private encodeWord(cpts: Int32Array, from: number, to: number): number[] {
    const n = this.utf8(cpts, from, to);
    const bytes = this.bytes, tokenToId = this.vocab.tokenToId;
    if (this.pre.ignoreMerges) {
      let word = "";
      for (let k = 0; k < n; k++) word += BYTE_TO_CHAR[bytes[k]];
      const whole = tokenToId.get(word);
      if (whole !== undefined) return [whole];
    }
    // Symbols only absorb their right neighbours, so symbol i always starts at byte i.
    const { len, prev, next, id, heap } = this;
    for (let i = 0; i < n; i++) {
      len[i] = 1;
      prev[i] = i - 1;
      next[i] = i + 1 === n ? -1 : i + 1;
      id[i] = this.byteId[bytes[i]];
    }
    mergeSymbols(heap, { len, prev, next, id }, n, (l, r) => this.tryAdd(l, r));
    const ids: number[] = [];
    for (let i = 0; i !== -1 && n > 0; i = next[i]) {
      if (id[i] >= 0) {
        ids.push(id[i]);
        continue;
      }
      // Not a token: llama.cpp then tries each byte of the symbol's UTF-8 text as a token of its
      // own, which only succeeds for one-byte (ASCII) characters of the byte-level text.
      const s = this.symbolText(i);
      for (let k = 0; k < s.length; k++) {
        if (s.charCodeAt(k) < 128) {
          const b = tokenToId.get(s[k]);
          if (b !== undefined) ids.push(b);
        }
      }
    }
    return ids;
  }

  /** Writes the UTF-8 bytes of cpts[from, to) into `bytes`; returns their count. */
  private utf8(cpts: Int32Array, from: number, to: number): number {
    this.ensure(4 * (to - from));
    const b = this.bytes;
    let n = 0;
    for (let i = from; i < to; i++) {
      const c = cpts[i];
      if (c < 0x80) b[n++] = c;
      else if (c < 0x800) {
        b[n++] = 0xc0 | (c >> 6);
        b[n++] = 0x80 | (c & 0x3f);
      } else if (c < 0x10000) {
        b[n++] = 0xe0 | (c >> 12);
        b[n++] = 0x80 | ((c >> 6) & 0x3f);
        b[n++] = 0x80 | (c & 0x3f);
      } else {
        b[n++] = 0xf0 | (c >> 18);
        b[n++] = 0x80 | ((c >> 12) & 0x3f);
        b[n++] = 0x80 | ((c >> 6) & 0x3f);
        b[n++] = 0x80 | (c & 0x3f);
      }
    }
    return n;
  }

  /** Makes the per-word buffers hold at least n bytes. */
  private ensure(n: number): void {
    if (this.bytes.length >= n) return;
    const cap = Math.max(n, this.bytes.length * 2);
    this.bytes = new Uint8Array(cap);
    this.len = new Int32Array(cap);
    this.prev = new Int32Array(cap);
    this.next = new Int32Array(cap);
    this.id = new Int32Array(cap);
  }
}

/** The merges of a BPE vocabulary; SparqError when missing. */
export function bpeMerges(merges: unknown, where: string): string[] {
  const items = stringItems(merges);
  if (!items) {
    throw new SparqError(
      `${where}: tokenizer.ggml.merges is missing or not a string array (needed by BPE vocabularies)`,
    );
  }
  return items;
}
