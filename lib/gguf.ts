/**
 * GGUF reader (versions 2 and 3): header, metadata, tensor infos. Tensor data is never read here:
 * {@link readTensorInto} copies one tensor from disk straight into caller memory (a WebAssembly
 * memory), so a 4 GB model never passes through the JS heap.
 *
 * Every length and count is checked against the bytes left in the file before anything is
 * allocated, so a corrupt file ends in a one-line {@link SparqError}, never a huge allocation.
 * @module
 */
import { SparqError } from "./errors.ts";
import { type GgmlType, ggmlTypeInfo, ggmlTypeName, tensorByteSize } from "./ggml_types.ts";

/** GGUF metadata value types (gguf.h). */
export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** Bytes of one scalar of each fixed-size value type. */
export const GGUF_SCALAR_BYTES: Record<number, number> = {
  0: 1,
  1: 1,
  2: 2,
  3: 2,
  4: 4,
  5: 4,
  6: 4,
  7: 1,
  10: 8,
  11: 8,
  12: 8,
};

/**
 * One metadata value. Scalars: `number` (64-bit integers become `bigint` only when they are not
 * safe integers), `boolean`, `string`. Arrays (`type === ARRAY`): numeric items as a typed array,
 * strings as a {@link GgufStringArray} (the reader builds no JS string per item; values built in
 * memory for the writer may also be `string[]`), booleans as a `Uint8Array` of 0 and 1 (one byte an
 * item, as stored; the writer also takes `boolean[]`), nested arrays as `GgufMetaValue[]`.
 *
 * Every array costs about what it takes in the file (strings: their bytes plus 4 bytes an item),
 * so parsing any file grows the heap by less than twice its size plus a fixed allowance.
 */
export interface GgufMetaValue {
  type: GgufValueType;
  value: unknown;
  /** Item type when `type` is ARRAY. */
  itemType?: GgufValueType;
}

/** One tensor info. */
export interface GgufTensorInfo {
  name: string;
  type: GgmlType;
  /** ggml `ne` order: shape[0] is the row length (contiguous dimension). */
  shape: number[];
  /** Absolute byte offset of the data in the file. */
  offset: number;
  /** Size of the data in bytes. */
  bytes: number;
}

/** A parsed GGUF header. */
export interface GgufFile {
  path: string;
  version: number;
  fileSize: number;
  alignment: number;
  /** Absolute offset where tensor data starts. */
  dataOffset: number;
  metadata: Map<string, GgufMetaValue>;
  tensors: GgufTensorInfo[];
  tensorByName: Map<string, GgufTensorInfo>;
}

const decoder = new TextDecoder("utf-8", { fatal: false });

/**
 * The items of a string array in GGUF metadata (`tokenizer.ggml.tokens`, `tokenizer.ggml.merges`,
 * …), kept as the file stores them: the UTF-8 bytes of all items back to back, and where each item
 * starts. The reader creates no JS string per item, so a 50,000-entry vocabulary costs its bytes
 * plus 4 bytes an item, not tens of megabytes of strings, and parsing a file stays within 2 × its
 * size. Items are decoded when asked for: {@link get}, iteration, {@link toArray}.
 *
 * Decoding matches what the reader did before it kept the bytes: an item of at most 64 KiB that is
 * not valid UTF-8 decodes with U+FFFD for the bad bytes; a longer one is rejected by the reader.
 */
export class GgufStringArray implements Iterable<string> {
  /**
   * @param bytes the UTF-8 bytes of all items, back to back
   * @param offsets `length + 1` ascending offsets into `bytes`: item `i` is `bytes[offsets[i], offsets[i + 1])`
   */
  constructor(readonly bytes: Uint8Array, readonly offsets: Uint32Array) {
    if (offsets.length < 1 || offsets[0] !== 0 || offsets[offsets.length - 1] > bytes.length) {
      throw new RangeError("GgufStringArray: offsets do not fit the bytes");
    }
  }

  /** A string array holding `items` (UTF-8 encoded). */
  static from(items: Iterable<string>): GgufStringArray {
    const enc = new TextEncoder();
    const parts = Array.from(items, (s) => enc.encode(s));
    const offsets = new Uint32Array(parts.length + 1);
    for (let i = 0; i < parts.length; i++) offsets[i + 1] = offsets[i] + parts[i].length;
    const bytes = new Uint8Array(offsets[parts.length]);
    for (let i = 0; i < parts.length; i++) bytes.set(parts[i], offsets[i]);
    return new GgufStringArray(bytes, offsets);
  }

