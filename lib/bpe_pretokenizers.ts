/**
 * BPE pre-tokenization as llama.cpp's `unicode_regex_split` applies it for each
 * `tokenizer.ggml.pre`: a list of regular expressions applied one after the other, each splitting
 * every piece left by the previous one into its matches and the text between them.
 *
 * llama.cpp runs two expressions through hand-written scanners (the GPT-2 one and the Llama 3
 * one), and every other expression through `std::regex` on a "collapsed" copy of the text in which
 * each non-ASCII code point is replaced by one byte standing for its Unicode category (letter,
 * number, punctuation, …; whitespace becomes "\v"). Both are reproduced here: the scanners with
 * their exact behaviour, and the `std::regex` path by running the same collapsed expression
 * (ECMAScript syntax, as `std::regex`) over the same collapsed text with a JS RegExp. The simple
 * character-class expressions of the "default" pre-tokenizer are scanned directly (same splits,
 * no regex).
 *
 * Unicode categories come from the JS engine (`\p{L}`, `\p{N}`, `\p{P}`, `\p{M}`, `\p{S}`,
 * `\p{White_Space}`), as llama.cpp's tables come from Python's `regex` module; both follow recent
 * Unicode versions and may differ only for code points assigned very recently.
 * @module
 */
import { SparqError } from "./errors.ts";

const F_LETTER = 1, F_NUMBER = 2, F_SPACE = 4, F_PUNCT = 8, F_MARK = 16, F_SYMBOL = 32, F_KNOWN = 128;

/** Per-code-point category bits, filled lazily. */
const flagTable = new Uint8Array(0x110000);

const RE_L = /\p{L}/u, RE_N = /\p{N}/u, RE_P = /\p{P}/u, RE_M = /\p{M}/u, RE_S = /\p{S}/u, RE_WS = /\p{White_Space}/u;

function flagsOf(cp: number): number {
  let f = flagTable[cp];
  if (f !== 0) return f;
  const s = String.fromCodePoint(cp);
  f = F_KNOWN;
  if (RE_L.test(s)) f |= F_LETTER;
  else if (RE_N.test(s)) f |= F_NUMBER;
  else if (RE_P.test(s)) f |= F_PUNCT;
  else if (RE_M.test(s)) f |= F_MARK;
  else if (RE_S.test(s)) f |= F_SYMBOL;
  if (RE_WS.test(s)) f |= F_SPACE;
  flagTable[cp] = f;
  return f;
}

/** Category bits of the ASCII code points. */
const ASCII_FLAGS = Uint8Array.from({ length: 128 }, (_, c) => flagsOf(c));

/** Splits `cpts` (pieces given as lengths in `offsets`) into smaller pieces; returns the new lengths. */
type Split = (
  cpts: Int32Array,
  flags: Uint8Array,
  offsets: number[],
  collapsed: () => string,
  nextNumber: () => Int32Array,
) => number[];

/** Adds the lengths of the pieces between `ends` (ascending ends within [ini, end)). */
class Pieces {
  readonly out: number[] = [];
  private prevEnd = 0;
  begin(ini: number): void {
    this.prevEnd = ini;
  }
  /** Ends the current piece at `end`; returns its length (0 = nothing added). */
  add(end: number): number {
    const n = end - this.prevEnd;
    if (n > 0) this.out.push(n);
    this.prevEnd = end;
    return n;
  }
}

