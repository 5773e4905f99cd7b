/**
 * UTF-8 validation for text messages and close reasons.
 *
 * Theory of operation: RFC 6455 §5.6 says that the payload of a text message "is text data
 * encoded as UTF-8", and §8.1 that an endpoint which receives invalid UTF-8 "MUST _Fail the
 * WebSocket Connection_" (close code 1007, §7.4.1). Validity is the one of RFC 3629 §3/§4:
 * no overlong forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no truncated
 * sequences.
 *
 * Both validators run a small deterministic automaton over byte classes. Runs of ASCII, by far
 * the most common text, skip the automaton and are tested eight bytes at a time. The
 * {@link Utf8Validator} keeps the automaton state between calls, so a text message can be
 * checked piece by piece as its bytes arrive from the network and fail on the first bad byte
 * (conformance cases 6.4.x), without waiting for the end of the frame.
 */

// Byte classes. A class groups the bytes that every state treats alike.
const C_ASCII = 0; // 00..7F
const C_CONT_LOW = 1; // 80..8F
const C_CONT_MID = 2; // 90..9F
const C_CONT_HIGH = 3; // A0..BF
const C_INVALID = 4; // C0, C1 (always overlong), F5..FF (above U+10FFFF, or 5/6-byte forms)
const C_LEAD2 = 5; // C2..DF
const C_E0 = 6; // E0: the next byte must be A0..BF, else the form is overlong
const C_LEAD3 = 7; // E1..EC, EE..EF
const C_ED = 8; // ED: the next byte must be 80..9F, else it encodes a surrogate
const C_F0 = 9; // F0: the next byte must be 90..BF, else the form is overlong
const C_LEAD4 = 10; // F1..F3
const C_F4 = 11; // F4: the next byte must be 80..8F, else above U+10FFFF
const CLASS_COUNT = 12;

// States. ACCEPT is 0 so that "between characters" is a cheap test.
const S_ACCEPT = 0;
const S_REJECT = 1;
const S_NEED1 = 2; // one continuation byte 80..BF to go
const S_NEED2 = 3; // two to go
const S_NEED3 = 4; // three to go
const S_E0 = 5; // after E0: A0..BF then one more
const S_ED = 6; // after ED: 80..9F then one more
const S_F0 = 7; // after F0: 90..BF then two more
const S_F4 = 8; // after F4: 80..8F then two more
const STATE_COUNT = 9;

/** Pieces at least this long go to an injected whole-buffer validator, if there is one. */
const WHOLE_MIN = 1024;

/** The class of each byte value. */
const BYTE_CLASS = new Uint8Array(256);
/** The next state, indexed by `state * CLASS_COUNT + class`. */
const TRANSITION = new Uint8Array(STATE_COUNT * CLASS_COUNT);

