// Incremental detokenization for streaming: token bytes in, complete text out.
// Partial UTF-8 sequences stay inside the streaming TextDecoder, and text that could still become
// a stop string is held back until it is known not to be one, so a consumer never sees a stop
// string or half a character.

export interface TextPush {
  /** text that is now safe to hand to the consumer (may be empty) */
  piece: string;
  /** a stop string appeared: the text has been cut just before it */
  stopped: boolean;
}

const QUIET: TextPush = Object.freeze({ piece: "", stopped: false });

export class TextAssembler {
  private readonly decoder = new TextDecoder("utf-8");
  private readonly longestStop: number;
  private text = "";
  private released = 0;
  /** Bytes not decoded yet: with nobody reading pieces and no stop strings, decoding waits for the text to be read. */
  private readonly pending: Uint8Array[] | null;

  /**
   * `streaming`: pieces are read as they come (false: only `value` and finish() are, so push() just keeps the bytes)
   */
  constructor(
    private readonly stops: readonly string[],
    streaming = true,
  ) {
    this.longestStop = stops.reduce((n, s) => Math.max(n, s.length), 0);
    this.pending = streaming || stops.length > 0 ? null : [];
  }

  /** The text so far, cut at a stop string if one was found. */
  get value(): string {
    this.decodePending();
    return this.text;
  }

  push(bytes: Uint8Array): TextPush {
    if (this.pending) {
      this.pending.push(bytes);
      return QUIET;
    }
    const before = this.text.length;
    this.text += this.decoder.decode(bytes, { stream: true });
    const stopAt = this.findStop(before);
    if (stopAt >= 0) {
      this.text = this.text.slice(0, stopAt);
      return { piece: this.release(this.text.length), stopped: true };
    }
    return { piece: this.release(this.text.length - this.heldBackLength()), stopped: false };
  }

  /** End of generation: flush the decoder and release everything held back. */
  finish(): string {
    this.decodePending();
    this.text += this.decoder.decode();
    return this.release(this.text.length);
  }

  private decodePending(): void {
    const chunks = this.pending;
    if (!chunks || chunks.length === 0) return;
    let n = 0;
    for (const c of chunks) n += c.length;
    const all = new Uint8Array(n);
    n = 0;
    for (const c of chunks) {
      all.set(c, n);
      n += c.length;
    }
    chunks.length = 0;
    this.text += this.decoder.decode(all, { stream: true });
  }

  private release(end: number): string {
    if (end <= this.released) return "";
    const piece = this.text.slice(this.released, end);
    this.released = end;
    return piece;
  }

  /** Earliest stop string ending in the newly added text (starting at or after `before - len + 1`). */
  private findStop(before: number): number {
    let best = -1;
    for (const stop of this.stops) {
      const at = this.text.indexOf(stop, Math.max(0, before - stop.length + 1));
      if (at >= 0 && (best < 0 || at < best)) best = at;
    }
    return best;
  }

  /** Length of the longest suffix of the text that is a proper prefix of some stop string. */
  private heldBackLength(): number {
    const maxLen = Math.min(this.longestStop - 1, this.text.length - this.released);
    for (let len = maxLen; len > 0; len--) {
      const suffix = this.text.slice(this.text.length - len);
      if (this.stops.some((stop) => stop.length > len && stop.startsWith(suffix))) return len;
    }
    return 0;
  }
}