  /** Number of items. */
  get length(): number {
    return this.offsets.length - 1;
  }

  /** The UTF-8 bytes of item `i` (a view, not a copy); RangeError when `i` is out of range. */
  itemBytes(i: number): Uint8Array {
    if (!(i >= 0 && i < this.offsets.length - 1 && Number.isInteger(i))) {
      throw new RangeError(`GgufStringArray: index ${i} out of range (length ${this.length})`);
    }
    return this.bytes.subarray(this.offsets[i], this.offsets[i + 1]);
  }

  /** Item `i` decoded; RangeError when `i` is out of range. */
  get(i: number): string {
    const b = this.itemBytes(i);
    return b.length ? decoder.decode(b) : "";
  }

  /** The items in order, decoded one at a time. */
  *[Symbol.iterator](): IterableIterator<string> {
    for (let i = 0; i < this.offsets.length - 1; i++) yield this.get(i);
  }

  /** All items decoded into a fresh array. */
  toArray(): string[] {
    const n = this.offsets.length - 1;
    const out: string[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = this.get(i);
    return out;
  }
}

/**
 * The items of a string array value (a parsed {@link GgufStringArray}, or a `string[]` built in
 * memory) as a fresh `string[]`; undefined for anything else.
 */
export function stringItems(value: unknown): string[] | undefined {
  if (value instanceof GgufStringArray) return value.toArray();
  if (Array.isArray(value) && value.every((x) => typeof x === "string")) return value.slice();
  return undefined;
}

/** A message part, built only when a message is (item names of long arrays would cost a string each). */
type What = string | (() => string);
const named = (w: What): string => typeof w === "string" ? w : w();

const MAGIC = 0x46554747; // "GGUF" little-endian
const MAX_DIMS = 4;

/** Random access to the bytes of a file or buffer. */
type ReadAt = (offset: number, length: number) => Uint8Array;

class Cursor {
  pos = 0;
  private win: Uint8Array = new Uint8Array(0);
  private winStart = 0;
  private view = new DataView(this.win.buffer);
  constructor(
    private readAt: ReadAt,
    readonly size: number,
    private fail: (msg: string) => never,
  ) {}

  get left(): number {
    return this.size - this.pos;
  }

  /** Makes bytes [pos, pos+n) available; returns their offset inside the window. */
  private need(n: number, what: What): number {
    if (n > this.left) {
      this.fail(`truncated: ${named(what)} needs ${n} bytes at offset ${this.pos}, file ends at ${this.size}`);
    }
    let rel = this.pos - this.winStart;
    if (rel < 0 || rel + n > this.win.length) {
      const len = Math.min(Math.max(n, 1 << 20), this.size - this.pos);
      this.win = this.readAt(this.pos, len);
      this.winStart = this.pos;
      this.view = new DataView(this.win.buffer, this.win.byteOffset, this.win.byteLength);
      rel = 0;
    }
    return rel;
  }

