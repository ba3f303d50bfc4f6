/**
 * Test helper: the hyperparameter tables of `../shared/fixtures/README.md` (six random models)
 * and `../shared/models/README.md` (three real models), as the READMEs state them.
 * @module
 */
import { sharedPath } from "./testing.ts";

/** Hyperparameters of one model, as its README states them. */
export interface FixtureRow {
  /** Path relative to `../shared`. */
  file: string;
  arch: string;
  nVocab: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  headDim: number;
  nFf: number;
  ropeDims: number;
  ropeBase: number;
  ctxTrain: number;
  tied: boolean;
}

/** Rows of the fixture README's "Models" table, or undefined (printed reason) without ../shared. */
export function fixtureModels(): FixtureRow[] | undefined {
  const readme = sharedPath("fixtures/README.md");
  if (!readme) return undefined;
  const rows: FixtureRow[] = [];
  for (const line of Deno.readTextFileSync(readme).split("\n")) {
    const m = line.match(/^\| `(models\/[^`]+\.gguf)` \|(.*)\|$/);
    if (!m) continue;
    const c = m[2].split("|").map((s) => s.trim());
    rows.push({
      file: `fixtures/${m[1]}`,
      arch: c[0],
      nVocab: 512, // spm512 / bpe512
      nEmbd: parseInt(c[2]),
      nLayer: parseInt(c[3]),
      nHead: parseInt(c[4]),
      nHeadKv: parseInt(c[5]),
      headDim: parseInt(c[6]),
      nFf: parseInt(c[7]),
      ropeDims: parseInt(c[8]),
      ropeBase: parseInt(c[9]),
      ctxTrain: parseInt(c[10]),
      tied: c[11].startsWith("yes"),
    });
  }
  if (rows.length !== 6) throw new Error(`${readme}: expected 6 model rows, found ${rows.length}`);
  return rows;
}

/** The real models of `../shared/models/README.md` (figures copied from its text). */
export const REAL_MODELS: FixtureRow[] = [
  {
    file: "models/stories260K/stories260K.gguf",
    arch: "llama",
    nVocab: 512,
    nEmbd: 64,
    nLayer: 5,
    nHead: 8,
    nHeadKv: 4,
    headDim: 8,
    nFf: 172,
    ropeDims: 8,
    ropeBase: 10000,
    ctxTrain: 512,
    tied: false, // output.weight is written explicitly (a copy of token_embd)
  },
  {
    file: "models/pydoc11M/pydoc11M-f16.gguf",
    arch: "llama",
    nVocab: 4096,
    nEmbd: 512,
    nLayer: 4,
    nHead: 8,
    nHeadKv: 2,
    headDim: 64,
    nFf: 1024,
    ropeDims: 64,
    ropeBase: 10000,
    ctxTrain: 1024,
    tied: false,
  },
  {
    file: "models/pydoc21M/pydoc21M-f16.gguf",
    arch: "llama",
    nVocab: 4096,
    nEmbd: 512,
    nLayer: 6,
    nHead: 4,
    nHeadKv: 2,
    headDim: 128,
    nFf: 1536,
    ropeDims: 128,
    ropeBase: 10000,
    ctxTrain: 2048,
    tied: false,
  },
];

/** Every GGUF under `../shared/fixtures` and `../shared/models/*` (absolute paths). */
export function allSharedGgufs(): string[] {
  const out: string[] = [];
  for (const dir of ["fixtures/models", "fixtures/models/quant", "fixtures/tokenizer"]) {
    const p = sharedPath(dir);
    if (!p) continue;
    for (const e of Deno.readDirSync(p)) if (e.isFile && e.name.endsWith(".gguf")) out.push(`${p}/${e.name}`);
  }
  const models = sharedPath("models");
  if (models) {
    for (const d of Deno.readDirSync(models)) {
      if (!d.isDirectory) continue;
      for (const e of Deno.readDirSync(`${models}/${d.name}`)) {
        if (e.isFile && e.name.endsWith(".gguf")) out.push(`${models}/${d.name}/${e.name}`);
      }
    }
  }
  return out.sort();
}
