/**
 * GGUF writer (version 3 by default, 2 on request: the layouts are identical). Metadata of every
 * value type including nested arrays, tensor infos, `general.alignment`, and tensor data streamed
 * tensor by tensor from callbacks, so a multi-gigabyte model never has to be held in memory.
 *
 * Files are written to `<path>.tmp-<pid>` and renamed into place only when complete; on any error
 * the temporary file is removed, so no partial file ever appears under the final name.
 * @module
 */
import { GGUF_SCALAR_BYTES, type GgufMetaValue, GgufStringArray, GgufValueType } from "./gguf.ts";
import { type GgmlType, ggmlTypeName, tensorByteSize } from "./ggml_types.ts";

/** Metadata to write, in order (a Map keeps insertion order). */
export type GgufMetadataInput = Map<string, GgufMetaValue> | Iterable<[string, GgufMetaValue]>;

/** Name, type and shape (ggml `ne` order) of a tensor to write. */
export interface GgufTensorSpec {
  name: string;
  type: GgmlType;
  shape: number[];
}

/** A tensor whose bytes are produced on demand, in chunks of any size, in file order. */
export interface GgufTensorSource extends GgufTensorSpec {
  /** Yields the tensor's bytes; the chunks must add up to exactly its byte size. */
  data(): Iterable<Uint8Array> | AsyncIterable<Uint8Array>;
}

/** Options of {@link writeGguf} and {@link ggufBytes}. */
export interface GgufWriteOptions {
  /** GGUF version number written in the header (2 or 3; default 3). */
  version?: 2 | 3;
  /** Called after each chunk of tensor data with the bytes written so far and the total. */
  onProgress?: (done: number, total: number, tensor: string) => void;
  /** Aborting stops the write after the current chunk and removes the temporary file. */
  signal?: AbortSignal;
}

/** Constructors for metadata values, so callers need not spell out value types. */
export const meta = {
  u8: (v: number): GgufMetaValue => ({ type: GgufValueType.UINT8, value: v }),
  i8: (v: number): GgufMetaValue => ({ type: GgufValueType.INT8, value: v }),
  u16: (v: number): GgufMetaValue => ({ type: GgufValueType.UINT16, value: v }),
  i16: (v: number): GgufMetaValue => ({ type: GgufValueType.INT16, value: v }),
  u32: (v: number): GgufMetaValue => ({ type: GgufValueType.UINT32, value: v }),
  i32: (v: number): GgufMetaValue => ({ type: GgufValueType.INT32, value: v }),
  u64: (v: number | bigint): GgufMetaValue => ({ type: GgufValueType.UINT64, value: v }),
  i64: (v: number | bigint): GgufMetaValue => ({ type: GgufValueType.INT64, value: v }),
  f32: (v: number): GgufMetaValue => ({ type: GgufValueType.FLOAT32, value: v }),
  f64: (v: number): GgufMetaValue => ({ type: GgufValueType.FLOAT64, value: v }),
  bool: (v: boolean): GgufMetaValue => ({ type: GgufValueType.BOOL, value: v }),
  str: (v: string): GgufMetaValue => ({ type: GgufValueType.STRING, value: v }),
  /**
   * Array of `itemType`: numbers/bigints (or a typed array), booleans (or 0/1 numbers), strings (or a
   * GgufStringArray), or nested values.
   */
  arr: (itemType: GgufValueType, values: ArrayLike<unknown> | GgufStringArray): GgufMetaValue => ({
    type: GgufValueType.ARRAY,
    itemType,
    value: values,
  }),
};

/** A growable little-endian byte buffer. */
class ByteSink {
  buf = new Uint8Array(1 << 16);
  view = new DataView(this.buf.buffer);
  len = 0;

