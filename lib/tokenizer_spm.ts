/**
 * SentencePiece-style tokenization as llama.cpp's `llm_tokenizer_spm` does it: the text, with
 * spaces escaped to "▁", is split into UTF-8 characters, then the adjacent pair whose
 * concatenation is the vocabulary token with the highest score is merged, leftmost first on ties,
 * until no pair forms a token; characters that never became a token are emitted as byte-fallback
 * tokens `<0xNN>`.
 *
 * Speed: merges never cross a position where the two neighbouring characters occur next to each
 * other in no token, so the text is cut there into independent segments (words, mostly) which
 * are tokenized once and cached (keyed by their unescaped text: escaping a whole long text with
 * `replaceAll` costs more than tokenizing it); inside a segment the merge queue is a heap over a
 * linked list.
 * @module
 */
import { MergeHeap, mergeSymbols } from "./tokenizer_heap.ts";
import { hashStep, WordCache } from "./tokenizer_cache.ts";
import type { Vocab } from "./tokenizer_vocab.ts";

const UTF8 = new TextEncoder();

/** Encoder for one SentencePiece vocabulary. */
export class SpmEncoder {
  private readonly nVocab: number;
  /** (leftId * nVocab + rightId) → id of the token that is their concatenation (-1: none), filled on use. */
  private readonly pairs = new Map<number, number>();
  /** Small index of every code point that occurs in some token (BMP: `bmpIndex`, else `astralIndex`). */
  private readonly bmpIndex = new Int32Array(65536).fill(-1);
  private readonly astralIndex = new Map<number, number>();
  private nChars = 0;
  /** Character pairs (index1 * nChars + index2) that occur next to each other inside some token. */
  private readonly innerPairs = new Set<number>();
  /** Token id of each BMP character, -1 when none, -2 when not looked up yet. */
  private readonly charId = new Int32Array(65536).fill(-2);
  private readonly byteIds = new Int32Array(256);
  private readonly cache = new WordCache();
  private readonly heap = new MergeHeap();
  private start = new Int32Array(256);
  private len = new Int32Array(256);
  private prev = new Int32Array(256);
  private next = new Int32Array(256);
  private id = new Int32Array(256);

  constructor(private readonly vocab: Vocab) {
    const { tokens, tokenToId } = vocab;
    this.nVocab = tokens.length;
    for (const text of tokens) {
      for (let k = 0; k < text.length;) {
        const cp = text.codePointAt(k)!;
        if (this.charIndex(cp) < 0) {
          if (cp < 65536) this.bmpIndex[cp] = this.nChars++;
          else this.astralIndex.set(cp, this.nChars++);
        }
        k += cp > 0xffff ? 2 : 1;
      }
    }
    // A space in the input is escaped to "▁" before merging, so it segments as "▁" does.
    this.bmpIndex[32] = this.bmpIndex[0x2581];
    for (const text of tokens) {
      let prevIdx = -1;
      for (let k = 0; k < text.length;) {
        const cp = text.codePointAt(k)!;
        const idx = this.charIndex(cp);
        if (prevIdx >= 0) this.innerPairs.add(prevIdx * this.nChars + idx);
        prevIdx = idx;
        k += cp > 0xffff ? 2 : 1;
      }
    }
    for (let b = 0; b < 256; b++) {
      const hex = b.toString(16).toUpperCase().padStart(2, "0");
      // llama.cpp's byte_to_token: "<0xNN>", else the byte as a one-character token; a vocab with
      // neither makes llama.cpp throw, here the unknown token stands in.
      this.byteIds[b] = tokenToId.get(`<0x${hex}>`) ?? (b < 128 ? tokenToId.get(String.fromCharCode(b)) : undefined) ??
        vocab.unk;
    }
  }