  u8(what: What): number {
    const r = this.need(1, what);
    this.pos += 1;
    return this.view.getUint8(r);
  }
  u32(what: What): number {
    const r = this.need(4, what);
    this.pos += 4;
    return this.view.getUint32(r, true);
  }
  /**
   * u64 as a number, at most `limit`. `roomLimit` says the limit is what fits in the rest of the
   * file (counts and lengths), so the message can say that the value runs past the end.
   */
  u64(what: What, limit = Number.MAX_SAFE_INTEGER, roomLimit = false): number {
    const r = this.need(8, what);
    this.pos += 8;
    // Two u32 halves: no BigInt per length (a vocabulary has 100,000 of them) unless it is too big.
    const lo = this.view.getUint32(r, true), hi = this.view.getUint32(r + 4, true);
    if (hi < 0x200000) {
      const v = hi * 4294967296 + lo; // exact: below 2^53
      if (v <= limit) return v;
    }
    const v = (BigInt(hi) << 32n) | BigInt(lo);
    return this.fail(
      roomLimit
        ? `${named(what)} ${v} runs past the end of the file (at most ${limit} fits in the rest)`
        : `${named(what)} ${v} is out of range (at most ${limit})`,
    );
  }
  bytes(n: number, what: What): Uint8Array {
    const r = this.need(n, what);
    this.pos += n;
    return this.win.subarray(r, r + n);
  }
  /** Steps over `n` bytes (they must be in the file). */
  skip(n: number, what: What): void {
    if (n > this.left) this.need(n, what);
    this.pos += n;
  }
  /** Moves to `pos` (an offset already read past). */
  seek(pos: number): void {
    this.pos = pos;
  }
  /** Copies the next `n` bytes into `dest` at `at`, creating no view for short runs. */
  copyTo(dest: Uint8Array, at: number, n: number, what: What): void {
    const r = this.need(n, what);
    this.pos += n;
    const w = this.win;
    if (n > 64) dest.set(w.subarray(r, r + n), at);
    else for (let j = 0; j < n; j++) dest[at + j] = w[r + j];
  }
  /** A length-prefixed UTF-8 string of at most `max` bytes (ggml's limits for names and keys). */
  string(what: string, max = MAX_STRING): string {
    const n = this.u64(`${what} length`, this.left, true);
    if (n > max) this.fail(`${what} is ${n} bytes long (at most ${max} allowed)`);
    const b = this.bytes(n, what);
    if (n <= DECODE_PIECE) return decoder.decode(b);
    // Long strings (chat templates, …) must be valid UTF-8, decoded in pieces: a corrupt length
    // then fails at the first bad byte instead of building 2n bytes of U+FFFD.
    const strict = new TextDecoder("utf-8", { fatal: true });
    let s = "";
    try {
      for (let o = 0; o < n; o += DECODE_PIECE) {
        s += strict.decode(b.subarray(o, o + DECODE_PIECE), { stream: o + DECODE_PIECE < n });
      }
    } catch {
      this.fail(`${what} (${n} bytes) is not valid UTF-8`);
    }
    return s;
  }
  scalar(type: GgufValueType, what: What): unknown {
    const size = GGUF_SCALAR_BYTES[type];
    const r = this.need(size, what);
    this.pos += size;
    const v = this.view;
    switch (type) {
      case GgufValueType.UINT8:
        return v.getUint8(r);
      case GgufValueType.INT8:
        return v.getInt8(r);
      case GgufValueType.UINT16:
        return v.getUint16(r, true);
      case GgufValueType.INT16:
        return v.getInt16(r, true);
      case GgufValueType.UINT32:
        return v.getUint32(r, true);
      case GgufValueType.INT32:
        return v.getInt32(r, true);
      case GgufValueType.FLOAT32:
        return v.getFloat32(r, true);
      case GgufValueType.BOOL:
        return v.getUint8(r) !== 0;
      case GgufValueType.UINT64:
        return safeInt(v.getBigUint64(r, true));
      case GgufValueType.INT64:
        return safeInt(v.getBigInt64(r, true));
      case GgufValueType.FLOAT64:
        return v.getFloat64(r, true);
    }
    return undefined;
  }
}

const DECODE_PIECE = 1 << 16;
/** ggml's GGML_MAX_NAME is 64 including the terminating NUL; llama.cpp rejects longer names. */
const MAX_TENSOR_NAME = 63;
/** Metadata keys are identifiers; the bound keeps a corrupt key length from decoding megabytes. */
const MAX_KEY = 65535;
/**
 * Bounds on one metadata string and one array, far above any real model's (chat templates are
 * kilobytes, vocabularies ≤ 262144 tokens), so that a corrupt length in a multi-gigabyte file
 * cannot make the reader allocate gigabytes.
 */
const MAX_STRING = 16 << 20;
const MAX_ARRAY_ITEMS = 1 << 22;
/** Bound on the nested arrays (array items that are arrays) of one file. */
const MAX_NESTED_ARRAYS = 256;
/** Bound on the bytes of all items of one string array ({@link GgufStringArray} offsets are 32-bit). */
const MAX_STRING_ARRAY_BYTES = 2 ** 32 - 1;

/** True when `b` is well-formed UTF-8 (what a fatal `TextDecoder` accepts), checked without decoding. */
export function isUtf8(b: Uint8Array): boolean {
  const n = b.length;
  let i = 0;
  while (i < n) {
    const x = b[i];
    if (x < 0x80) {
      i++;
      continue;
    }
    let need: number, lo = 0x80, hi = 0xbf;
    if (x >= 0xc2 && x <= 0xdf) need = 1;
    else if (x >= 0xe0 && x <= 0xef) {
      need = 2;
      if (x === 0xe0) lo = 0xa0; // no overlong forms
      else if (x === 0xed) hi = 0x9f; // no surrogates
    } else if (x >= 0xf0 && x <= 0xf4) {
      need = 3;
      if (x === 0xf0) lo = 0x90;
      else if (x === 0xf4) hi = 0x8f; // nothing above U+10FFFF
    } else return false;
    if (i + need >= n) return false; // cut short
    const y = b[i + 1];
    if (y < lo || y > hi) return false;
    for (let k = 2; k <= need; k++) {
      const z = b[i + k];
      if (z < 0x80 || z > 0xbf) return false;
    }
    i += need + 1;
  }
  return true;
}

function safeInt(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

const TYPED: Record<number, { new (b: ArrayBuffer): ArrayLike<unknown> }> = {
  [GgufValueType.UINT8]: Uint8Array,
  [GgufValueType.INT8]: Int8Array,
  [GgufValueType.UINT16]: Uint16Array,
  [GgufValueType.INT16]: Int16Array,
  [GgufValueType.UINT32]: Uint32Array,
  [GgufValueType.INT32]: Int32Array,
  [GgufValueType.FLOAT32]: Float32Array,
  [GgufValueType.UINT64]: BigUint64Array,
  [GgufValueType.INT64]: BigInt64Array,
  [GgufValueType.FLOAT64]: Float64Array,
};

function readValue(
  c: Cursor,
  type: number,
  key: string,
  depth: number,
  fail: (m: string) => never,
  nested: { count: number },
): GgufMetaValue {
  if (type === GgufValueType.STRING) return { type, value: c.string(`value of ${key}`) };
  if (type === GgufValueType.ARRAY) {
    if (depth > 8) fail(`metadata ${key}: arrays nested deeper than 8 levels`);
    const itemType = c.u32(`array type of ${key}`);
    // Smallest possible item: 1 byte scalar, 8-byte string length, 12-byte nested array header.
    const minItem = itemType === GgufValueType.STRING
      ? 8
      : itemType === GgufValueType.ARRAY
      ? 12
      : GGUF_SCALAR_BYTES[itemType];
    if (minItem === undefined) fail(`metadata ${key}: unknown array item type ${itemType}`);
    const n = c.u64(`array length of ${key}`, Math.floor(c.left / minItem), true);
    if (n > MAX_ARRAY_ITEMS) fail(`metadata ${key}: array of ${n} items is implausible (at most ${MAX_ARRAY_ITEMS})`);
    if (itemType === GgufValueType.STRING) return { type, itemType, value: readStringArray(c, n, key, fail) };
    if (itemType === GgufValueType.ARRAY) {
      // A nested array costs a few hundred bytes of objects for its 12 bytes in the file, so their
      // number is bounded (llama.cpp reads no nested arrays at all).
      nested.count += n;
      if (nested.count > MAX_NESTED_ARRAYS) {
        fail(`metadata ${key}: more than ${MAX_NESTED_ARRAYS} nested arrays in the file is implausible`);
      }
      const out: GgufMetaValue[] = [];
      for (let i = 0; i < n; i++) {
        out.push(readValue(c, GgufValueType.ARRAY, `${key}[${i}]`, depth + 1, fail, nested));
      }
      return { type, itemType, value: out };
    }
    if (itemType === GgufValueType.BOOL) {
      // One byte an item, as stored (a boolean[] would take 8 or more).
      const b = c.bytes(n, `${key} items`);
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = b[i] !== 0 ? 1 : 0;
      return { type, itemType, value: out };
    }
    const raw = c.bytes(n * minItem, `${key} items`);
    const copy = new Uint8Array(raw.length);
    copy.set(raw); // fresh buffer: aligned for the typed array, detached from the read window
    return { type, itemType, value: new TYPED[itemType](copy.buffer) };
  }
  if (GGUF_SCALAR_BYTES[type] === undefined) fail(`metadata ${key}: unknown value type ${type}`);
  return { type, value: c.scalar(type, `value of ${key}`) };
}

/**
 * The `n` items of a string array, read in two passes and kept as bytes ({@link GgufStringArray}).
 * The first pass checks each length as {@link Cursor.string} does (and long items' UTF-8) and
 * records the offsets; the second copies the bytes into one buffer of the exact size. Growth: the
 * item bytes plus 4 bytes an item (items take at least 8 bytes of the file), and no JS string.
 */
function readStringArray(c: Cursor, n: number, key: string, fail: (m: string) => never): GgufStringArray {
  const start = c.pos;
  const offsets = new Uint32Array(n + 1); // n ≤ bytes left / 8, checked by the caller
  let i = 0;
  const item = () => `${key}[${i}]`;
  const itemLength = () => `${key}[${i}] length`;
  let total = 0;
  for (; i < n; i++) {
    const len = c.u64(itemLength, c.left, true);
    if (len > MAX_STRING) fail(`${item()} is ${len} bytes long (at most ${MAX_STRING} allowed)`);
    // Like Cursor.string: long items must be valid UTF-8, so a corrupt length fails here.
    if (len > DECODE_PIECE) {
      if (!isUtf8(c.bytes(len, item))) fail(`${item()} (${len} bytes) is not valid UTF-8`);
    } else c.skip(len, item);
    total += len;
    if (total > MAX_STRING_ARRAY_BYTES) {
      fail(`metadata ${key}: strings of more than ${MAX_STRING_ARRAY_BYTES} bytes in all are implausible`);
    }
    offsets[i + 1] = total;
  }
  const end = c.pos;
  const bytes = new Uint8Array(total);
  c.seek(start);
  for (i = 0; i < n; i++) {
    c.skip(8, itemLength);
    c.copyTo(bytes, offsets[i], offsets[i + 1] - offsets[i], item);
  }
  if (c.pos !== end) throw new Error("gguf: string array re-read out of step"); // cannot happen
  return new GgufStringArray(bytes, offsets);
}

/** A name from the file, cut to a length that fits in a one-line message. */
function shown(name: string): string {
  return name.length > 80 ? `${name.slice(0, 80)}…` : name;
}

/** Characters that would break a one-line message (names in messages come from the file). */
// deno-lint-ignore no-control-regex
const CONTROL_CHARS = /[\x00-\x1f\x7f\u2028\u2029]/g;

/** Parses a GGUF header from a random-access source. */
function parse(readAt: ReadAt, fileSize: number, path: string): GgufFile {
  const fail = (msg: string): never => {
    // Names in messages come from the file: escape control characters so the message stays one line.
    const oneLine = msg.replace(CONTROL_CHARS, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`);
    throw new SparqError(`${path}: ${oneLine}`);
  };
  const c = new Cursor(readAt, fileSize, fail);
  if (fileSize < 4) fail(`not a GGUF file (only ${fileSize} bytes)`);
  const magic = c.u32("magic");
  if (magic !== MAGIC) {
    const shown = Array.from(readAt(0, 4), (b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : ".")).join("");
    fail(`not a GGUF file (magic "${shown}", expected "GGUF")`);
  }
  const version = c.u32("version");
  if (version === 1) fail("GGUF version 1 is not supported (re-convert the model with a current llama.cpp)");
  if (version !== 2 && version !== 3) {
    if (version > 0xffff && (version >>> 24) <= 3) fail(`big-endian GGUF files are not supported`);
    fail(`unknown GGUF version ${version} (supported: 2, 3)`);
  }
  // Minimum bytes per tensor info: 8 (name len) + 4 (n_dims) + 4 (type) + 8 (offset).
  const nTensors = c.u64("tensor count", Math.floor(c.left / 24), true);
  // Minimum bytes per metadata entry: 8 (key len) + 4 (type) + 1 (smallest value).
  const nKv = c.u64("metadata count", Math.floor(c.left / 13), true);

  const metadata = new Map<string, GgufMetaValue>();
  const nested = { count: 0 };
  for (let i = 0; i < nKv; i++) {
    const key = c.string(`metadata key #${i}`, MAX_KEY);
    const k = shown(key);
    const type = c.u32(`type of ${k}`);
    if (metadata.has(key)) fail(`duplicate metadata key ${k}`);
    metadata.set(key, readValue(c, type, k, 0, fail, nested));
  }

  let alignment = 32;
  const al = metadata.get("general.alignment");
  if (al) {
    const v = al.value;
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0 || (v & (v - 1)) !== 0) {
      fail(`general.alignment ${String(v)} is not a positive power of two`);
    }
    alignment = v as number;
  }

  const tensors: GgufTensorInfo[] = [];
  const tensorByName = new Map<string, GgufTensorInfo>();
  for (let i = 0; i < nTensors; i++) {
    const name = c.string(`name of tensor #${i}`, MAX_TENSOR_NAME);
    const tn = shown(name);
    const nDims = c.u32(`dimension count of ${tn}`);
    if (nDims < 1 || nDims > MAX_DIMS) fail(`tensor ${tn}: ${nDims} dimensions (1..${MAX_DIMS} allowed)`);
    const shape: number[] = [];
    let elems = 1;
    for (let d = 0; d < nDims; d++) {
      const n = c.u64(`dimension ${d} of ${tn}`, 2 ** 40);
      if (n === 0) fail(`tensor ${tn}: dimension ${d} is 0`);
      elems *= n;
      if (elems > 2 ** 45) fail(`tensor ${tn}: ${elems} elements is absurd`);
      shape.push(n);
    }
    const type = c.u32(`type of ${tn}`);
    if (!ggmlTypeInfo(type)) fail(`tensor ${tn}: unknown tensor type ${type}`);
    const rel = c.u64(`offset of ${tn}`);
    if (tensorByName.has(name)) fail(`duplicate tensor name ${tn}`);
    let bytes = 0;
    try {
      bytes = tensorByteSize(type, shape, `tensor ${tn}`);
    } catch (e) {
      fail((e as Error).message);
    }
    const t: GgufTensorInfo = { name, type, shape, offset: rel, bytes };
    tensors.push(t);
    tensorByName.set(name, t);
  }

  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  if (nTensors > 0 && dataOffset > fileSize) {
    fail(`tensor data would start at ${dataOffset}, past the end of the file (${fileSize})`);
  }
  for (const t of tensors) {
    if (t.offset % alignment !== 0) {
      fail(`tensor ${shown(t.name)}: data offset ${t.offset} is not a multiple of the alignment ${alignment}`);
    }
    t.offset += dataOffset;
    if (t.offset + t.bytes > fileSize) {
      fail(
        `tensor ${shown(t.name)} (${ggmlTypeName(t.type)} [${
          t.shape.join(", ")
        }], ${t.bytes} bytes at ${t.offset}) extends past the end of the file (${fileSize} bytes)`,
      );
    }
  }
  const sorted = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const p = sorted[i - 1], t = sorted[i];
    if (t.offset < p.offset + p.bytes) fail(`tensors ${shown(p.name)} and ${shown(t.name)} overlap`);
  }
  return { path, version, fileSize, alignment, dataOffset, metadata, tensors, tensorByName };
}

/** Parses the header of a GGUF held in memory (tests, fuzzing, files written in memory). */
export function parseGgufBytes(bytes: Uint8Array, path = "<memory>"): GgufFile {
  return parse((o, n) => bytes.subarray(o, o + n), bytes.length, path);
}

/** Opens `path` and parses its header, metadata and tensor infos (no tensor data is read). */
export function openGguf(path: string): Promise<GgufFile> {
  // Errors must reject the promise, not throw synchronously out of a Promise-returning call.
  try {
    return Promise.resolve(openGgufSync(path));
  } catch (e) {
    return Promise.reject(e);
  }
}

/** Synchronous {@link openGguf}. */
export function openGgufSync(path: string): GgufFile {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new SparqError(`${path}: no such file`);
    if (e instanceof Deno.errors.PermissionDenied) throw new SparqError(`${path}: permission denied`);
    throw new SparqError(`${path}: cannot open (${(e as Error).message})`);
  }
  try {
    const st = file.statSync();
    if (!st.isFile) throw new SparqError(`${path}: not a regular file`);
    const readAt: ReadAt = (offset, length) => {
      const buf = new Uint8Array(length);
      file.seekSync(offset, Deno.SeekMode.Start);
      readFully(file, buf, path);
      return buf;
    };
    return parse(readAt, st.size, path);
  } finally {
    file.close();
  }
}

