/**
 * permessage-deflate (RFC 7692): the negotiation, both sides. Sans-I/O: the codec (zlib) is
 * the Node layer's business; this file decides which parameters are in force.
 *
 * Theory of operation. The four parameters of RFC 7692 §7.1 describe two independent
 * directions, each with a window size and a context-takeover flag:
 *
 * | parameter                  | in an offer (client)                 | in a response (server)             |
 * | -------------------------- | ------------------------------------ | ---------------------------------- |
 * | server_no_context_takeover | asks the server to reset per message | the server resets per message      |
 * | client_no_context_takeover | a hint: the client will reset anyway | asks the client to reset           |
 * | server_max_window_bits=N   | asks the server to use <= N          | the server uses <= N               |
 * | client_max_window_bits[=N] | the client accepts a limit (<= N)    | the client must use <= N           |
 *
 * The server walks the offers in the client's order and answers the first one it can accept
 * ({@link negotiateDeflateServer}); an offer that is malformed is declined, not fatal (RFC 7692
 * §5: "A server MUST decline an extension negotiation offer for this extension if ..."). The
 * client checks the one response it gets ({@link acceptDeflateResponse}); anything the offer
 * did not allow fails the handshake (RFC 7692 §5: "A client MUST _Fail the WebSocket
 * Connection_ if ...").
 *
 * Both sides end with the same {@link DeflateParams}; {@link deflateDirections} turns them into
 * what one endpoint compresses and inflates with.
 */
import { LocalProtocolError } from './errors.js';
import type { ExtensionOffer } from './header-lists.js';

/** The registered extension token (RFC 7692 §7). */
export const PERMESSAGE_DEFLATE = 'permessage-deflate';

/** The LZ77 window sizes RFC 7692 §7.1.2 allows, as base-2 logarithms. */
export const MIN_WINDOW_BITS = 8;
/** The largest window, 32 KiB, and the size assumed when no limit was negotiated. */
export const MAX_WINDOW_BITS = 15;

/**
 * What an endpoint asks for and accepts in the negotiation (both sides use the same shape; the
 * Node layer adds codec settings such as `threshold` on top).
 */
export interface PerMessageDeflateOptions {
  /**
   * Server: always reset the server's compression context after each message (and tell the
   * client so), which saves the server's compressor from keeping history between messages at
   * some cost in ratio. A client's request for it is honoured whatever this says.
   * Client: ask the server to reset its context after each message (RFC 7692 §7.1.1.1).
   * Default false.
   */
  serverNoContextTakeover?: boolean;
  /**
   * Server: ask the client to reset its compression context after each message, so the server
   * need not keep the client's history (RFC 7692 §7.1.1.2). Default false.
   * Client: promise the server that the client resets its context after each message.
   * Default false.
   */
  clientNoContextTakeover?: boolean;
  /**
   * Server: the largest window (8–15) the server compresses with; a client that asks for less
   * gets less. Client: ask the server to use at most this window (RFC 7692 §7.1.2.1).
   * Default: 15 on the server; not asked for by the client.
   */
  serverMaxWindowBits?: number;
  /**
   * Server: limit the client's window to this size (8–15), which bounds what the server's
   * decompressor must keep; offers that do not allow a limit are declined (RFC 7692 §7.1.2.2).
   * Client: `true` tells the server it may limit our window; a number also promises to use at
   * most that window. Default: no limit on the server; `true` on the client.
   */
  clientMaxWindowBits?: number | boolean;
}

/** The parameters in force on a connection once the negotiation is done. */
export interface DeflateParams {
  /** The server resets its compression context after every message. */
  serverNoContextTakeover: boolean;
  /** The client resets its compression context after every message. */
  clientNoContextTakeover: boolean;
  /** The server's window, 8–15 (15 when nothing was negotiated). */
  serverMaxWindowBits: number;
  /** The client's window, 8–15 (15 when nothing was negotiated). */
  clientMaxWindowBits: number;
}