(function buildTables(): void {
  for (let b = 0; b < 256; b++) {
    let c: number;
    if (b < 0x80) c = C_ASCII;
    else if (b < 0x90) c = C_CONT_LOW;
    else if (b < 0xa0) c = C_CONT_MID;
    else if (b < 0xc0) c = C_CONT_HIGH;
    else if (b < 0xc2) c = C_INVALID;
    else if (b < 0xe0) c = C_LEAD2;
    else if (b === 0xe0) c = C_E0;
    else if (b === 0xed) c = C_ED;
    else if (b < 0xf0) c = C_LEAD3;
    else if (b === 0xf0) c = C_F0;
    else if (b < 0xf4) c = C_LEAD4;
    else if (b === 0xf4) c = C_F4;
    else c = C_INVALID;
    BYTE_CLASS[b] = c;
  }
  TRANSITION.fill(S_REJECT);
  const set = (state: number, classes: number[], next: number): void => {
    for (const c of classes) TRANSITION[state * CLASS_COUNT + c] = next;
  };
  const anyCont = [C_CONT_LOW, C_CONT_MID, C_CONT_HIGH];
  set(S_ACCEPT, [C_ASCII], S_ACCEPT);
  set(S_ACCEPT, [C_LEAD2], S_NEED1);
  set(S_ACCEPT, [C_E0], S_E0);
  set(S_ACCEPT, [C_LEAD3], S_NEED2);
  set(S_ACCEPT, [C_ED], S_ED);
  set(S_ACCEPT, [C_F0], S_F0);
  set(S_ACCEPT, [C_LEAD4], S_NEED3);
  set(S_ACCEPT, [C_F4], S_F4);
  set(S_NEED1, anyCont, S_ACCEPT);
  set(S_NEED2, anyCont, S_NEED1);
  set(S_NEED3, anyCont, S_NEED2);
  // RFC 3629 §4: UTF8-3 = %xE0 %xA0-BF UTF8-tail / ... / %xED %x80-9F UTF8-tail / ...
  set(S_E0, [C_CONT_HIGH], S_NEED1);
  set(S_ED, [C_CONT_LOW, C_CONT_MID], S_NEED1);
  // RFC 3629 §4: UTF8-4 = %xF0 %x90-BF 2( UTF8-tail ) / ... / %xF4 %x80-8F 2( UTF8-tail )
  set(S_F0, [C_CONT_MID, C_CONT_HIGH], S_NEED2);
  set(S_F4, [C_CONT_LOW], S_NEED2);
})();

/**
 * Runs the automaton over `bytes[start..end)` from `state`, and returns the state it ends in
 * (`S_REJECT` as soon as a byte is invalid, without reading further).
 *
 * Between characters two shortcuts skip the table: runs of ASCII, tested eight bytes at a time
 * with one OR of the bytes (on Node 20 this beats a Uint32Array view below about 1 KiB, since
 * the view costs an allocation and alignment work, and short texts are the common case), and
 * whole 2- and 3-byte sequences whose bytes are all in this piece, checked with the same ranges
 * as the table. Anything else, including every invalid or cut-off sequence, goes through the
 * table one byte at a time, so the shortcuts cannot accept what the automaton would reject.
 */
function run(bytes: Uint8Array, start: number, end: number, state: number): number {
  let i = start;
  while (i < end) {
    const b = bytes[i];
    if (state === S_ACCEPT) {
      if (b < 0x80) {
        i++;
        while (
          i + 8 <= end &&
          ((bytes[i] |
            bytes[i + 1] |
            bytes[i + 2] |
            bytes[i + 3] |
            bytes[i + 4] |
            bytes[i + 5] |
            bytes[i + 6] |
            bytes[i + 7]) &
            0x80) ===
            0
        ) {
          i += 8;
        }
        while (i < end && bytes[i] < 0x80) i++;
        continue;
      }
      if (b >= 0xc2 && b <= 0xdf) {
        // U+0080..U+07FF: C2..DF, then 80..BF.
        if (i + 1 < end && (bytes[i + 1] & 0xc0) === 0x80) {
          i += 2;
          continue;
        }
      } else if (b >= 0xe1 && b <= 0xec && i + 2 < end) {
        // U+1000..U+CFFF: E1..EC, then two of 80..BF (no overlong or surrogate is possible).
        if ((bytes[i + 1] & 0xc0) === 0x80 && (bytes[i + 2] & 0xc0) === 0x80) {
          i += 3;
          continue;
        }
      }
    }
    state = TRANSITION[state * CLASS_COUNT + BYTE_CLASS[b]];
    if (state === S_REJECT) return S_REJECT;
    i++;
  }
  return state;
}

/**
 * Texts shorter than this many bytes are checked with {@link isValidUtf8} even where a native
 * whole-buffer validator is at hand: on Node 20, for 32 bytes, 17-46 ns in JS against 29-82 ns
 * for a call to `buffer.isUtf8`.
 */
export const SHORT_TEXT = 64;

