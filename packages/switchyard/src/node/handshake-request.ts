/**
 * The request type every server-side handshake path shares (HTTP/1.1 upgrade, HTTP/2 extended
 * CONNECT, the standalone server). Its own module so that server.ts and http2.ts both import it
 * and neither imports the other for it.
 */
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { LeanRequest } from './lean-http.js';

/**
 * The request of a handshake: Node's `IncomingMessage` for an HTTP/1.1 upgrade, its
 * `Http2ServerRequest` for an HTTP/2 extended CONNECT (RFC 8441; `req.httpVersion` is '2.0',
 * the Host is in `req.authority`), and a {@link LeanRequest} on the standalone server (`listen`),
 * which reads heads with the core's parser instead of node:http. All have `headers`, `url`,
 * `method`, `httpVersion` and `socket`.
 */
export type HandshakeRequest = IncomingMessage | Http2ServerRequest | LeanRequest;