/** Scanner equivalent of `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`. */
const splitGpt2: Split = (cpts, flags, offsets) => {
  const p = new Pieces();
  let start = 0;
  for (const offset of offsets) {
    const ini = start, end = start + offset;
    start = end;
    // Positions only move forward from ini, so only the end needs a bound.
    const cpt = (i: number) => (i < end ? cpts[i] : -1);
    const fl = (i: number) => (i < end ? flags[i] : 0);
    p.begin(ini);
    for (let pos = ini; pos < end;) {
      const c = cpts[pos];
      if (c === 39 /* ' */ && pos + 1 < end) {
        const n1 = cpt(pos + 1);
        if (n1 === 115 || n1 === 116 || n1 === 109 || n1 === 100) { // s t m d
          pos += p.add(pos + 2);
          continue;
        }
        if (pos + 2 < end) {
          const n2 = cpt(pos + 2);
          if ((n1 === 114 && n2 === 101) || (n1 === 118 && n2 === 101) || (n1 === 108 && n2 === 108)) { // re ve ll
            pos += p.add(pos + 3);
            continue;
          }
        }
      }
      const sp = c === 32 ? 1 : 0;
      let f2 = fl(pos + sp);
      if (f2 & F_LETTER) {
        pos += sp;
        while (f2 & F_LETTER) f2 = fl(++pos);
        p.add(pos);
        continue;
      }
      if (f2 & F_NUMBER) {
        pos += sp;
        while (f2 & F_NUMBER) f2 = fl(++pos);
        p.add(pos);
        continue;
      }
      if (!(f2 & (F_SPACE | F_LETTER | F_NUMBER)) && f2 !== 0) {
        pos += sp;
        while (!(f2 & (F_SPACE | F_LETTER | F_NUMBER)) && f2 !== 0) f2 = fl(++pos);
        p.add(pos);
        continue;
      }
      let nws = 0;
      while (fl(pos + nws) & F_SPACE) nws++;
      if (nws > 1 && pos + nws < end) { // \s+(?!\S): leave the last space to the next word
        pos += nws - 1;
        p.add(pos);
        continue;
      }
      if (nws > 0) {
        pos += nws;
        p.add(pos);
        continue;
      }
      p.add(++pos);
    }
  }
  return p.out;
};

function lower(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c;
}

/**
 * Scanner equivalent of Llama 3's
 * `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
 * (llama.cpp's `unicode_regex_split_custom_llama3`). With `maxDigits` = 1 it is Qwen 2's expression
 * (`\p{N}` instead of `\p{N}{1,3}`), which llama.cpp runs through `std::regex`; a test checks the
 * two agree on random text.
 */
function llama3Scanner(maxDigits: number): Split {
  return (cpts, flags, offsets) => splitLlama3Like(cpts, flags, offsets, maxDigits);
}

function splitLlama3Like(cpts: Int32Array, flags: Uint8Array, offsets: number[], maxDigits: number): number[] {
  const p = new Pieces();
  let start = 0;
  for (const offset of offsets) {
    const ini = start, end = start + offset;
    start = end;
    // Positions only move forward from ini, so only the end needs a bound.
    const cpt = (i: number) => (i < end ? cpts[i] : -1);
    const fl = (i: number) => (i < end ? flags[i] : 0);
    p.begin(ini);
    for (let pos = ini; pos < end;) {
      const c = cpts[pos];
      const f = flags[pos];
      if (c === 39 && pos + 1 < end) {
        const n1 = lower(cpt(pos + 1));
        if (n1 === 115 || n1 === 116 || n1 === 109 || n1 === 100) {
          pos += p.add(pos + 2);
          continue;
        }
        if (pos + 2 < end) {
          const n2 = lower(cpt(pos + 2));
          if ((n1 === 114 && n2 === 101) || (n1 === 118 && n2 === 101) || (n1 === 108 && n2 === 108)) {
            pos += p.add(pos + 3);
            continue;
          }
        }
      }
      if (!(c === 13 || c === 10 || (f & F_NUMBER))) {
        if ((f & F_LETTER) || (fl(pos + 1) & F_LETTER)) {
          pos++;
          while (fl(pos) & F_LETTER) pos++;
          p.add(pos);
          continue;
        }
      }
      if (f & F_NUMBER) {
        let i0 = pos;
        while (fl(pos) & F_NUMBER) {
          if (++pos - i0 >= maxDigits) {
            p.add(pos);
            i0 = pos;
          }
        }
        p.add(pos);
        continue;
      }
      let f2 = c === 32 ? fl(pos + 1) : f;
      // llama.cpp tests the current character (not the one after the space) for "defined" here;
      // every code point in range is defined, so only the end of the piece stops the match.
      if (!(f2 & (F_SPACE | F_LETTER | F_NUMBER)) && f !== 0) {
        pos += c === 32 ? 1 : 0;
        while (!(f2 & (F_SPACE | F_LETTER | F_NUMBER)) && f2 !== 0) f2 = fl(++pos);
        let c2 = cpt(pos);
        while (c2 === 13 || c2 === 10) c2 = cpt(++pos);
        p.add(pos);
        continue;
      }
      let nws = 0, lastNl = 0;
      while (fl(pos + nws) & F_SPACE) {
        const c2 = cpts[pos + nws];
        if (c2 === 13 || c2 === 10) lastNl = pos + nws + 1;
        nws++;
      }
      if (lastNl > 0) { // \s*[\r\n]+
        pos = lastNl;
        p.add(pos);
        continue;
      }
      if (nws > 1 && pos + nws < end) {
        pos += nws - 1;
        p.add(pos);
        continue;
      }
      if (nws > 0) {
        pos += nws;
        p.add(pos);
        continue;
      }
      p.add(++pos);
    }
  }
  return p.out;
}

