/**
 * Counts the work a parser does, so that "runs in linear time" is asserted as a bound on
 * characters and bytes examined instead of on wall-clock time (which a loaded CI machine
 * stretches at will).
 *
 * The core's parsers read their input through `String.prototype.charCodeAt` and search it with
 * `indexOf` on strings and byte arrays; for the duration of `fn`, those methods are wrapped
 * with counters. A backtracking parser (the ReDoS class, ws CVE-2021-32640) or one that rescans
 * its buffer on every chunk shows up as a count that grows with the square of the input.
 */

/** What {@link countWork} saw: characters read one by one, and units scanned by searches. */
export interface Work {
  /** Calls of `String.prototype.charCodeAt`. */
  charReads: number;
  /** Characters or bytes passed over by `indexOf` (from the start offset to the hit, or to the end). */
  scanned: number;
  /** The two together. */
  total: number;
}

type IndexOf = (this: { length: number }, search: unknown, from?: number) => number;

/** Runs `fn` with the string and byte-array read paths counted, and returns the counts. */
export function countWork(fn: () => void): Work {
  const work = { charReads: 0, scanned: 0 };
  const charCodeAt = String.prototype.charCodeAt;
  const patched: Array<[{ indexOf: IndexOf }, IndexOf]> = [
    [String.prototype as unknown as { indexOf: IndexOf }, String.prototype.indexOf as IndexOf],
    [
      Uint8Array.prototype as unknown as { indexOf: IndexOf },
      Uint8Array.prototype.indexOf as IndexOf,
    ],
    [Buffer.prototype as unknown as { indexOf: IndexOf }, Buffer.prototype.indexOf as IndexOf],
  ];
  String.prototype.charCodeAt = function (this: string, index: number) {
    work.charReads++;
    return charCodeAt.call(this, index);
  };
  for (const [proto, original] of patched) {
    proto.indexOf = function (this: { length: number }, search: unknown, from?: number) {
      const at = original.call(this, search, from);
      const start = Math.max(0, Math.min(this.length, from ?? 0));
      work.scanned += (at < 0 ? this.length : at + 1) - start;
      return at;
    };
  }
  try {
    fn();
  } finally {
    String.prototype.charCodeAt = charCodeAt;
    for (const [proto, original] of patched) proto.indexOf = original;
  }
  return { ...work, total: work.charReads + work.scanned };
}