/** What one endpoint does in each direction, derived from {@link DeflateParams} and its role. */
export interface DeflateDirections {
  /** The window this endpoint compresses with, and whether it resets after each message. */
  deflate: { windowBits: number; noContextTakeover: boolean };
  /** The window this endpoint inflates with, and whether the peer resets after each message. */
  inflate: { windowBits: number; noContextTakeover: boolean };
}

/**
 * The most bytes a compressed message of at most `maxPayload` inflated bytes may take on the
 * wire, split into `frames` frames: `maxPayload` plus DEFLATE's worst-case expansion.
 *
 * A compressor may not shrink random or already compressed data; zlib then grows it a little
 * (stored blocks cost 5 bytes each), and with small windows and memory levels it may have to
 * use fixed Huffman codes, which spend 9 bits on half the byte values: an eighth more, plus
 * block headers (the `deflateBound` of zlib allows n/8 + n/256 + n/512 + 4 for that case).
 * Each fragment of a message ends with a sync flush, an empty stored block of up to 6 bytes
 * (RFC 7692 §7.2.1); 16 bytes per frame cover it with room for a block header. So a message of
 * exactly `maxPayload` bytes that did not compress still passes, while the compressed bytes a
 * receiver buffers stay within about 1.14 times `maxPayload`.
 *
 * @example
 * maxCompressedPayload(16 * 1024 * 1024, 1); // 18_972_692
 */
export function maxCompressedPayload(maxPayload: number, frames = 1): number {
  if (!Number.isFinite(maxPayload)) return maxPayload;
  const n = maxPayload;
  return n + Math.ceil(n / 8) + Math.ceil(n / 256) + Math.ceil(n / 512) + 4 + 16 * frames;
}

/**
 * Splits negotiated parameters into this endpoint's compressor and decompressor settings.
 *
 * @example
 * deflateDirections(params, 'server').deflate.windowBits; // params.serverMaxWindowBits
 */
export function deflateDirections(
  params: DeflateParams,
  role: 'client' | 'server',
): DeflateDirections {
  const server = {
    windowBits: params.serverMaxWindowBits,
    noContextTakeover: params.serverNoContextTakeover,
  };
  const client = {
    windowBits: params.clientMaxWindowBits,
    noContextTakeover: params.clientNoContextTakeover,
  };
  return role === 'server'
    ? { deflate: server, inflate: client }
    : { deflate: client, inflate: server };
}

/** The result of validating one permessage-deflate parameter list. */
type Parsed =
  | {
      ok: true;
      serverNoContextTakeover: boolean;
      clientNoContextTakeover: boolean;
      /** undefined: absent. */
      serverMaxWindowBits: number | undefined;
      /** undefined: absent; true: present without a value. */
      clientMaxWindowBits: number | true | undefined;
    }
  | { ok: false; reason: string };

/**
 * Parses a window-bits value: RFC 7692 §7.1.2.1 and §7.1.2.2, "1*DIGIT", a decimal integer
 * from 8 to 15 "without leading zeros". A quoted value arrives here unquoted (RFC 6455 §9.1
 * lets parameters be quoted), which is accepted.
 */
function parseWindowBits(value: string): number | null {
  if (value.length < 1 || value.length > 2) return null;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return null;
  }
  if (value.length === 2 && value.charCodeAt(0) === 0x30) return null;
  const n = Number(value);
  return n >= MIN_WINDOW_BITS && n <= MAX_WINDOW_BITS ? n : null;
}

/**
 * Validates the parameters of one offer or response. `side` says which it is: an offer may
 * carry `client_max_window_bits` without a value; a response may not (RFC 7692 §7.1.2.2).
 */
