/**
 * The merge queue shared by the SentencePiece and BPE tokenizers: a binary min-heap of candidate
 * merges ordered by (priority, left symbol index), kept in typed arrays so that tokenizing a long
 * text allocates no objects per candidate.
 * @module
 */

/** Min-heap of (priority, left, right, size, result) tuples; ties go to the smaller `left`. */
export class MergeHeap {
  /** Number of entries. */
  length = 0;
  private prio = new Float64Array(64);
  private left = new Int32Array(64);
  private right = new Int32Array(64);
  private size = new Int32Array(64);
  private result = new Int32Array(64);

  /** Fields of the entry removed by the last `pop()`. */
  topLeft = 0;
  topRight = 0;
  topSize = 0;
  topResult = 0;

  /** Empties the heap (keeps its storage). */
  clear(): void {
    this.length = 0;
  }

  /** Adds a candidate merge of symbols `left` and `right` (`size` = merged length). */
  push(prio: number, left: number, right: number, size: number, result: number): void {
    if (this.length === this.prio.length) this.grow();
    let i = this.length++;
    // sift up
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.prio[p] < prio || (this.prio[p] === prio && this.left[p] < left)) break;
      this.move(p, i);
      i = p;
    }
    this.prio[i] = prio;
    this.left[i] = left;
    this.right[i] = right;
    this.size[i] = size;
    this.result[i] = result;
  }

  /** Removes the best entry into `top*`; the heap must not be empty. */
  pop(): void {
    this.topLeft = this.left[0];
    this.topRight = this.right[0];
    this.topSize = this.size[0];
    this.topResult = this.result[0];
    const n = --this.length;
    if (n === 0) return;
    const prio = this.prio[n], left = this.left[n];
    let i = 0;
    // sift the last entry down from the root
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (
        c + 1 < n &&
        (this.prio[c + 1] < this.prio[c] || (this.prio[c + 1] === this.prio[c] && this.left[c + 1] < this.left[c]))
      ) c++;
      if (prio < this.prio[c] || (prio === this.prio[c] && left < this.left[c])) break;
      this.move(c, i);
      i = c;
    }
    this.move(n, i);
  }

  private move(from: number, to: number): void {
    this.prio[to] = this.prio[from];
    this.left[to] = this.left[from];
    this.right[to] = this.right[from];
    this.size[to] = this.size[from];
    this.result[to] = this.result[from];
  }

  private grow(): void {
    const cap = this.prio.length * 2;
    const g = <T extends Float64Array | Int32Array>(a: T): T => {
      const b = new (a.constructor as { new (n: number): T })(cap);
      b.set(a);
      return b;
    };
    this.prio = g(this.prio);
    this.left = g(this.left);
    this.right = g(this.right);
    this.size = g(this.size);
    this.result = g(this.result);
  }
}

/**
 * Symbol arrays of one word/segment as a doubly linked list: `len[i]` (0 once merged away),
 * `prev`/`next` (−1 at the ends) and the token `id` of each symbol.
 */
export interface MergeSymbols {
  len: Int32Array;
  prev: Int32Array;
  next: Int32Array;
  id: Int32Array;
}

/**
 * The merge loop shared by SPM and BPE (llama.cpp's): queue every adjacent pair through `tryAdd`,
 * then repeatedly merge the best pair into its left symbol and queue its new neighbours.
 * Candidates whose sides changed since they were queued are skipped.
 */
export function mergeSymbols(
  heap: MergeHeap,
  s: MergeSymbols,
  n: number,
  tryAdd: (l: number, r: number) => void,
): void {
  const { len, prev, next, id } = s;
  heap.clear();
  for (let i = 1; i < n; i++) tryAdd(i - 1, i);
  while (heap.length > 0) {
    heap.pop();
    const l = heap.topLeft, r = heap.topRight;
    // Stale candidate: one side was merged away or grew since it was queued.
    if (len[l] === 0 || len[r] === 0 || len[l] + len[r] !== heap.topSize) continue;
    len[l] += len[r];
    len[r] = 0;
    id[l] = heap.topResult;
    next[l] = next[r];
    if (next[r] >= 0) prev[next[r]] = l;
    tryAdd(prev[l], l);
    tryAdd(l, next[l]);
  }
}
