/**
 * ggml tensor types: numbers as in ggml.h, block sizes and bytes per block.
 * @module
 */
import { SparqError } from "./errors.ts";

/** ggml's tensor element types (values as stored in GGUF tensor infos). */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
}

/** Layout of one ggml type. */
export interface GgmlTypeInfo {
  /** Name as llama.cpp prints it (`Q4_0`, `F16`, …). */
  name: string;
  /** Elements per block (1 for plain types). */
  blockSize: number;
  /** Bytes per block. */
  blockBytes: number;
  /** Whether sparq has kernels for this type. */
  supported: boolean;
}

const QK_K = 256;
const TABLE: Record<number, GgmlTypeInfo> = {
  [GgmlType.F32]: { name: "F32", blockSize: 1, blockBytes: 4, supported: true },
  [GgmlType.F16]: { name: "F16", blockSize: 1, blockBytes: 2, supported: true },
  [GgmlType.BF16]: { name: "BF16", blockSize: 1, blockBytes: 2, supported: true },
  [GgmlType.Q4_0]: { name: "Q4_0", blockSize: 32, blockBytes: 18, supported: true },
  [GgmlType.Q4_1]: { name: "Q4_1", blockSize: 32, blockBytes: 20, supported: true },
  [GgmlType.Q5_0]: { name: "Q5_0", blockSize: 32, blockBytes: 22, supported: true },
  [GgmlType.Q5_1]: { name: "Q5_1", blockSize: 32, blockBytes: 24, supported: true },
  [GgmlType.Q8_0]: { name: "Q8_0", blockSize: 32, blockBytes: 34, supported: true },
  [GgmlType.Q8_1]: { name: "Q8_1", blockSize: 32, blockBytes: 36, supported: false },
  [GgmlType.Q2_K]: { name: "Q2_K", blockSize: QK_K, blockBytes: 84, supported: false },
  [GgmlType.Q3_K]: { name: "Q3_K", blockSize: QK_K, blockBytes: 110, supported: false },
  [GgmlType.Q4_K]: { name: "Q4_K", blockSize: QK_K, blockBytes: 144, supported: true },
  [GgmlType.Q5_K]: { name: "Q5_K", blockSize: QK_K, blockBytes: 176, supported: true },
  [GgmlType.Q6_K]: { name: "Q6_K", blockSize: QK_K, blockBytes: 210, supported: true },
  [GgmlType.Q8_K]: { name: "Q8_K", blockSize: QK_K, blockBytes: 292, supported: false },
  [GgmlType.IQ2_XXS]: { name: "IQ2_XXS", blockSize: QK_K, blockBytes: 66, supported: false },
  [GgmlType.IQ2_XS]: { name: "IQ2_XS", blockSize: QK_K, blockBytes: 74, supported: false },
  [GgmlType.IQ3_XXS]: { name: "IQ3_XXS", blockSize: QK_K, blockBytes: 98, supported: false },
  [GgmlType.IQ1_S]: { name: "IQ1_S", blockSize: QK_K, blockBytes: 50, supported: false },
  [GgmlType.IQ4_NL]: { name: "IQ4_NL", blockSize: 32, blockBytes: 18, supported: false },
  [GgmlType.IQ3_S]: { name: "IQ3_S", blockSize: QK_K, blockBytes: 110, supported: false },
  [GgmlType.IQ2_S]: { name: "IQ2_S", blockSize: QK_K, blockBytes: 82, supported: false },
  [GgmlType.IQ4_XS]: { name: "IQ4_XS", blockSize: QK_K, blockBytes: 136, supported: false },
  [GgmlType.I8]: { name: "I8", blockSize: 1, blockBytes: 1, supported: false },
  [GgmlType.I16]: { name: "I16", blockSize: 1, blockBytes: 2, supported: false },
  [GgmlType.I32]: { name: "I32", blockSize: 1, blockBytes: 4, supported: false },
  [GgmlType.I64]: { name: "I64", blockSize: 1, blockBytes: 8, supported: false },
  [GgmlType.F64]: { name: "F64", blockSize: 1, blockBytes: 8, supported: false },
  [GgmlType.IQ1_M]: { name: "IQ1_M", blockSize: QK_K, blockBytes: 56, supported: false },
  [GgmlType.TQ1_0]: { name: "TQ1_0", blockSize: QK_K, blockBytes: 54, supported: false },
  [GgmlType.TQ2_0]: { name: "TQ2_0", blockSize: QK_K, blockBytes: 66, supported: false },
};

/** Layout of `type`, or undefined when ggml has no such type number. */
export function ggmlTypeInfo(type: number): GgmlTypeInfo | undefined {
  return TABLE[type];
}

/** Name of a type number, `type#N` when unknown. */
export function ggmlTypeName(type: number): string {
  return TABLE[type]?.name ?? `type#${type}`;
}

/** Type number for a name such as `q4_0` or `F16` (case-insensitive), undefined if unknown. */
export function ggmlTypeFromName(name: string): GgmlType | undefined {
  const up = name.toUpperCase();
  for (const [k, v] of Object.entries(TABLE)) if (v.name === up) return Number(k);
  return undefined;
}

/**
 * Bytes of a tensor of `type` with ggml shape `shape` (ne order: shape[0] is the row length).
 * Throws SparqError when the row length is not a multiple of the block size.
 */
export function tensorByteSize(type: number, shape: readonly number[], what = "tensor"): number {
  const info = TABLE[type];
  if (!info) throw new SparqError(`${what}: unknown ggml type ${type}`);
  const row = shape.length ? shape[0] : 1;
  if (row % info.blockSize !== 0) {
    throw new SparqError(
      `${what}: row length ${row} is not a multiple of the ${info.name} block size ${info.blockSize}`,
    );
  }
  let n = 1;
  for (const d of shape) n *= d;
  return (n / info.blockSize) * info.blockBytes;
}

/** Throws a SparqError unless sparq can compute with `type`. */
export function requireSupportedType(type: number, what: string): void {
  const info = TABLE[type];
  if (!info) throw new SparqError(`${what}: unknown ggml type ${type}`);
  if (!info.supported) {
    const ok = Object.values(TABLE).filter((t) => t.supported).map((t) => t.name).join(", ");
    throw new SparqError(`${what}: tensor type ${info.name} is not supported (supported: ${ok})`);
  }
}