/**
 * Tells whether `bytes[start..end)` is complete, valid UTF-8 (RFC 3629): no overlong forms, no
 * surrogates, nothing above U+10FFFF, and no sequence cut off at `end`.
 *
 * @param bytes - the bytes to check.
 * @param start - the first index to check; default 0.
 * @param end - one past the last index to check; default `bytes.length`.
 * @example
 * ```ts
 * isValidUtf8(new TextEncoder().encode('héllo')); // true
 * isValidUtf8(Uint8Array.of(0xc0, 0x80)); // false: an overlong NUL
 * ```
 */
export function isValidUtf8(bytes: Uint8Array, start = 0, end: number = bytes.length): boolean {
  return run(bytes, start, end, S_ACCEPT) === S_ACCEPT;
}

/**
 * An incremental UTF-8 validator: feed it the pieces of a text as they arrive, and it says no
 * as soon as a piece holds an invalid byte, even when that byte sits in the middle of a
 * sequence that started in an earlier piece. RFC 6455 §8.1 lets (and the conformance suite
 * expects) an endpoint to fail the connection at that point rather than at the end of the
 * message.
 *
 * @example
 * ```ts
 * const v = new Utf8Validator();
 * v.write(Uint8Array.of(0xe2, 0x82)); // true: a valid start of '€'
 * v.write(Uint8Array.of(0xac)); // true
 * v.end(); // true: the text ended between characters
 * ```
 */
export class Utf8Validator {
  private state = S_ACCEPT;
  private readonly whole: ((bytes: Uint8Array) => boolean) | null;

  /**
   * @param isUtf8 - an optional fast whole-buffer validator (the Node layer passes
   *   `buffer.isUtf8`). When given, a piece of at least 1 KiB that starts between characters is
   *   checked with it up to its last character boundary, and only the last few bytes run through
   *   the automaton: native speed for long texts that arrive in pieces.
   */
  constructor(isUtf8?: (bytes: Uint8Array) => boolean) {
    this.whole = isUtf8 ?? null;
  }

  /**
   * Checks the next piece, `bytes[start..end)`. Returns false when the text seen so far can
   * no longer be valid UTF-8; once false, it stays false until {@link Utf8Validator.reset}.
   */
  write(bytes: Uint8Array, start = 0, end: number = bytes.length): boolean {
    if (this.state === S_REJECT) return false;
    if (this.whole !== null && this.state === S_ACCEPT && end - start >= WHOLE_MIN) {
      // Cut before the last lead byte among the last four: the sequence it starts may go on in
      // the next piece, which the whole-buffer validator could not know. A sequence that ends
      // in this piece has its lead byte within its last four bytes.
      let cut = end;
      for (let j = end - 1; j >= end - 4; j--) {
        if (bytes[j] >= 0xc0) {
          cut = j;
          break;
        }
      }
      if (!this.whole(bytes.subarray(start, cut))) {
        this.state = S_REJECT;
        return false;
      }
      start = cut;
    }
    this.state = run(bytes, start, end, this.state);
    return this.state !== S_REJECT;
  }

  /**
   * Like {@link Utf8Validator.write}, but a piece that would make the text invalid is not taken:
   * the validator stays as it was before it, so that a caller who refuses the piece can go on
   * with another. With `last`, the piece must also end the text between characters.
   */
  tryWrite(bytes: Uint8Array, start = 0, end: number = bytes.length, last = false): boolean {
    const before = this.state;
    if (this.write(bytes, start, end) && (!last || this.state === S_ACCEPT)) return true;
    this.state = before;
    return false;
  }

  /**
   * Says whether the text is complete: false if it was invalid or stopped inside a sequence.
   * Does not reset the validator.
   */
  end(): boolean {
    return this.state === S_ACCEPT;
  }

  /** Forgets everything written so far, ready for a new text. */
  reset(): void {
    this.state = S_ACCEPT;
  }
}
