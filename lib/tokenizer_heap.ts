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