function readFully(file: Deno.FsFile, dest: Uint8Array, path: string): void {
  let done = 0;
  while (done < dest.length) {
    const n = file.readSync(dest.subarray(done));
    if (n === null || n === 0) throw new SparqError(`${path}: unexpected end of file`);
    done += n;
  }
}

/**
 * Copies the data of `tensor` from disk into `dest` (for example a view of WebAssembly memory).
 * Reads in chunks, so no second copy of the tensor is made in the JS heap.
 */
export async function readTensorInto(file: GgufFile, tensor: GgufTensorInfo, dest: Uint8Array): Promise<void> {
  if (dest.length < tensor.bytes) throw new Error(`readTensorInto: destination too small for ${tensor.name}`);
  // Deno cannot read into a SharedArrayBuffer view, so shared memory is filled through one
  // reusable 16 MiB chunk; plain memory is read into directly.
  const shared = dest.buffer instanceof SharedArrayBuffer;
  const f = await Deno.open(file.path, { read: true });
  try {
    await f.seek(tensor.offset, Deno.SeekMode.Start);
    let done = 0;
    while (done < tensor.bytes) {
      const want = Math.min(CHUNK, tensor.bytes - done);
      const target = shared ? chunkBuffer().subarray(0, want) : dest.subarray(done, done + want);
      const n = await f.read(target);
      if (n === null || n === 0) throw new SparqError(`${file.path}: unexpected end of file reading ${tensor.name}`);
      if (shared) dest.set(target.subarray(0, n), done);
      done += n;
    }
  } finally {
    f.close();
  }
}