  /** Appends the tokens of `text` (spaces not yet escaped: that happens here) to `out`. */
  encode(text: string, out: number[]): void {
    let segStart = 0;
    let prevIdx = -2; // -2: start of text, -1: a character that is in no token
    let h = 0;
    const nChars = this.nChars;
    for (let i = 0; i < text.length;) {
      const cp = text.charCodeAt(i);
      const idx = cp < 0xd800 || cp > 0xdfff ? this.bmpIndex[cp] : this.charIndex(text.codePointAt(i)!);
      if (prevIdx !== -2 && (prevIdx < 0 || idx < 0 || !this.innerPairs.has(prevIdx * nChars + idx))) {
        this.encodeSegment(text, segStart, i, h, out);
        segStart = i;
        h = 0;
      }
      prevIdx = idx;
      h = hashStep(h, cp);
      if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < text.length) h = hashStep(h, text.charCodeAt(++i));
      i++;
    }
    if (segStart < text.length) this.encodeSegment(text, segStart, text.length, h, out);
  }

  /** Tokens of text[from, to) (hash `h`), from the cache or merged now. */
  private encodeSegment(text: string, from: number, to: number, h: number, out: number[]): void {
    let ids = this.cache.get(text, from, to, h);
    if (!ids) {
      const seg = text.slice(from, to);
      ids = this.merge(seg.replaceAll(" ", "\u2581"));
      this.cache.set(seg, h, ids);
    }
    for (const t of ids) out.push(t);
  }

  private charIndex(cp: number): number {
    return cp < 65536 ? this.bmpIndex[cp] : (this.astralIndex.get(cp) ?? -1);
  }

  private lookupChar(cp: number, s: string): number {
    if (cp < 65536) {
      let v = this.charId[cp];
      if (v === -2) v = this.charId[cp] = this.vocab.tokenToId.get(s) ?? -1;
      return v;
    }
    return this.vocab.tokenToId.get(s) ?? -1;
  }

  private ensure(n: number): void {
    if (this.start.length >= n) return;
    const cap = Math.max(n, this.start.length * 2);
    this.start = new Int32Array(cap);
    this.len = new Int32Array(cap);
    this.prev = new Int32Array(cap);
    this.next = new Int32Array(cap);
    this.id = new Int32Array(cap);
  }

  /** The merge loop of llama.cpp's SPM session on one segment. */
  private merge(seg: string): number[] {
    this.ensure(seg.length);
    const { start, len, prev, next, id } = this;
    let n = 0;
    for (let i = 0; i < seg.length;) {
      const cp = seg.codePointAt(i)!;
      const w = cp > 0xffff ? 2 : 1;
      start[n] = i;
      len[n] = w;
      prev[n] = n - 1;
      next[n] = i + w === seg.length ? -1 : n + 1;
      id[n] = this.lookupChar(cp, w === 1 ? seg[i] : seg.slice(i, i + 2));
      n++;
      i += w;
    }
    mergeSymbols(this.heap, { len, prev, next, id }, n, (l, r) => this.tryAdd(seg, l, r));
    const ids: number[] = [];
    for (let i = 0; i !== -1 && n > 0; i = next[i]) {
      if (id[i] >= 0) {
        ids.push(id[i]);
        continue;
      }
      for (const b of UTF8.encode(seg.slice(start[i], start[i] + len[i]))) ids.push(this.byteIds[b]);
    }
    return ids;
  }

  private tryAdd(seg: string, l: number, r: number): void {
    if (l < 0 || r < 0) return;
    const { id, len, start } = this;
    let t: number;
    if (id[l] >= 0 && id[r] >= 0) {
      const key = id[l] * this.nVocab + id[r];
      const known = this.pairs.get(key);
      if (known !== undefined) t = known;
      else {
        t = this.vocab.tokenToId.get(this.vocab.tokens[id[l]] + this.vocab.tokens[id[r]]) ?? -1;
        this.pairs.set(key, t);
      }
    } else t = this.vocab.tokenToId.get(seg.slice(start[l], start[l] + len[l] + len[r])) ?? -1;
    if (t < 0) return;
    // Highest score first: the heap pops the smallest priority.
    this.heap.push(-this.vocab.scores[t], l, r, len[l] + len[r], t);
  }
}
