/**
 * The resume exchange, version 1 (`switchyard.resume.v1`): how a reconnecting client tells a
 * server where it stopped on each topic, and how the server marks topic messages with their
 * positions and reports what it can no longer replay. Pure encoding, no I/O. The exchange is
 * specified for other implementers in docs/resume.md.
 *
 * Theory of operation. The client offers the subprotocol `switchyard.resume.v1` and, when it
 * has seen topic messages before, puts its last position per topic in the `sy-resume` query
 * parameter of the upgrade URL (browsers cannot set request headers, and a query parameter
 * costs no extra round trip). Once the subprotocol is agreed, every data message the server
 * sends starts with one header line, ended by "\n", in the frame's own type (text stays text):
 *
 *   `m <topic> <position>\n<payload>`  a message published on <topic> at <position>
 *   `d\n<payload>`                     a message sent to this connection only (`ws.send`)
 *   `g <topic> <from> <to>\n`          positions <from>..<to> (inclusive) of <topic> were lost:
 *                                      no longer in the replay window; `<to>` is `*` when the
 *                                      extent is unknown (the server's sequence was reset)
 *
 * Topics are percent-encoded (`encodeURIComponent`) so that they hold no space or newline;
 * positions are decimal integers, starting at 1 for a topic's first message. Messages from the
 * client carry no header.
 */

/** The subprotocol that turns the resume exchange on. */
export const RESUME_PROTOCOL = 'switchyard.resume.v1';

/** The query parameter that carries the client's positions in the upgrade URL. */
export const RESUME_QUERY_PARAM = 'sy-resume';

/** A decoded server message under {@link RESUME_PROTOCOL}. */
export type ResumeFrame =
  | { kind: 'message'; topic: string; position: number; payload: Uint8Array }
  | { kind: 'direct'; payload: Uint8Array }
  | { kind: 'gap'; topic: string; from: number; to: number | null };

const NEWLINE = 0x0a;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** The header of a topic message at `position`. */
export function encodeMessageHeader(topic: string, position: number): Uint8Array {
  return encoder.encode(`m ${encodeURIComponent(topic)} ${position}\n`);
}

/** The header of a message sent to one connection. */
export const DIRECT_HEADER: Uint8Array = encoder.encode('d\n');

/** A gap notice: `from`..`to` (inclusive) lost; `to` null when the extent is unknown. */
export function encodeGap(topic: string, from: number, to: number | null): Uint8Array {
  return encoder.encode(`g ${encodeURIComponent(topic)} ${from} ${to === null ? '*' : to}\n`);
}

/**
 * Decodes a server message. Returns null when it does not follow the exchange (a server that
 * agreed to the subprotocol and then broke it).
 */
export function decodeResumeFrame(bytes: Uint8Array): ResumeFrame | null {
  const end = bytes.indexOf(NEWLINE);
  if (end < 0 || end > 4096) return null;
  let line: string;
  try {
    line = decoder.decode(bytes.subarray(0, end));
  } catch {
    return null;
  }
  const payload = bytes.subarray(end + 1);
  const parts = line.split(' ');
  try {
    if (parts[0] === 'd' && parts.length === 1) return { kind: 'direct', payload };
    if (parts[0] === 'm' && parts.length === 3) {
      const position = parsePosition(parts[2]);
      if (position === null) return null;
      return { kind: 'message', topic: decodeURIComponent(parts[1]), position, payload };
    }
    if (parts[0] === 'g' && parts.length === 4 && payload.length === 0) {
      const from = parsePosition(parts[2]);
      const to = parts[3] === '*' ? null : parsePosition(parts[3]);
      if (from === null || (to === null && parts[3] !== '*')) return null;
      return { kind: 'gap', topic: decodeURIComponent(parts[1]), from, to };
    }
  } catch {
    // A malformed percent-encoding.
  }
  return null;
}

function parsePosition(text: string | undefined): number | null {
  if (text === undefined || !/^\d{1,15}$/.test(text)) return null;
  return Number(text);
}

/**
 * The value of the `sy-resume` query parameter: `topic@position` pairs, comma separated, each
 * topic percent-encoded. The whole value is then query-encoded by `URLSearchParams`.
 */
export function formatResumePositions(positions: ReadonlyMap<string, number>): string {
  const parts: string[] = [];
  for (const [topic, position] of positions) parts.push(`${encodeURIComponent(topic)}@${position}`);
  return parts.join(',');
}

/** Reads a `sy-resume` value; malformed pairs are skipped (the client then gets live data). */
export function parseResumePositions(
  value: string | null | undefined,
  maxTopics = 256,
): Map<string, number> {
  const positions = new Map<string, number>();
  if (!value) return positions;
  for (const pair of value.split(',')) {
    if (positions.size >= maxTopics) break;
    const at = pair.lastIndexOf('@');
    if (at <= 0) continue;
    const position = parsePosition(pair.slice(at + 1));
    if (position === null) continue;
    try {
      positions.set(decodeURIComponent(pair.slice(0, at)), position);
    } catch {
      // A malformed percent-encoding: skip the pair.
    }
  }
  return positions;
}