const CHUNK = 1 << 24;
let chunk: Uint8Array | undefined;
function chunkBuffer(): Uint8Array {
  return chunk ??= new Uint8Array(CHUNK);
}

/** Metadata value of `key`, or undefined. */
export function metaValue(file: GgufFile, key: string): unknown {
  return file.metadata.get(key)?.value;
}

/** Numeric metadata value (any integer or float type); `def` when absent, SparqError if not a number. */
export function metaNumber(file: GgufFile, key: string, def?: number): number {
  const v = file.metadata.get(key);
  if (!v) {
    if (def === undefined) throw new SparqError(`${file.path}: missing metadata key ${key}`);
    return def;
  }
  if (typeof v.value === "number") return v.value;
  if (typeof v.value === "bigint") return Number(v.value);
  throw new SparqError(`${file.path}: metadata ${key} should be a number, found ${GgufValueType[v.type]}`);
}

/** String metadata value; `def` when absent. */
export function metaString(file: GgufFile, key: string, def?: string): string {
  const v = file.metadata.get(key);
  if (!v) {
    if (def === undefined) throw new SparqError(`${file.path}: missing metadata key ${key}`);
    return def;
  }
  if (typeof v.value !== "string") {
    throw new SparqError(`${file.path}: metadata ${key} should be a string, found ${GgufValueType[v.type]}`);
  }
  return v.value;
}

/** Boolean metadata value; `def` when absent. */
export function metaBool(file: GgufFile, key: string, def?: boolean): boolean {
  const v = file.metadata.get(key);
  if (!v) {
    if (def === undefined) throw new SparqError(`${file.path}: missing metadata key ${key}`);
    return def;
  }
  if (typeof v.value !== "boolean") {
    throw new SparqError(`${file.path}: metadata ${key} should be a bool, found ${GgufValueType[v.type]}`);
  }
  return v.value;
}

/**
 * Array metadata value (typed array, {@link GgufStringArray}, boolean[] or nested), or undefined
 * when absent.
 */
export function metaArray<T = unknown>(file: GgufFile, key: string): T | undefined {
  const v = file.metadata.get(key);
  if (!v) return undefined;
  if (v.type !== GgufValueType.ARRAY) {
    throw new SparqError(`${file.path}: metadata ${key} should be an array, found ${GgufValueType[v.type]}`);
  }
  return v.value as T;
}