function parseParams(params: ExtensionOffer['params'], side: 'offer' | 'response'): Parsed {
  const out: Parsed & { ok: true } = {
    ok: true,
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: undefined,
    clientMaxWindowBits: undefined,
  };
  const seen = new Set<string>();
  for (const [name, value] of params) {
    // RFC 7692 §7: an offer or response that "contains multiple extension parameters with the
    // same name" is declined (server) or fails the connection (client).
    if (seen.has(name)) return { ok: false, reason: `parameter ${name} appears twice` };
    seen.add(name);
    switch (name) {
      case 'server_no_context_takeover':
      case 'client_no_context_takeover':
        // RFC 7692 §7.1.1.1 and §7.1.1.2: "This extension parameter has no value."
        if (value !== true) return { ok: false, reason: `${name} must not have a value` };
        if (name === 'server_no_context_takeover') out.serverNoContextTakeover = true;
        else out.clientNoContextTakeover = true;
        break;
      case 'server_max_window_bits': {
        // RFC 7692 §7.1.2.1: the parameter always has a value, in an offer and a response.
        const bits = value === true ? null : parseWindowBits(value);
        if (bits === null) {
          return { ok: false, reason: `server_max_window_bits must be an integer from 8 to 15` };
        }
        out.serverMaxWindowBits = bits;
        break;
      }
      case 'client_max_window_bits': {
        // RFC 7692 §7.1.2.2: the value is optional in an offer, required in a response.
        if (value === true) {
          if (side === 'response') {
            return { ok: false, reason: 'client_max_window_bits in a response must have a value' };
          }
          out.clientMaxWindowBits = true;
          break;
        }
        const bits = parseWindowBits(value);
        if (bits === null) {
          return { ok: false, reason: `client_max_window_bits must be an integer from 8 to 15` };
        }
        out.clientMaxWindowBits = bits;
        break;
      }
      default:
        // RFC 7692 §7: an offer with "an extension parameter not defined for use in an offer"
        // is declined; a response with one fails the connection.
        return { ok: false, reason: `unknown parameter ${name}` };
    }
  }
  return out;
}

/** Checks a configured window size, which is the local caller's business. */
function checkBits(name: string, value: number | boolean | undefined): void {
  if (value === undefined || typeof value === 'boolean') return;
  if (!Number.isInteger(value) || value < MIN_WINDOW_BITS || value > MAX_WINDOW_BITS) {
    throw new LocalProtocolError(
      'SWITCHYARD_ERR_INVALID_ARGUMENT',
      `perMessageDeflate.${name} must be an integer from 8 to 15 (RFC 7692 §7.1.2), got ${String(value)}`,
    );
  }
}

/**
 * Checks options before they are used: window sizes must be integers from 8 to 15.
 *
 * @throws {LocalProtocolError} `SWITCHYARD_ERR_INVALID_ARGUMENT` when a window size is out of range.
 */
export function validateDeflateOptions(options: PerMessageDeflateOptions): void {
  checkBits('serverMaxWindowBits', options.serverMaxWindowBits);
  checkBits('clientMaxWindowBits', options.clientMaxWindowBits);
}

/** The server's answer: the parameters in force, and the response element to send. */
export interface DeflateAcceptance {
  params: DeflateParams;
  /** The element for Sec-WebSocket-Extensions (format it with `formatExtensions`). */
  response: ExtensionOffer;
}

/** A declined offer and why, for diagnostics. */
export interface DeflateDecline {
  /** Index of the offer among the permessage-deflate offers (0 is the first). */
  index: number;
  reason: string;
}

/**
 * The server side of the negotiation: answers the first acceptable permessage-deflate offer,
 * in the client's order of preference (RFC 7692 §5: the server accepts one "by including an
 * extension negotiation response"; RFC 6455 §9.1: offers are listed in preference order).
 *
 * An offer is declined when it is malformed (an unknown parameter, a repeated one, a value
 * out of range) or asks for what the options do not allow: a limit on the client's window
 * that the offer did not agree to (RFC 7692 §7.1.2.2).
 *
 * @returns the acceptance, or null when no offer was acceptable, with the reasons the offers
 *   were declined in `declined` (for logs).
 * @example
 * const r = negotiateDeflateServer(parseExtensionOffers(req.headers['sec-websocket-extensions']) ?? [], {});
 * if (r.accepted) headers['Sec-WebSocket-Extensions'] = formatExtensions([r.accepted.response]);
 */