/** Splits each piece into maximal runs of code points that do / do not satisfy `inClass`. */
function runSplit(inClass: (cp: number, flags: number) => boolean, numbersOnly = false): Split {
  return (cpts, flags, offsets, _collapsed, nextNumber) => {
    const out: number[] = [];
    const nn = numbersOnly ? nextNumber() : undefined;
    let start = 0;
    for (const offset of offsets) {
      const end = start + offset;
      // A class of numbers cannot split a piece without any (most pieces): keep it whole.
      if (nn && nn[start] >= end) {
        out.push(offset);
        start = end;
        continue;
      }
      let runStart = start;
      let prev = inClass(cpts[start], flags[start]);
      for (let i = start + 1; i < end; i++) {
        const cur = inClass(cpts[i], flags[i]);
        // Only a run of matches is a regex match; gaps between matches are pieces too, so any
        // change of class ends a piece.
        if (cur !== prev) {
          out.push(i - runStart);
          runStart = i;
          prev = cur;
        }
      }
      out.push(end - runStart);
      start = end;
    }
    return out;
  };
}

/** `[\p{P}\$\+<=>\^~\|]+` (ASCII punctuation, or any non-ASCII punctuation, plus $+<=>^~|). */
const ASCII_PUNCT_PLUS = new Uint8Array(128);
for (const c of "!\"#%&'()*,-./:;?@[\\]_{}$+<=>^~|") ASCII_PUNCT_PLUS[c.charCodeAt(0)] = 1;
const splitPunctRuns = runSplit((
  cp,
  f,
) => (cp < 128 ? ASCII_PUNCT_PLUS[cp] === 1 : (f & (F_PUNCT | F_SPACE)) === F_PUNCT));

/** `\p{N}+` */
const splitNumberRuns = runSplit((
  cp,
  f,
) => (cp < 128 ? cp >= 48 && cp <= 57 : (f & (F_NUMBER | F_SPACE)) === F_NUMBER), true);

/** `[0-9][0-9][0-9]`: each group of three ASCII digits, searched left to right, is a piece. */
const splitDigitTriples: Split = (cpts, _flags, offsets, _collapsed, nextNumber) => {
  const out: number[] = [];
  const nn = nextNumber();
  const digit = (i: number) => cpts[i] >= 48 && cpts[i] <= 57;
  let start = 0;
  for (const offset of offsets) {
    const end = start + offset;
    if (nn[start] >= end) { // no digit at all: the piece stays whole
      out.push(offset);
      start = end;
      continue;
    }
    let gap = start;
    for (let i = start; i + 3 <= end;) {
      if (digit(i) && digit(i + 1) && digit(i + 2)) {
        if (i > gap) out.push(i - gap);
        out.push(3);
        i += 3;
        gap = i;
      } else i++;
    }
    if (end > gap) out.push(end - gap);
    start = end;
  }
  return out;
};

/** Category bytes of llama.cpp's collapsed text (as UTF-16 units above ASCII). */
const COLLAPSED = { other: "\u00D0", N: "\u00D1", L: "\u00D2", P: "\u00D3", M: "\u00D4", S: "\u00D5" };

