/**
 * Byte-level BPE as llama.cpp's `llm_tokenizer_bpe` does it: the text is pre-tokenized into words
 * (lib/bpe_pretokenizers.ts), each word's UTF-8 bytes are mapped to GPT-2's printable byte
 * characters (`bytes_to_unicode`), then the adjacent pair with the lowest merge rank
 * (`tokenizer.ggml.merges`) is merged, leftmost first on ties, until no ranked pair is left. Each
 * resulting symbol is looked up in the vocabulary. Words are cached: English text repeats them.
 * @module
 */
import { codePoints, preTokenize, type PreTokenizer, preTokenizerFor } from "./bpe_pretokenizers.ts";
import { MergeHeap } from "./tokenizer_heap.ts";
import { hashStep, WordCache } from "./tokenizer_cache.ts";
import type { Vocab } from "./tokenizer_vocab.ts";
import { SparqError } from "./errors.ts";

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
  private readonly cache = new WordCache();
  private readonly heap = new MergeHeap();
  private len = new Int32Array(64);
  private prev = new Int32Array(64);
  private next = new Int32Array(64);

  constructor(private readonly vocab: Vocab, merges: string[]) {
    this.pre = preTokenizerFor(vocab.pre, vocab.path);
    for (let i = 0; i < merges.length; i++) {
      const m = merges[i];
      // llama.cpp splits at the first space after the first character.
      const sp = m.indexOf(" ", 1);
      const first = sp < 0 ? "" : m.slice(0, sp);
      const second = sp < 0 ? "" : m.slice(sp + 1);
      let inner = this.ranks.get(first);
      if (!inner) this.ranks.set(first, inner = new Map());
      if (!inner.has(second)) inner.set(second, i);
    }
  }

  /** Appends the tokens of `text` (one fragment between special tokens, well-formed UTF-16) to `out`. */
  encode(text: string, out: number[]): void {
    const cpts = codePoints(text);
    const lens = preTokenize(this.pre, cpts);
    let pos = 0, u16 = 0;
    for (const n of lens) {
      // The cache is keyed by the word's original text (cheaper than its byte encoding).
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
        ids = this.encodeWord(byteEncode(cpts, pos, pos + n));
        this.cache.set(text.slice(u16, u16End), h, ids);
      }
      for (const t of ids) out.push(t);
      pos += n;
      u16 = u16End;
    }
  }

  private ensure(n: number): void {
    if (this.len.length >= n) return;
    const cap = Math.max(n, this.len.length * 2);
    this.len = new Int32Array(cap);
    this.prev = new Int32Array(cap);
    this.next = new Int32Array(cap);
  }

  /** Queues the merge of symbols l and r (each starts at its own index) when the pair has a rank. */
  private tryAdd(word: string, l: number, r: number): void {
    if (l < 0 || r < 0) return;
    const { len } = this;
    const rank = this.ranks.get(word.slice(l, l + len[l]))?.get(word.slice(r, r + len[r]));
    if (rank !== undefined) this.heap.push(rank, l, r, len[l] + len[r], 0);
  }

  /** The merge loop of llama.cpp's BPE session on one byte-encoded word. */
  private encodeWord(word: string): number[] {
    const { tokenToId } = this.vocab;
    if (this.pre.ignoreMerges) {
      const whole = tokenToId.get(word);
      if (whole !== undefined) return [whole];
    }
    // Byte characters are all in the BMP, so symbol i starts as word[i] and, as symbols only
    // absorb their right neighbours, always starts at index i.
    const n = word.length;
    this.ensure(n);
    const { len, prev, next, heap } = this;
    for (let i = 0; i < n; i++) {
      len[i] = 1;
      prev[i] = i - 1;
      next[i] = i + 1 === n ? -1 : i + 1;
    }
    heap.clear();
    for (let i = 1; i < n; i++) this.tryAdd(word, i - 1, i);
    while (heap.length > 0) {
      heap.pop();
      const l = heap.topLeft, r = heap.topRight;
      // Stale candidate: one side was merged away or grew since it was queued.
      if (len[l] === 0 || len[r] === 0 || len[l] + len[r] !== heap.topSize) continue;
      len[l] += len[r];
      len[r] = 0;
      next[l] = next[r];
      if (next[r] >= 0) prev[next[r]] = l;
      this.tryAdd(word, prev[l], l);
      this.tryAdd(word, l, next[l]);
    }
    const ids: number[] = [];
    for (let i = 0; i !== -1 && n > 0; i = next[i]) {
      const s = word.slice(i, i + len[i]);
      const id = tokenToId.get(s);
      if (id !== undefined) {
        ids.push(id);
        continue;
      }
      // llama.cpp then tries each byte of the symbol's UTF-8 text as a token of its own.
      for (let k = 0; k < s.length; k++) {
        const c = s.charCodeAt(k);
        if (c < 128) {
          const b = tokenToId.get(s[k]);
          if (b !== undefined) ids.push(b);
        }
      }
    }
    return ids;
  }
}

/** GPT-2 byte characters of the UTF-8 encoding of cpts[from, to). */
function byteEncode(cpts: Int32Array, from: number, to: number): string {
  let s = "";
  for (let i = from; i < to; i++) {
    const c = cpts[i];
    if (c < 0x80) s += BYTE_TO_CHAR[c];
    else if (c < 0x800) s += BYTE_TO_CHAR[0xc0 | (c >> 6)] + BYTE_TO_CHAR[0x80 | (c & 0x3f)];
    else if (c < 0x10000) {
      s += BYTE_TO_CHAR[0xe0 | (c >> 12)] + BYTE_TO_CHAR[0x80 | ((c >> 6) & 0x3f)] + BYTE_TO_CHAR[0x80 | (c & 0x3f)];
    } else {
      s += BYTE_TO_CHAR[0xf0 | (c >> 18)] + BYTE_TO_CHAR[0x80 | ((c >> 12) & 0x3f)] +
        BYTE_TO_CHAR[0x80 | ((c >> 6) & 0x3f)] + BYTE_TO_CHAR[0x80 | (c & 0x3f)];
    }
  }
  return s;
}

/** The merges of a BPE vocabulary; SparqError when missing. */
export function bpeMerges(merges: unknown, where: string): string[] {
  if (!Array.isArray(merges) || (merges.length > 0 && typeof merges[0] !== "string")) {
    throw new SparqError(
      `${where}: tokenizer.ggml.merges is missing or not a string array (needed by BPE vocabularies)`,
    );
  }
  return merges as string[];
}