export function negotiateDeflateServer(
  offers: readonly ExtensionOffer[],
  options: PerMessageDeflateOptions = {},
): { accepted: DeflateAcceptance | null; declined: DeflateDecline[] } {
  validateDeflateOptions(options);
  const declined: DeflateDecline[] = [];
  let index = -1;
  for (const offer of offers) {
    if (offer.name !== PERMESSAGE_DEFLATE) continue;
    index++;
    const parsed = parseParams(offer.params, 'offer');
    if (!parsed.ok) {
      declined.push({ index, reason: parsed.reason });
      continue;
    }
    const wantClientBits =
      typeof options.clientMaxWindowBits === 'number' ? options.clientMaxWindowBits : undefined;
    // RFC 7692 §7.1.2.2: "If a received extension negotiation offer doesn't have the
    // client_max_window_bits extension parameter, the corresponding extension negotiation
    // response to the offer MUST NOT include the client_max_window_bits extension parameter."
    // A server that needs the limit therefore declines such an offer.
    if (wantClientBits !== undefined && parsed.clientMaxWindowBits === undefined) {
      declined.push({ index, reason: 'the offer does not let the server limit the client window' });
      continue;
    }
    const response: ExtensionOffer = { name: PERMESSAGE_DEFLATE, params: [] };
    // RFC 7692 §7.1.1.1: the server accepts a request for server_no_context_takeover by
    // including it; it "MAY include" it unasked.
    const serverNoContextTakeover =
      parsed.serverNoContextTakeover || options.serverNoContextTakeover === true;
    if (serverNoContextTakeover) response.params.push(['server_no_context_takeover', true]);
    // RFC 7692 §7.1.1.2: the server "MAY include" client_no_context_takeover; echoing the
    // client's hint makes the promise binding, so the server may drop the client's history.
    const clientNoContextTakeover =
      parsed.clientNoContextTakeover || options.clientNoContextTakeover === true;
    if (clientNoContextTakeover) response.params.push(['client_no_context_takeover', true]);
    // RFC 7692 §7.1.2.1: the server accepts a limit on its window "by including the
    // server_max_window_bits extension parameter ... with the same or smaller value".
    const serverLimit = options.serverMaxWindowBits ?? MAX_WINDOW_BITS;
    const serverMaxWindowBits = Math.min(
      serverLimit,
      parsed.serverMaxWindowBits ?? MAX_WINDOW_BITS,
    );
    if (parsed.serverMaxWindowBits !== undefined || serverMaxWindowBits < MAX_WINDOW_BITS) {
      response.params.push(['server_max_window_bits', String(serverMaxWindowBits)]);
    }
    // RFC 7692 §7.1.2.2: with a value in the offer, the client already promised to stay within
    // it; the response may lower it further.
    let clientMaxWindowBits = MAX_WINDOW_BITS;
    if (parsed.clientMaxWindowBits !== undefined) {
      const offered =
        parsed.clientMaxWindowBits === true ? MAX_WINDOW_BITS : parsed.clientMaxWindowBits;
      clientMaxWindowBits = Math.min(offered, wantClientBits ?? MAX_WINDOW_BITS);
      if (wantClientBits !== undefined || parsed.clientMaxWindowBits !== true) {
        response.params.push(['client_max_window_bits', String(clientMaxWindowBits)]);
      }
    }
    return {
      accepted: {
        params: {
          serverNoContextTakeover,
          clientNoContextTakeover,
          serverMaxWindowBits,
          clientMaxWindowBits,
        },
        response,
      },
      declined,
    };
  }
  return { accepted: null, declined };
}

/**
 * The client's offer for its options: `permessage-deflate; client_max_window_bits` by
 * default, which is what browsers send.
 *
 * @throws {LocalProtocolError} `SWITCHYARD_ERR_INVALID_ARGUMENT` when a window size is out of range.
 * @example
 * formatExtensions([formatDeflateOffer({ serverMaxWindowBits: 10 })]);
 * // 'permessage-deflate; server_max_window_bits=10; client_max_window_bits'
 */
