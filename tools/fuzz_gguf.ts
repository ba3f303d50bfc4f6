/**
 * GGUF fuzzer: mutates valid GGUF files (truncations, flipped bytes, huge counts and lengths, bad
 * types, bad offsets, inserted and deleted bytes) and runs every variant through the reader. Each
 * case must end in a SparqError or a valid parse — any other exception is a bug — and the time and
 * memory of each case are measured.
 *
 * The mutations aim at the header: a map of where every count, length, type and offset lies is
 * built by walking the valid file once, so most cases hit a field the parser must check.
 *
 * usage: deno run -A tools/fuzz_gguf.ts [--seed N] [--count N] [--disk-every N] FILE.gguf|DIR …
 *        (default inputs: ../shared/fixtures/models, models/quant and the vocabulary-only GGUFs of
 *        fixtures/tokenizer)
 * @module
 */
import { parseArgs } from "node:util";
import { openGguf, parseGgufBytes } from "../lib/gguf.ts";
import { SparqError } from "../lib/errors.ts";

/**
 * Fixed allowance on top of 2 × the file size: parsing even a tiny truncated file allocates some
 * strings, maps and an exception, whatever its size.
 */
export const MEM_SLACK = 1 << 20;

/** Where the fields of a valid GGUF header lie. */
interface FieldMap {
  /** Offsets of u64 counts and lengths (tensor/kv counts, string and array lengths, dims). */
  lengths: number[];
  /** Offsets of u32 type tags and n_dims. */
  types: number[];
  /** Offsets of tensor data offsets (u64). */
  offsets: number[];
  /** End of the tensor infos (start of padding before the data). */
  headerEnd: number;
}

/** Walks a valid GGUF and records its field positions (at most a few per long array). */
export function fieldMap(b: Uint8Array): FieldMap {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const m: FieldMap = { lengths: [8, 16], types: [4], offsets: [], headerEnd: 0 };
  let p = 24;
  const u64 = () => {
    const x = Number(v.getBigUint64(p, true));
    p += 8;
    return x;
  };
  const str = (record: boolean) => {
    if (record) m.lengths.push(p);
    const n = u64();
    p += n;
  };
  const scalarSize: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const value = (type: number, record: boolean) => {
    if (type === 8) return str(record);
    if (type !== 9) return void (p += scalarSize[type]);
    if (record) m.types.push(p);
    const item = v.getUint32(p, true);
    p += 4;
    if (record) m.lengths.push(p);
    const n = u64();
    if (item !== 8 && item !== 9) return void (p += n * scalarSize[item]);
    for (let i = 0; i < n; i++) value(item, record && (i < 3 || i === n - 1));
  };
  const nTensors = Number(v.getBigUint64(8, true)), nKv = Number(v.getBigUint64(16, true));
  for (let i = 0; i < nKv; i++) {
    str(true);
    m.types.push(p);
    const t = v.getUint32(p, true);
    p += 4;
    value(t, true);
  }
  for (let i = 0; i < nTensors; i++) {
    str(true);
    m.types.push(p);
    const nd = v.getUint32(p, true);
    p += 4;
    for (let d = 0; d < nd; d++) m.lengths.push(p + 8 * d);
    p += 8 * nd;
    m.types.push(p);
    p += 4;
    m.offsets.push(p);
    p += 8;
  }
  m.headerEnd = p;
  return m;
}

/** A small fast seeded PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BIG: bigint[] = [
  0n,
  1n,
  2n,
  31n,
  255n,
  0xffffn,
  0xffffffffn,
  1n << 32n,
  (1n << 53n) + 1n,
  1n << 60n,
  1n << 63n,
  (1n << 64n) - 1n,
];
const TYPES = [0, 1, 2, 7, 8, 9, 10, 12, 13, 15, 16, 31, 99, 0x7fffffff, 0xffffffff];

/** One mutated variant: its bytes and a description to reproduce it. */
export interface Variant {
  bytes: Uint8Array;
  what: string;
  /** Restores the shared buffer after in-place mutations. */
  undo(): void;
}

