/**
 * The word cache of the tokenizers: token ids of a stretch of text, looked up by a hash the caller
 * computes while scanning, so a hit costs no substring and no string hashing (for a long text
 * made of repeated words that lookup is most of the work). Open addressing with linear probing;
 * a hit is confirmed by comparing the stored text with the input in place.
 * @module
 */

const MAX_ENTRIES = 1 << 19;

/** Hash of text[from, to) as `hashStep` computes it (for callers that scan anyway). */
export function hashText(text: string, from: number, to: number): number {
  let h = 0;
  for (let i = from; i < to; i++) h = hashStep(h, text.charCodeAt(i));
  return h;
}

/** One step of the rolling hash over UTF-16 units. */
export function hashStep(h: number, unit: number): number {
  return (Math.imul(h, 0x01000193) ^ unit) | 0;
}

/** Map from text stretches to their token ids. */
export class WordCache {
  private mask = (1 << 14) - 1;
  private keys: (string | undefined)[] = new Array(this.mask + 1);
  private hashes = new Int32Array(this.mask + 1);
  private values: number[][] = new Array(this.mask + 1);
  private count = 0;

  /** Ids cached for text[from, to) with hash `h`, or undefined. */
  get(text: string, from: number, to: number, h: number): number[] | undefined {
    const len = to - from;
    for (let i = h & this.mask;; i = (i + 1) & this.mask) {
      const k = this.keys[i];
      if (k === undefined) return undefined;
      if (this.hashes[i] === h && k.length === len && text.startsWith(k, from)) return this.values[i];
    }
  }

  /** Caches `ids` for `key` (whose hash is `h`). */
  set(key: string, h: number, ids: number[]): void {
    if (this.count >= MAX_ENTRIES) this.reset(this.mask + 1);
    else if (2 * (this.count + 1) > this.mask + 1) this.grow();
    this.insert(key, h, ids);
  }

  private insert(key: string, h: number, ids: number[]): void {
    let i = h & this.mask;
    while (this.keys[i] !== undefined) i = (i + 1) & this.mask;
    this.keys[i] = key;
    this.hashes[i] = h;
    this.values[i] = ids;
    this.count++;
  }

  private reset(size: number): void {
    this.mask = size - 1;
    this.keys = new Array(size);
    this.hashes = new Int32Array(size);
    this.values = new Array(size);
    this.count = 0;
  }

  private grow(): void {
    const { keys, hashes, values } = this;
    this.reset((this.mask + 1) * 2);
    for (let i = 0; i < keys.length; i++) if (keys[i] !== undefined) this.insert(keys[i]!, hashes[i], values[i]);
  }
}