  private reserve(n: number): number {
    if (this.len + n > this.buf.length) {
      let size = this.buf.length * 2;
      while (size < this.len + n) size *= 2;
      const next = new Uint8Array(size);
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    const at = this.len;
    this.len += n;
    return at;
  }
  // reserve() may replace this.view, so it is called before this.view is read.
  u32(v: number) {
    const at = this.reserve(4);
    this.view.setUint32(at, v, true);
  }
  u64(v: number | bigint) {
    const at = this.reserve(8);
    this.view.setBigUint64(at, BigInt(v), true);
  }
  bytes(b: Uint8Array) {
    const at = this.reserve(b.length);
    this.buf.set(b, at);
  }
  string(s: string) {
    const b = encoder.encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  zeros(n: number) {
    const at = this.reserve(n);
    this.buf.fill(0, at, this.len);
  }
  scalar(type: GgufValueType, v: unknown, what: string) {
    const size = GGUF_SCALAR_BYTES[type];
    if (size === undefined) throw new Error(`gguf writer: ${what}: unknown value type ${type}`);
    const at = this.reserve(size);
    const d = this.view;
    switch (type) {
      case GgufValueType.UINT8:
        return d.setUint8(at, num(v, what));
      case GgufValueType.INT8:
        return d.setInt8(at, num(v, what));
      case GgufValueType.UINT16:
        return d.setUint16(at, num(v, what), true);
      case GgufValueType.INT16:
        return d.setInt16(at, num(v, what), true);
      case GgufValueType.UINT32:
        return d.setUint32(at, num(v, what), true);
      case GgufValueType.INT32:
        return d.setInt32(at, num(v, what), true);
      case GgufValueType.FLOAT32:
        return d.setFloat32(at, num(v, what), true);
      case GgufValueType.FLOAT64:
        return d.setFloat64(at, num(v, what), true);
      case GgufValueType.BOOL:
        // 0 and 1 too: the reader gives bool arrays as a Uint8Array of 0/1.
        if (typeof v !== "boolean" && v !== 0 && v !== 1) throw new Error(`gguf writer: ${what}: expected a boolean`);
        return d.setUint8(at, v ? 1 : 0);
      case GgufValueType.UINT64:
        return d.setBigUint64(at, big(v, what), true);
      case GgufValueType.INT64:
        return d.setBigInt64(at, big(v, what), true);
    }
  }
  value(type: GgufValueType, v: unknown, itemType: GgufValueType | undefined, what: string) {
    if (type === GgufValueType.STRING) {
      if (typeof v !== "string") throw new Error(`gguf writer: ${what}: expected a string`);
      return this.string(v);
    }
    if (type !== GgufValueType.ARRAY) return this.scalar(type, v, what);
    if (itemType === undefined) throw new Error(`gguf writer: ${what}: array without an item type`);
    if (v instanceof GgufStringArray) {
      // A string array as read: its items' bytes are written as they are.
      if (itemType !== GgufValueType.STRING) {
        throw new Error(`gguf writer: ${what}: strings in an array of ${itemType}`);
      }
      this.u32(itemType);
      this.u64(v.length);
      for (let i = 0; i < v.length; i++) {
        const b = v.itemBytes(i);
        this.u64(b.length);
        this.bytes(b);
      }
      return;
    }
    const items = v as ArrayLike<unknown>;
    this.u32(itemType);
    this.u64(items.length);
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      if (itemType === GgufValueType.ARRAY) {
        const m = item as GgufMetaValue;
        this.value(GgufValueType.ARRAY, m.value, m.itemType, `${what}[${i}]`);
      } else {
        this.value(itemType, item, undefined, `${what}[${i}]`);
      }
    }
  }
  take(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

const encoder = new TextEncoder();

function num(v: unknown, what: string): number {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  throw new Error(`gguf writer: ${what}: expected a number`);
}

function big(v: unknown, what: string): bigint {
  if (typeof v === "bigint") return v;
  if (typeof v === "number" && Number.isInteger(v)) return BigInt(v);
  throw new Error(`gguf writer: ${what}: expected an integer`);
}

/** The encoded header (padded to the alignment) and where each tensor's data goes. */
export interface GgufLayout {
  /** Header, metadata and tensor infos, zero-padded to a multiple of the alignment if there are tensors. */
  header: Uint8Array;
  alignment: number;
  /** Byte size of each tensor, in the order given. */
  sizes: number[];
  /** Offset of each tensor relative to the start of the data section. */
  offsets: number[];
  /** Size of the whole file. */
  fileSize: number;
}

/** Encodes the header for `tensors` (data laid out in the given order, each aligned). */
export function ggufLayout(
  metadata: GgufMetadataInput,
  tensors: readonly GgufTensorSpec[],
  version: 2 | 3 = 3,
): GgufLayout {
  const entries = [...metadata];
  let alignment = 32;
  const al = entries.find(([k]) => k === "general.alignment");
  if (al) {
    const v = al[1].value;
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0 || (v & (v - 1)) !== 0) {
      throw new Error(`gguf writer: general.alignment ${String(v)} is not a positive power of two`);
    }
    alignment = v;
  }
  const s = new ByteSink();
  s.bytes(encoder.encode("GGUF"));
  s.u32(version);
  s.u64(tensors.length);
  s.u64(entries.length);
  const keys = new Set<string>();
  for (const [key, v] of entries) {
    if (keys.has(key)) throw new Error(`gguf writer: duplicate metadata key ${key}`);
    keys.add(key);
    s.string(key);
    s.u32(v.type);
    s.value(v.type, v.value, v.itemType, key);
  }
  const names = new Set<string>();
  const sizes: number[] = [];
  const offsets: number[] = [];
  let off = 0;
  for (const t of tensors) {
    if (names.has(t.name)) throw new Error(`gguf writer: duplicate tensor name ${t.name}`);
    names.add(t.name);
    if (t.shape.length < 1 || t.shape.length > 4) {
      throw new Error(`gguf writer: tensor ${t.name} has ${t.shape.length} dimensions (1..4 allowed)`);
    }
    s.string(t.name);
    s.u32(t.shape.length);
    for (const d of t.shape) s.u64(d);
    s.u32(t.type);
    s.u64(off);
    const size = tensorByteSize(t.type, t.shape, `tensor ${t.name} (${ggmlTypeName(t.type)})`);
    sizes.push(size);
    offsets.push(off);
    off = alignUp(off + size, alignment);
  }
  // Like ggml, pad to the data section only when there is one (vocab-only files end unpadded).
  if (tensors.length) s.zeros(alignUp(s.len, alignment) - s.len);
  const header = s.take();
  const last = tensors.length ? offsets[offsets.length - 1] + sizes[sizes.length - 1] : 0;
  return { header, alignment, sizes, offsets, fileSize: header.length + last };
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** Builds a whole GGUF file in memory (tests, fuzzing); tensor data given as byte arrays. */
export function ggufBytes(
  metadata: GgufMetadataInput,
  tensors: readonly (GgufTensorSpec & { bytes: Uint8Array })[],
  version: 2 | 3 = 3,
): Uint8Array {
  const layout = ggufLayout(metadata, tensors, version);
  const out = new Uint8Array(layout.fileSize);
  out.set(layout.header);
  tensors.forEach((t, i) => {
    if (t.bytes.length !== layout.sizes[i]) {
      throw new Error(`gguf writer: tensor ${t.name}: ${t.bytes.length} bytes given, ${layout.sizes[i]} expected`);
    }
    out.set(t.bytes, layout.header.length + layout.offsets[i]);
  });
  return out;
}

/**
 * Writes a GGUF file: header first, then each tensor's data as its `data()` produces it. Only one
 * chunk is held at a time. Returns the file size.
 */
export async function writeGguf(
  path: string,
  metadata: GgufMetadataInput,
  tensors: readonly GgufTensorSource[],
  options: GgufWriteOptions = {},
): Promise<number> {
  const layout = ggufLayout(metadata, tensors, options.version ?? 3);
  const total = layout.fileSize - layout.header.length;
  const tmp = `${path}.tmp-${Deno.pid}`;
  const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
  let closed = false;
  try {
    await writeAll(file, layout.header);
    let pos = 0; // relative to the data section
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i];
      const start = layout.offsets[i];
      if (start > pos) await writeAll(file, new Uint8Array(start - pos)); // alignment padding
      pos = start;
      for await (const chunk of t.data()) {
        if (pos + chunk.length > start + layout.sizes[i]) {
          throw new Error(`gguf writer: tensor ${t.name}: data() produced more than ${layout.sizes[i]} bytes`);
        }
        options.signal?.throwIfAborted();
        await writeAll(file, chunk);
        pos += chunk.length;
        options.onProgress?.(pos, total, t.name);
      }
      if (pos !== start + layout.sizes[i]) {
        throw new Error(
          `gguf writer: tensor ${t.name}: data() produced ${pos - start} bytes, ${layout.sizes[i]} expected`,
        );
      }
    }
    file.close();
    closed = true;
    await Deno.rename(tmp, path);
  } catch (e) {
    if (!closed) file.close();
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  return layout.fileSize;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await file.write(bytes.subarray(done));
}
