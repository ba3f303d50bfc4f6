/**
 * Streaming detokenization: token pieces are bytes, and a token may end in the middle of a UTF-8
 * sequence (byte-fallback tokens `<0xE2>` `<0x96>` `<0x81>`, or BPE tokens holding part of a
 * character). The decoder keeps the incomplete tail and emits only whole characters; bytes that
 * can never complete a character become U+FFFD at once.
 * @module
 */

/** Turns a sequence of token pieces into text, chunk by chunk. */
export interface StreamDecoder {
  /** Adds one token; returns the text completed by it (possibly ""). */
  push(id: number): string;
  /** Ends the stream; returns what was held back (an incomplete sequence becomes U+FFFD). */
  flush(): string;
}

/** A stream decoder over `pieceBytes(id)` (the bytes each token contributes). */
export function createStreamDecoder(pieceBytes: (id: number) => Uint8Array): StreamDecoder {
  let decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
  return {
    push(id: number): string {
      return decoder.decode(pieceBytes(id), { stream: true });
    },
    flush(): string {
      const rest = decoder.decode();
      decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
      return rest;
    },
  };
}