/** llama.cpp's collapsed text: ASCII kept, other code points → their category byte ("\v" for spaces). */
function collapse(cpts: Int32Array, flags: Uint8Array): string {
  const codes = new Uint16Array(cpts.length);
  for (let i = 0; i < cpts.length; i++) {
    const c = cpts[i];
    if (c < 128) {
      codes[i] = c;
      continue;
    }
    const f = flags[i];
    codes[i] = f & F_SPACE
      ? 0x0b
      : f & F_NUMBER
      ? 0xd1
      : f & F_LETTER
      ? 0xd2
      : f & F_PUNCT
      ? 0xd3
      : f & F_MARK
      ? 0xd4
      : f & F_SYMBOL
      ? 0xd5
      : 0xd0;
  }
  let s = "";
  for (let i = 0; i < codes.length; i += 8192) s += String.fromCharCode(...codes.subarray(i, i + 8192));
  return s;
}

/**
 * Rewrites an expression with `\p{X}` classes to its collapsed form, as llama.cpp does: inside a
 * class `\p{L}` becomes the category byte plus the ASCII members; outside it becomes a class.
 */
function collapseRegex(expr: string): RegExp {
  const ascii: Record<string, string> = {
    N: "0-9",
    L: "A-Za-z",
    P: "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}",
    M: "",
    S: "\\$\\+<->\\^`\\|",
  };
  let out = "";
  let inside = false;
  for (let i = 0; i < expr.length; i++) {
    const ch = expr[i];
    if (ch === "[" && (i === 0 || expr[i - 1] !== "\\")) {
      inside = true;
      out += ch;
      continue;
    }
    if (inside && ch === "]" && expr[i - 1] !== "\\") {
      inside = false;
      out += ch;
      continue;
    }
    const m = /^\\p\{([NLPMS])\}/.exec(expr.slice(i));
    if (m) {
      const body = COLLAPSED[m[1] as keyof typeof COLLAPSED] + ascii[m[1]];
      out += inside ? body : `[${body}]`;
      i += m[0].length - 1;
      continue;
    }
    out += ch;
  }
  return new RegExp(out, "g");
}

/** `std::regex` path: matches and the gaps between them become pieces. */
function regexSplit(expr: string): Split {
  const re = collapseRegex(expr);
  return (_cpts, _flags, offsets, collapsed) => {
    const text = collapsed();
    const out: number[] = [];
    let start = 0;
    for (const offset of offsets) {
      // The piece is searched on its own (its end is the end of input for lookaheads).
      const piece = offsets.length === 1 ? text : text.slice(start, start + offset);
      re.lastIndex = 0;
      let last = 0;
      for (let m = re.exec(piece); m !== null; m = re.exec(piece)) {
        if (m[0].length === 0) {
          re.lastIndex++;
          continue;
        }
        if (m.index > last) out.push(m.index - last);
        out.push(m[0].length);
        last = m.index + m[0].length;
      }
      if (last < offset) out.push(offset - last);
      start += offset;
    }
    return out;
  };
}

/** Qwen 2's expression as llama.cpp writes it (run by `std::regex` there). */
export const QWEN2_REGEX =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** How one `tokenizer.ggml.pre` value tokenizes. */
export interface PreTokenizer {
  /** The llama.cpp pre-tokenizer family this name maps to. */
  family: "gpt2" | "llama3" | "qwen2" | "default" | "starcoder" | "falcon";
  steps: Split[];
  /** Llama 3: a word that is itself a token is emitted whole, without merges. */
  ignoreMerges: boolean;
  /** Detokenizing removes spaces before punctuation (`clean_up_tokenization_spaces`). */
  cleanSpaces: boolean;
}

/** `\p{N}`: every number code point is a piece of its own. */
const splitNumberDigits = regexSplit("\\p{N}");

const FAMILIES: Record<PreTokenizer["family"], () => Split[]> = {
  gpt2: () => [splitGpt2],
  llama3: () => [llama3Scanner(3)],
  qwen2: () => [llama3Scanner(1)],
  default: () => [splitPunctRuns, splitGpt2, splitNumberRuns, splitDigitTriples],
  starcoder: () => [splitNumberDigits, splitGpt2],
  falcon: () => [regexSplit("[\\p{P}\\$\\+<=>\\^~\\|`]+"), splitGpt2, splitDigitTriples],
};