export function formatDeflateOffer(options: PerMessageDeflateOptions = {}): ExtensionOffer {
  validateDeflateOptions(options);
  const offer: ExtensionOffer = { name: PERMESSAGE_DEFLATE, params: [] };
  if (options.serverNoContextTakeover === true)
    offer.params.push(['server_no_context_takeover', true]);
  if (options.clientNoContextTakeover === true)
    offer.params.push(['client_no_context_takeover', true]);
  if (options.serverMaxWindowBits !== undefined) {
    offer.params.push(['server_max_window_bits', String(options.serverMaxWindowBits)]);
  }
  const clientBits = options.clientMaxWindowBits ?? true;
  if (clientBits === true) offer.params.push(['client_max_window_bits', true]);
  else if (typeof clientBits === 'number') {
    offer.params.push(['client_max_window_bits', String(clientBits)]);
  }
  return offer;
}

/**
 * The client side: checks the server's permessage-deflate response against what
 * {@link formatDeflateOffer} offered for the same options, and returns the parameters in
 * force. Fails (RFC 7692 §5, "the client MUST _Fail the WebSocket Connection_") on a
 * malformed response, a repeated or unknown parameter, a value out of range, and anything the
 * offer did not allow:
 * - `client_max_window_bits` when the offer had none (§7.1.2.2), or above the offered value;
 * - `server_max_window_bits` above the requested value (§7.1.2.1), or missing when one was
 *   requested (the server accepts the request "by including" the parameter).
 *
 * @example
 * const r = acceptDeflateResponse(serverResponse, options);
 * if (!r.ok) fail(r.reason);
 */
export function acceptDeflateResponse(
  response: ExtensionOffer,
  options: PerMessageDeflateOptions = {},
): { ok: true; params: DeflateParams } | { ok: false; reason: string } {
  const parsed = parseParams(response.params, 'response');
  if (!parsed.ok) return { ok: false, reason: parsed.reason };
  const offeredClientBits = options.clientMaxWindowBits ?? true;
  let clientMaxWindowBits =
    typeof offeredClientBits === 'number' ? offeredClientBits : MAX_WINDOW_BITS;
  if (parsed.clientMaxWindowBits !== undefined) {
    if (offeredClientBits === false) {
      return {
        ok: false,
        reason: 'the server set client_max_window_bits, which the offer did not allow',
      };
    }
    const bits = parsed.clientMaxWindowBits as number;
    if (bits > clientMaxWindowBits) {
      return {
        ok: false,
        reason: `the server set client_max_window_bits=${bits}, above the offered ${clientMaxWindowBits}`,
      };
    }
    clientMaxWindowBits = bits;
  }
  let serverMaxWindowBits = MAX_WINDOW_BITS;
  if (parsed.serverMaxWindowBits !== undefined) {
    if (
      options.serverMaxWindowBits !== undefined &&
      parsed.serverMaxWindowBits > options.serverMaxWindowBits
    ) {
      return {
        ok: false,
        reason: `the server set server_max_window_bits=${parsed.serverMaxWindowBits}, above the requested ${options.serverMaxWindowBits}`,
      };
    }
    serverMaxWindowBits = parsed.serverMaxWindowBits;
  } else if (options.serverMaxWindowBits !== undefined) {
    return {
      ok: false,
      reason: 'the server accepted without server_max_window_bits, which the offer requested',
    };
  }
  return {
    ok: true,
    params: {
      // RFC 7692 §7.1.1.1: the server may reset its context unasked; the client just inflates.
      serverNoContextTakeover: parsed.serverNoContextTakeover,
      // The client keeps its own promise even when the server did not echo it.
      clientNoContextTakeover:
        parsed.clientNoContextTakeover || options.clientNoContextTakeover === true,
      serverMaxWindowBits,
      clientMaxWindowBits,
    },
  };
}
