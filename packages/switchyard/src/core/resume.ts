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

/**
 * A decoded server message under {@link RESUME_PROTOCOL}. The payload is bytes for a message
 * read as bytes ({@link decodeResumeFrame}), a string for one read as text
 * ({@link decodeResumeText}, what a browser's `WebSocket` hands over for a text frame).
 */
export type ResumeFrame<P = Uint8Array> =
  | { kind: 'message'; topic: string; position: number; payload: P }
  | { kind: 'direct'; payload: P }
  | { kind: 'gap'; topic: string; from: number; to: number | null };

/** Where a message came from, under the resume exchange. */
export interface MessageMeta {
  /** The topic it was published on. */
  topic: string;
  /** Its position in the topic (1, 2, 3 ...), the same on every server instance. */
  position: number;
}

/** A range of topic positions that the server could not replay. */
export interface GapInfo {
  topic: string;
  /** First lost position. */
  from: number;
  /** Last lost position, or null when unknown (the server's sequence restarted). */
  to: number | null;
}

const NEWLINE = 0x0a;
/** The longest header line read, in bytes (or characters, for text): topics are short. */
const MAX_HEADER = 4096;
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
  if (end < 0 || end > MAX_HEADER) return null;
  let line: string;
  try {
    line = decoder.decode(bytes.subarray(0, end));
  } catch {
    return null;
  }
  return decodeHeader(line, bytes.subarray(end + 1), end + 1 === bytes.length);
}

/**
 * Decodes a server text message that is already a string (a browser's `MessageEvent.data`),
 * without encoding it back to bytes. Returns null as {@link decodeResumeFrame} does.
 */
export function decodeResumeText(text: string): ResumeFrame<string> | null {
  const end = text.indexOf('\n');
  if (end < 0 || end > MAX_HEADER) return null;
  return decodeHeader(text.slice(0, end), text.slice(end + 1), end + 1 === text.length);
}

/** Reads a header line; `empty` says whether nothing follows it (a gap notice has no payload). */
function decodeHeader<P>(line: string, payload: P, empty: boolean): ResumeFrame<P> | null {
  const parts = line.split(' ');
  try {
    if (parts[0] === 'd' && parts.length === 1) return { kind: 'direct', payload };
    if (parts[0] === 'm' && parts.length === 3) {
      const position = parsePosition(parts[2]);
      if (position === null) return null;
      return { kind: 'message', topic: decodeURIComponent(parts[1]), position, payload };
    }
    if (parts[0] === 'g' && parts.length === 4 && empty) {
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

/** What a client does with one server message, as {@link ResumeTracker.receive} decides. */
export type ResumeDelivery<P> =
  /** Hand the payload to the application; `meta` is set for a topic message. */
  | { action: 'deliver'; payload: P; meta: MessageMeta | undefined }
  /** Report the lost range to the application. */
  | { action: 'gap'; gap: GapInfo }
  /** A position already delivered (a replay that overlaps the live stream): drop it. */
  | { action: 'drop' }
  /** The message does not follow the exchange: close the connection with 1002. */
  | { action: 'fail'; reason: string };

/**
 * The client's side of the resume exchange, without I/O (rules 1, 2 and 5 of docs/resume.md):
 * which subprotocols to offer, which URL to connect to, and what each server message means for
 * the application. One per logical connection, kept across its sockets.
 *
 * @example
 * const resume = new ResumeTracker();
 * const ws = new WebSocket(resume.url(base), resume.protocols(['chat.v1']));
 * ws.onmessage = (event) => {
 *   const outcome = resume.receive(decodeResumeText(event.data));
 *   if (outcome.action === 'deliver') show(outcome.payload, outcome.meta);
 * };
 */
export class ResumeTracker {
  /** The highest position delivered per topic: presented on the next connection. */
  readonly positions = new Map<string, number>();

  /** The subprotocols to offer: {@link RESUME_PROTOCOL} first, then the application's own. */
  protocols(offered: string | readonly string[] | undefined): string[] {
    const list = offered === undefined ? [] : typeof offered === 'string' ? [offered] : offered;
    return [RESUME_PROTOCOL, ...list.filter((p) => p !== RESUME_PROTOCOL)];
  }

  /** `url` with the positions seen so far in its `sy-resume` parameter (none before any). */
  url(url: string): string {
    if (this.positions.size === 0) return url;
    const target = new URL(url);
    target.searchParams.set(RESUME_QUERY_PARAM, formatResumePositions(this.positions));
    return target.href;
  }

  /** What to do with a decoded server message (null: one that did not decode). */
  receive<P>(frame: ResumeFrame<P> | null): ResumeDelivery<P> {
    if (frame === null) {
      return { action: 'fail', reason: 'Message without a switchyard.resume.v1 header' };
    }
    if (frame.kind === 'gap') {
      // The range is gone; whatever comes next on this topic is where the client now stands.
      this.positions.delete(frame.topic);
      return { action: 'gap', gap: { topic: frame.topic, from: frame.from, to: frame.to } };
    }
    if (frame.kind === 'direct')
      return { action: 'deliver', payload: frame.payload, meta: undefined };
    const meta = { topic: frame.topic, position: frame.position };
    // Position 0: a topic without a replay window, nothing to resume from.
    if (frame.position === 0) return { action: 'deliver', payload: frame.payload, meta };
    const last = this.positions.get(frame.topic);
    // Exactly once: a position already delivered (a replay overlapping the live stream) is not.
    if (last !== undefined && frame.position <= last) return { action: 'drop' };
    this.positions.set(frame.topic, frame.position);
    return { action: 'deliver', payload: frame.payload, meta };
  }
}