/** Names llama.cpp accepts, by family; [ignoreMerges, cleanSpaces]. */
const NAMES: Record<string, [PreTokenizer["family"], boolean, boolean]> = {
  "": ["default", false, true],
  "default": ["default", false, true],
  "llama3": ["llama3", true, true],
  "llama-v3": ["llama3", true, true],
  "llama-bpe": ["llama3", true, true],
  "falcon3": ["llama3", true, true],
  "falcon-h1": ["llama3", true, true],
  "pixtral": ["llama3", true, true],
  "dbrx": ["llama3", false, true],
  "smaug-bpe": ["llama3", false, true],
  "gpt-2": ["gpt2", false, true],
  "phi-2": ["gpt2", false, true],
  "mpt": ["gpt2", false, true],
  "olmo": ["gpt2", false, true],
  "jais": ["gpt2", false, true],
  "qwen2": ["qwen2", false, false],
  "deepseek-r1-qwen": ["qwen2", false, false],
  "stablelm2": ["qwen2", false, true],
  "megrez": ["qwen2", false, true],
  "hunyuan": ["qwen2", false, false],
  "starcoder": ["starcoder", false, true],
  "refact": ["starcoder", false, true],
  "codeshell": ["starcoder", false, true],
  "exaone": ["starcoder", false, true],
  "minerva-7b": ["starcoder", false, true],
  "command-r": ["starcoder", false, false],
  "smollm": ["starcoder", false, false],
  "falcon": ["falcon", false, true],
};

/** The pre-tokenizer for `tokenizer.ggml.pre` = `name`; SparqError for names not supported. */
export function preTokenizerFor(name: string, where: string): PreTokenizer {
  const spec = NAMES[name];
  if (!spec) {
    throw new SparqError(
      `${where}: BPE pre-tokenizer "${name}" is not supported (supported: ${
        Object.keys(NAMES).filter((n) => n).join(", ")
      })`,
    );
  }
  const [family, ignoreMerges, cleanSpaces] = spec;
  return { family, steps: FAMILIES[family](), ignoreMerges, cleanSpaces };
}

/** Splits `cpts` with `expr` the way llama.cpp's `std::regex` path does (collapsed categories). */
export function regexPreTokenize(expr: string, cpts: Int32Array): number[] {
  const pre: PreTokenizer = { family: "qwen2", steps: [regexSplit(expr)], ignoreMerges: false, cleanSpaces: false };
  return preTokenize(pre, cpts);
}

/** For each position, the index of the first number code point at or after it (length if none). */
function nextNumberIndex(flags: Uint8Array): Int32Array {
  const out = new Int32Array(flags.length);
  let next = flags.length;
  for (let i = flags.length - 1; i >= 0; i--) {
    if (flags[i] & F_NUMBER) next = i;
    out[i] = next;
  }
  return out;
}

/** Code points of `text`; lone surrogates become U+FFFD, as invalid UTF-8 does in llama.cpp. */
export function codePoints(text: string): Int32Array {
  const out = new Int32Array(text.length);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = text.charCodeAt(i + 1);
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      } else c = 0xfffd;
    }
    out[n++] = c;
  }
  return out.subarray(0, n);
}

/** Splits `text` into pre-tokens (as code-point ranges [start, end) packed in one array). */
export function preTokenize(pre: PreTokenizer, cpts: Int32Array): number[] {
  if (cpts.length === 0) return [];
  let offsets = [cpts.length];
  const flags = new Uint8Array(cpts.length);
  for (let i = 0; i < cpts.length; i++) {
    const c = cpts[i];
    flags[i] = c < 128 ? ASCII_FLAGS[c] : flagsOf(c);
  }
  let collapsedText: string | undefined;
  const collapsed = () => (collapsedText ??= collapse(cpts, flags));
  let next: Int32Array | undefined;
  const nextNumber = () => (next ??= nextNumberIndex(flags));
  for (const step of pre.steps) offsets = step(cpts, flags, offsets, collapsed, nextNumber);
  return offsets;
}