/** Makes mutated variants of one valid file; in-place mutations are undone by `undo()`. */
export class Mutator {
  readonly map: FieldMap;
  private view: DataView;
  constructor(readonly buf: Uint8Array, private rand: () => number) {
    this.map = fieldMap(buf);
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  private int(n: number): number {
    return Math.floor(this.rand() * n);
  }
  private pick<T>(xs: T[]): T {
    return xs[this.int(xs.length)];
  }
  /** A position biased to the header (where the parser's checks are). */
  private headerPos(): number {
    return this.int(Math.min(this.buf.length, this.map.headerEnd + 64));
  }

  /** A variant of the mutation kind chosen at random. */
  next(): Variant {
    const b = this.buf;
    const saved: [number, Uint8Array][] = [];
    const write = (at: number, bytes: Uint8Array) => {
      if (at < 0 || at >= b.length) return;
      const end = Math.min(b.length, at + bytes.length);
      saved.push([at, b.slice(at, end)]);
      b.set(bytes.subarray(0, end - at), at);
    };
    const u64 = (at: number, x: bigint) => {
      const t = new Uint8Array(8);
      new DataView(t.buffer).setBigUint64(0, BigInt.asUintN(64, x), true);
      write(at, t);
    };
    const u32 = (at: number, x: number) => {
      const t = new Uint8Array(4);
      new DataView(t.buffer).setUint32(0, x >>> 0, true);
      write(at, t);
    };
    const undo = () => {
      for (let i = saved.length - 1; i >= 0; i--) b.set(saved[i][1], saved[i][0]);
    };
    const m = this.map;
    const r = this.int(100);
    let what: string;
    let bytes = b;
    if (r < 15) {
      const n = this.rand() < 0.7 ? this.headerPos() : this.int(b.length);
      bytes = b.subarray(0, n);
      what = `truncate to ${n}`;
    } else if (r < 40) {
      const k = 1 + this.int(8);
      const at: number[] = [];
      for (let i = 0; i < k; i++) {
        const p = this.headerPos();
        at.push(p);
        write(p, new Uint8Array([b[p] ^ (1 << this.int(8))]));
      }
      what = `flip bits at ${at.join(",")}`;
    } else if (r < 60) {
      const at = this.pick(m.lengths);
      const old = at + 8 <= b.length ? this.view.getBigUint64(at, true) : 0n;
      const x = this.rand() < 0.5 ? this.pick(BIG) : old + BigInt(this.int(17) - 8);
      u64(at, x);
      what = `u64 count/length at ${at} = ${BigInt.asUintN(64, x)}`;
    } else if (r < 72) {
      const at = this.pick(m.types);
      const x = this.pick(TYPES);
      u32(at, x);
      what = `u32 type at ${at} = ${x}`;
    } else if (r < 84 && m.offsets.length) {
      const at = this.pick(m.offsets);
      const old = this.view.getBigUint64(at, true);
      const choices = [old + 1n, old + 16n, old - 32n, 0n, BigInt(b.length), BigInt(b.length) * 2n, this.pick(BIG)];
      const x = this.pick(choices);
      u64(at, x);
      what = `tensor offset at ${at} = ${BigInt.asUintN(64, x)}`;
    } else if (r < 92) {
      const at = this.headerPos(), n = 1 + this.int(16);
      const out = new Uint8Array(b.length + n);
      out.set(b.subarray(0, at));
      for (let i = 0; i < n; i++) out[at + i] = this.int(256);
      out.set(b.subarray(at), at + n);
      bytes = out;
      what = `insert ${n} random bytes at ${at}`;
    } else {
      const at = this.headerPos(), n = 1 + this.int(16);
      const out = new Uint8Array(Math.max(0, b.length - n));
      out.set(b.subarray(0, at));
      out.set(b.subarray(Math.min(b.length, at + n)), at);
      bytes = out;
      what = `delete ${n} bytes at ${at}`;
    }
    return { bytes, what, undo };
  }
}

/** Groups an error message into a kind (what went wrong, without names and numbers). */
export function errorKind(message: string): string {
  const m = message.replace(/^[^:]*\.gguf: /, "").replace(/^<memory>: /, "");
  const kinds: [RegExp, string][] = [
    [/^truncated/, "truncated"],
    [/not a GGUF file/, "not a GGUF file"],
    [/GGUF version|big-endian/, "unsupported version"],
    [/runs past the end of the file/, "count or length past EOF"],
    [/is out of range/, "value out of range"],
    [/unknown (value|array item) type/, "unknown metadata type"],
    [/unknown tensor type/, "unknown tensor type"],
    [/duplicate metadata key/, "duplicate metadata key"],
    [/duplicate tensor name/, "duplicate tensor name"],
    [/dimensions \(1\.\.4 allowed\)/, "bad dimension count"],
    [/dimension \d+ is 0/, "zero dimension"],
    [/elements is absurd/, "absurd element count"],
    [/block size/, "row not a multiple of the block size"],
    [/general\.alignment/, "bad general.alignment"],
    [/not a multiple of the alignment/, "misaligned tensor offset"],
    [/extends past the end of the file/, "tensor data past EOF"],
    [/overlap/, "overlapping tensors"],
    [/data would start at/, "data section past EOF"],
    [/nested deeper/, "arrays nested too deep"],
    [/not valid UTF-8/, "long string not UTF-8"],
    [/bytes long \(at most/, "name, key or string too long"],
    [/items is implausible/, "array too long"],
    [/nested arrays in the file is implausible/, "too many nested arrays"],
    [/bytes in all are implausible/, "string array too large"],
  ];
  for (const [re, kind] of kinds) if (re.test(m)) return kind;
  return m.split(/\s+/).slice(0, 4).join(" ").replace(/\d+/g, "N");
}

/** Figures of a campaign. */
export interface FuzzStats {
  cases: number;
  /** Outcome → count: "valid" or an error kind. */
  outcomes: Record<string, number>;
  /** Cases that threw something other than a SparqError (bugs), with a reproducer. */
  bugs: string[];
  /** Disk cases whose outcome differed from the in-memory parse of the same bytes. */
  diskMismatches: string[];
  diskCases: number;
  maxMs: number;
  maxMsCase: string;
  /** Largest growth of heapUsed + external over one case, in bytes. */
  maxMemBytes: number;
  maxMemCase: string;
  /** Largest growth as a fraction of the variant's size, over variants of at least 1 MiB. */
  maxMemRatio: number;
  /** Cases whose growth exceeded 2 × their size + 1 MiB. */
  overBudget: string[];
  seconds: number;
}

/** Options of {@link fuzz}. */
export interface FuzzOptions {
  files: string[];
  seed: number;
  count: number;
  /** Every this many cases the variant is also written to disk and read with openGguf (0: never). */
  diskEvery: number;
  /** Directory for the disk cases. */
  tmpDir?: string;
}

function outcome(run: () => unknown): string {
  try {
    run();
    return "valid";
  } catch (e) {
    if (e instanceof SparqError) {
      if (e.message.includes("\n")) return `BUG: multi-line message: ${JSON.stringify(e.message.slice(0, 200))}`;
      return errorKind(e.message);
    }
    return `BUG: ${(e as Error)?.name}: ${String((e as Error)?.message).slice(0, 200)}`;
  }
}

/** Runs `count` mutated variants of `files` (round robin) through the reader. */
export async function fuzz(o: FuzzOptions): Promise<FuzzStats> {
  const rand = rng(o.seed);
  const mutators = o.files.map((f) => ({ file: f, m: new Mutator(Deno.readFileSync(f), rand) }));
  const s: FuzzStats = {
    cases: 0,
    outcomes: {},
    bugs: [],
    diskMismatches: [],
    diskCases: 0,
    maxMs: 0,
    maxMsCase: "",
    maxMemBytes: 0,
    maxMemCase: "",
    maxMemRatio: 0,
    overBudget: [],
    seconds: 0,
  };
  const t0 = performance.now();
  for (let i = 0; i < o.count; i++) {
    const { file, m } = mutators[i % mutators.length];
    const v = m.next();
    const name = `${file.split("/").pop()}: ${v.what}`;
    const mem0 = Deno.memoryUsage();
    const t = performance.now();
    // The result is held until memory is measured, so it counts as growth.
    let _held: unknown;
    const kind = outcome(() => (_held = parseGgufBytes(v.bytes, "fuzz.gguf")));
    const ms = performance.now() - t;
    const mem1 = Deno.memoryUsage();
    _held = undefined;
    const grew = mem1.heapUsed + mem1.external - mem0.heapUsed - mem0.external;
    if (ms > s.maxMs) [s.maxMs, s.maxMsCase] = [ms, name];
    if (grew > s.maxMemBytes) [s.maxMemBytes, s.maxMemCase] = [grew, `${name} → ${kind}`];
    if (v.bytes.length >= MEM_SLACK) s.maxMemRatio = Math.max(s.maxMemRatio, grew / v.bytes.length);
    if (grew > 2 * v.bytes.length + MEM_SLACK) s.overBudget.push(`${name}: ${grew} bytes (seed ${o.seed}, case ${i})`);
    s.outcomes[kind] = (s.outcomes[kind] ?? 0) + 1;
    if (kind.startsWith("BUG")) s.bugs.push(`${name} → ${kind} (seed ${o.seed}, case ${i})`);
    if (o.diskEvery > 0 && o.tmpDir && i % o.diskEvery === 0) {
      const path = `${o.tmpDir}/case${i}.gguf`;
      await Deno.writeFile(path, v.bytes);
      let diskKind: string;
      try {
        await openGguf(path);
        diskKind = "valid";
      } catch (e) {
        diskKind = e instanceof SparqError ? errorKind(e.message) : `BUG: ${(e as Error)?.message}`;
      }
      await Deno.remove(path);
      s.diskCases++;
      if (diskKind !== kind) s.diskMismatches.push(`${name}: memory ${kind}, disk ${diskKind}`);
    }
    v.undo();
    s.cases++;
  }
  s.seconds = (performance.now() - t0) / 1000;
  return s;
}

/** Every .gguf directly in `dir`. */
export function ggufsIn(dir: string): string[] {
  return [...Deno.readDirSync(dir)].filter((e) => e.isFile && e.name.endsWith(".gguf")).map((e) => `${dir}/${e.name}`)
    .sort();
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: { seed: { type: "string" }, count: { type: "string" }, "disk-every": { type: "string" } },
    allowPositionals: true,
  });
  const shared = new URL("../../shared/fixtures/models", import.meta.url).pathname;
  const vocabs = new URL("../../shared/fixtures/tokenizer", import.meta.url).pathname;
  const inputs = positionals.length ? positionals : [shared, `${shared}/quant`, vocabs];
  const files = inputs.flatMap((p) => Deno.statSync(p).isDirectory ? ggufsIn(p) : [p]);
  const tmpDir = await Deno.makeTempDir();
  try {
    const s = await fuzz({
      files,
      seed: Number(values.seed ?? 1),
      count: Number(values.count ?? 10000),
      diskEvery: Number(values["disk-every"] ?? 100),
      tmpDir,
    });
    console.log(`files: ${files.length}, seed ${values.seed ?? 1}`);
    console.log(`cases: ${s.cases} in ${s.seconds.toFixed(1)} s (${s.diskCases} also through openGguf on disk)`);
    console.log("outcomes:");
    for (const [k, n] of Object.entries(s.outcomes).sort((a, b) => b[1] - a[1])) {
      console.log(`  ${String(n).padStart(7)}  ${k}`);
    }
    console.log(`max time per case: ${s.maxMs.toFixed(2)} ms (${s.maxMsCase})`);
    console.log(`max memory growth per case: ${(s.maxMemBytes / 1024).toFixed(0)} KiB (${s.maxMemCase})`);
    console.log(`max memory growth / file size (variants ≥ 1 MiB): ${(s.maxMemRatio * 100).toFixed(1)}%`);
    console.log(`cases over 2 × file size + 1 MiB: ${s.overBudget.length}`);
    for (const d of s.overBudget.slice(0, 20)) console.log(`  ${d}`);
    console.log(`bugs: ${s.bugs.length}${s.bugs.length ? "\n  " + s.bugs.slice(0, 20).join("\n  ") : ""}`);
    console.log(`disk/memory mismatches: ${s.diskMismatches.length}`);
    for (const d of s.diskMismatches.slice(0, 20)) console.log(`  ${d}`);
    Deno.exitCode = s.bugs.length || s.diskMismatches.length || s.overBudget.length || s.maxMs > 5000 ? 1 : 0;
  } finally {
    await Deno.remove(tmpDir, { recursive: true });
  }
}
