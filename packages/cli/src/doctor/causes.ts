/**
 * What each finding of `switchyard doctor` means and how to fix it: the knowledge base.
 *
 * Every finding has a stable id (the `--json` output and the tests use it), a severity, a title,
 * what it means here, and concrete fixes, with the settings of nginx, HAProxy, Apache and the
 * cloud load balancers where they are the usual cause. The proxy blocks are shared because the
 * same few mistakes cause most failed upgrades.
 */

/** How bad a finding is: `problem` makes doctor exit 1; `warning` and `info` do not. */
export type Severity = 'problem' | 'warning' | 'info';

/** A cause that doctor can name. */
export interface Cause {
  severity: Severity;
  title: string;
  /** What it means here, in a few sentences. */
  meaning: string;
  /** What to do, one step or one product's setting per entry. */
  fix: string[];
}

const FORWARD_UPGRADE: string[] = [
  'nginx: in the location that proxies WebSockets set `proxy_http_version 1.1;`, ' +
    '`proxy_set_header Upgrade $http_upgrade;` and `proxy_set_header Connection $connection_upgrade;` ' +
    "with `map $http_upgrade $connection_upgrade { default upgrade; '' close; }` in the http block " +
    '(Upgrade and Connection are hop-by-hop headers, RFC 9110 §7.6.1: nginx never forwards them by itself).',
  'HAProxy: use `mode http` (it forwards the upgrade by itself) and remove any ' +
    '`http-request del-header Connection`, `option httpclose` or header rewrite that drops Upgrade.',
  'Apache httpd 2.4.47+: `ProxyPass /ws/ http://backend/ws/ upgrade=websocket` ' +
    '(older: `a2enmod proxy_wstunnel` and `ProxyPass /ws/ ws://backend/ws/`).',
  'Cloud load balancers: AWS ALB and Google Cloud HTTP(S) LB pass upgrades; an AWS Classic ELB ' +
    'with an HTTP listener does not (use a TCP/SSL listener or an ALB); on Azure App Service turn ' +
    'on "Web sockets" in Configuration; on Cloudflare keep "WebSockets" on (Network settings).',
];

const IDLE_FIX: string[] = [
  'Send pings more often than the shortest idle timeout on the path (switchyard: ' +
    '`heartbeat: { interval }` on the server or the client).',
  'nginx: `proxy_read_timeout` and `proxy_send_timeout` (default 60s) in the WebSocket location, ' +
    'e.g. `proxy_read_timeout 1h;`.',
  'HAProxy: `timeout tunnel 1h` (after the upgrade, `timeout tunnel` replaces client/server timeouts).',
  'Apache httpd: `ProxyTimeout 3600` or `timeout=3600` on the ProxyPass line.',
  'AWS ALB: the idle_timeout.timeout_seconds attribute (default 60 s); Google Cloud: the backend ' +
    "service timeout (default 30 s, and it bounds a WebSocket's whole life); Azure Load Balancer: " +
    '4 min idle by default; Cloudflare: 100 s without traffic.',
];

const HTTP11_UPSTREAM: string[] = [
  'nginx: `proxy_http_version 1.1;` (the default is 1.0, which has no Upgrade).',
  'Apache httpd: make sure `SetEnv force-proxy-request-1.0` or `downgrade-1.0` is not set for this path.',
  'Old or classic load balancers that speak HTTP/1.0 upstream (AWS Classic ELB HTTP listener): ' +
    'use a TCP listener, or a load balancer that supports WebSockets.',
];

/** Every cause doctor knows, by finding id. */
export const CAUSES: Record<string, Cause> = {
  'dns-failed': {
    severity: 'problem',
    title: 'The host name does not resolve',
    meaning: 'No address was found for the host, so no connection could be attempted.',
    fix: [
      'Check the spelling of the host in the URL.',
      'Check DNS from this machine (`getent hosts <host>`); inside containers, check /etc/resolv.conf.',
    ],
  },
  'tcp-refused': {
    severity: 'problem',
    title: 'Nothing listens on that port',
    meaning:
      'The host answered with a TCP reset: it is reachable, but no server accepts connections on this port.',
    fix: [
      'Check the port in the URL (ws:// defaults to 80, wss:// to 443).',
      'Check that the server runs and listens on this interface (a server bound to 127.0.0.1 is not reachable from elsewhere).',
    ],
  },
  'tcp-timeout': {
    severity: 'problem',
    title: 'The TCP connection timed out',
    meaning:
      'No answer to the connection attempt: a firewall drops the packets, or the host is down or unreachable.',
    fix: [
      'Check firewalls and security groups between here and the host for this port.',
      'Check that the host is up.',
    ],
  },
  'tcp-failed': {
    severity: 'problem',
    title: 'The TCP connection failed',
    meaning: 'The connection could not be opened (see the error).',
    fix: ['Check the network path to the host: routes, firewalls, VPNs.'],
  },
  'proxy-refused': {
    severity: 'problem',
    title: 'The HTTP proxy refused the CONNECT tunnel',
    meaning:
      'HTTP_PROXY/HTTPS_PROXY named a proxy, and it did not open a tunnel to the host (RFC 9110 §9.3.6).',
    fix: [
      'Check the proxy URL and its credentials (http://user:pass@proxy:3128).',
      'Ask for the host and port to be allowed through the proxy, or put the host in NO_PROXY.',
    ],
  },
  'tls-failed': {
    severity: 'problem',
    title: 'The TLS handshake failed',
    meaning: 'The server and this client could not agree on TLS (see the error).',
    fix: [
      'Check that the port speaks TLS at all (wss:// against a plain HTTP port fails like this).',
      'Check the TLS versions and ciphers the server allows.',
    ],
  },
  'tls-untrusted': {
    severity: 'problem',
    title: 'The certificate is not trusted',
    meaning:
      'The certificate chain does not lead to a trusted CA (self-signed, missing intermediate, expired) or does not name this host. Browsers refuse such a wss:// connection without saying why.',
    fix: [
      'Serve the full chain (leaf and intermediates), e.g. nginx `ssl_certificate` pointing at fullchain.pem.',
      'Use a certificate whose subjectAltName lists this host name.',
      'For a private CA, give clients the CA (switchyard doctor --ca <file>, Node NODE_EXTRA_CA_CERTS).',
    ],
  },
  'h2-only': {
    severity: 'problem',
    title: 'The endpoint speaks only HTTP/2',
    meaning:
      'The TLS handshake offering only http/1.1 (as a WebSocket client does) was refused, but HTTP/2 (ALPN h2) works. RFC 6455 WebSockets need HTTP/1.1; over HTTP/2 they need extended CONNECT (RFC 8441), which most clients only use when the server advertises SETTINGS_ENABLE_CONNECT_PROTOCOL.',
    fix: [
      'Offer HTTP/1.1 too: Node `http2.createSecureServer({ allowHTTP1: true })`; nginx `listen 443 ssl; http2 on;` keeps http/1.1 by default; check that the load balancer or CDN front end still offers http/1.1 in ALPN.',
      'Or serve WebSockets over HTTP/2 with RFC 8441 (advertise SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 and accept `:protocol = websocket` CONNECT streams); clients without RFC 8441 support will still fail.',
    ],
  },
  'h2-websocket-broken': {
    severity: 'problem',
    title: 'Extended CONNECT is advertised, but a WebSocket over HTTP/2 fails',
    meaning:
      'The server sets SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441), so a browser whose page came over HTTP/2 opens its WebSocket as an HTTP/2 stream on that connection, and never falls back to HTTP/1.1. Here that stream did not become a working WebSocket, so those browsers fail while HTTP/1.1 clients (and this report above) succeed.',
    fix: [
      'Advertise the setting only where WebSocket streams are really served: Switchyard sets it when a WebSocketServer is attached to the http2 server; elsewhere, turn off `enableConnectProtocol`.',
      'Check that the CONNECT route (`:method CONNECT`, `:protocol websocket`, the path) reaches the WebSocket handler, and that a front end (CDN, load balancer) that advertises the setting also forwards such streams.',
    ],
  },
  'h2c-only': {
    severity: 'problem',
    title: 'The endpoint speaks cleartext HTTP/2 (h2c) only',
    meaning:
      'The server answered the HTTP/1.1 request with HTTP/2 frames: it expects HTTP/2 with prior knowledge, where RFC 6455 upgrades cannot happen.',
    fix: [
      'Serve HTTP/1.1 on this port (or on another one for WebSockets).',
      'If a proxy speaks h2c to this backend, point the WebSocket route at an HTTP/1.1 port.',
    ],
  },
  'not-http': {
    severity: 'problem',
    title: 'The answer is not HTTP',
    meaning:
      'The bytes that came back do not start with "HTTP/": another protocol listens on this port (TLS on a ws:// URL, a database, SSH ...).',
    fix: ['Check the scheme (ws:// or wss://) and the port.'],
  },
  'malformed-response': {
    severity: 'problem',
    title: 'The response head is malformed',
    meaning: 'The server answered HTTP, but its response head could not be parsed (see the error).',
    fix: [
      'Fix the server or the proxy that writes this response; compare with the raw response above.',
    ],
  },
  'no-response': {
    severity: 'problem',
    title: 'The connection closed without an answer',
    meaning:
      'The server (or something in front of it) closed the connection after reading the request, without a response. Typical of a proxy or firewall that drops requests carrying Upgrade, or of a server that crashed on the request.',
    fix: [
      'Look at the server and proxy logs at the time of this request.',
      ...FORWARD_UPGRADE.slice(0, 1),
    ],
  },
  'handshake-timeout': {
    severity: 'problem',
    title: 'No answer to the upgrade request',
    meaning:
      'The connection stayed open but no response came in time. The server (or an upstream behind a proxy) accepted the request and never answered: a route that waits for a body, a hung upstream, or a proxy buffering the request.',
    fix: [
      'Look for the request in the server logs; a handler that awaits something before upgrading needs a timeout.',
      'Behind a proxy, check that the upstream is reachable from the proxy and that the proxy does not buffer the request (nginx: `proxy_buffering off;` for the WebSocket location).',
    ],
  },
  http10: {
    severity: 'problem',
    title: 'The answer is HTTP/1.0',
    meaning:
      'HTTP/1.0 has no Upgrade mechanism, so a WebSocket cannot be opened through whatever answered. Either the server is an HTTP/1.0 server, or a hop on the way speaks HTTP/1.0 (nginx proxies with HTTP/1.0 unless told otherwise).',
    fix: [...HTTP11_UPSTREAM, ...FORWARD_UPGRADE.slice(0, 1)],
  },
  'status-200': {
    severity: 'problem',
    title: 'The server answered 200 instead of 101',
    meaning:
      'The request reached a plain HTTP handler that ignored the upgrade: the path serves a page or an API (an SPA fallback route does this), or a proxy removed Upgrade and Connection so the application saw an ordinary GET.',
    fix: [
      'Check that the path is the WebSocket endpoint (the body above shows what was served).',
      'If a proxy is in front, make it forward the upgrade:',
      ...FORWARD_UPGRADE,
    ],
  },
  redirect: {
    severity: 'problem',
    title: 'The server redirects the upgrade',
    meaning:
      'A 3xx answer cannot open a WebSocket. Browsers do not follow redirects for WebSockets. Usual reasons: http→https redirect (use wss://), a missing or extra trailing slash, a login redirect, or a canonical host name.',
    fix: [
      'Connect to the Location shown in the response directly (wss:// instead of ws://, the exact path).',
      'Exclude the WebSocket path from http→https or trailing-slash redirects in the proxy.',
    ],
  },
  'bad-request': {
    severity: 'problem',
    title: 'The server answered 400 Bad Request',
    meaning:
      'The server refused the handshake as malformed. Most often the request arrived without what a WebSocket handshake needs (a proxy dropped Upgrade or Connection, or changed the Host), or the server rejects a header value it does not expect. The body often says which.',
    fix: [
      'Read the response body above for the reason.',
      'If a proxy is in front, make it forward the upgrade:',
      ...FORWARD_UPGRADE,
    ],
  },
  'auth-required': {
    severity: 'problem',
    title: 'The server requires authentication (401)',
    meaning:
      'The upgrade was refused for lack of credentials. Browsers cannot set an Authorization header on a WebSocket: use a cookie, a token in the URL or a first message.',
    fix: [
      'Pass the credentials doctor should use: --header "Authorization: Bearer <token>" or --header "Cookie: ...".',
      'Check that the proxy forwards Cookie/Authorization to the backend.',
    ],
  },
  forbidden: {
    severity: 'problem',
    title: 'The server refused the upgrade (403)',
    meaning:
      'The server (or a WAF in front) forbids this request. For WebSockets this is most often an Origin check (RFC 6455 §10.2), an IP allow-list, or a missing session.',
    fix: [
      'Try with the Origin a browser would send: --origin https://<your site>.',
      "Check the server's allowed origins (switchyard: the `origin` option) and the WAF rules.",
    ],
  },
  'origin-required': {
    severity: 'problem',
    title: 'The server checks the Origin header',
    meaning:
      'Without a same-site Origin the upgrade is refused; with it, it succeeds. Browsers always send Origin, so pages on this site will connect; pages on other sites and non-browser clients that send no or another Origin will be refused. This protects against cross-site WebSocket hijacking (RFC 6455 §10.2).',
    fix: [
      "If other sites' pages must connect, add their origins to the server's allow-list (switchyard: `origin: ['https://app.example']`).",
      'Non-browser clients: send the expected Origin (switchyard connect --origin ...).',
    ],
  },
  'not-found': {
    severity: 'problem',
    title: 'No WebSocket endpoint at this path (404)',
    meaning:
      'The path does not exist where the request ended up: a typo, a proxy location that does not match, or a proxy that strips or adds a path prefix before passing the request on.',
    fix: [
      'Check the path against the server routes.',
      'nginx: with `proxy_pass http://backend/;` (trailing slash) the location prefix is removed; without it the full path is passed.',
      'Check the load balancer path rules for the WebSocket path.',
    ],
  },
  'upgrade-not-forwarded': {
    severity: 'problem',
    title: 'The server never saw the upgrade (426 Upgrade Required)',
    meaning:
      '426 means the server wanted an upgrade request and did not get one. Doctor did send `Upgrade: websocket` and `Connection: Upgrade`, so something between here and the server removed them: a proxy not forwarding these hop-by-hop headers, or one that speaks HTTP/1.0 upstream.',
    fix: [...FORWARD_UPGRADE, ...HTTP11_UPSTREAM.slice(0, 1)],
  },
  'upgrade-other-protocol': {
    severity: 'problem',
    title: 'The server wants another protocol (426)',
    meaning:
      'The 426 lists protocols in its Upgrade header, and websocket is not among them: this endpoint does not serve WebSockets.',
    fix: ['Check the URL; the endpoint serves the protocols listed in the Upgrade header above.'],
  },
  'version-mismatch': {
    severity: 'problem',
    title: 'The server does not speak WebSocket version 13',
    meaning:
      'The server answered with Sec-WebSocket-Version listing the versions it speaks (RFC 6455 §4.4), and 13, the only version of RFC 6455 that browsers and libraries use, is not among them.',
    fix: ['Upgrade the server library to one that implements RFC 6455 (version 13).'],
  },
  'bad-gateway': {
    severity: 'problem',
    title: 'The proxy could not reach the backend (502)',
    meaning:
      'A proxy or load balancer answered: its upstream refused the connection, closed it, or answered something it could not use (an upstream that does not speak the protocol the proxy expects).',
    fix: [
      'Check that the backend runs and that the proxy points at the right host and port.',
      'nginx: the error log says which upstream failed; for wss upstreams use `proxy_pass https://...`.',
    ],
  },
  unavailable: {
    severity: 'problem',
    title: 'The service is unavailable (503)',
    meaning:
      'The server is overloaded, in maintenance, at a connection limit (switchyard: maxConnections), or has no healthy backends behind the load balancer.',
    fix: [
      'Check the health of the backends behind the load balancer.',
      'Check connection limits (server, proxy `worker_connections`, file descriptors: `ulimit -n`).',
    ],
  },
  'gateway-timeout': {
    severity: 'problem',
    title: 'The proxy timed out waiting for the backend (504)',
    meaning:
      'A proxy forwarded the request but its upstream did not answer in time: the backend is slow to accept the upgrade, or the proxy cannot reach it.',
    fix: [
      'Check that the backend answers upgrades promptly (an async upgrade hook that hangs does this).',
      'nginx: `proxy_connect_timeout` / `proxy_read_timeout`; check that the upstream address is reachable from the proxy.',
    ],
  },
  'server-error': {
    severity: 'problem',
    title: 'The server failed (5xx)',
    meaning: 'The server or a proxy failed while handling the upgrade; the body may say why.',
    fix: ['Look at the server logs for this request.'],
  },
  'unexpected-status': {
    severity: 'problem',
    title: 'An unexpected status instead of 101',
    meaning: 'The server answered with a status that does not open a WebSocket.',
    fix: ['Check the URL and the server route; the response above shows the full answer.'],
  },
  'upgrade-missing': {
    severity: 'problem',
    title: 'The 101 has no Upgrade header',
    meaning:
      'RFC 6455 §4.1: a client must fail the connection when the 101 lacks `Upgrade: websocket`. Usually a proxy rewrote the response, or a hand-written server forgot the header.',
    fix: [
      'Send `Upgrade: websocket` in the 101.',
      'If a proxy is in front, check that it does not strip Upgrade from responses.',
    ],
  },
  'upgrade-wrong': {
    severity: 'problem',
    title: 'The 101 upgrades to something else than websocket',
    meaning: 'The Upgrade header of the 101 does not say websocket (RFC 6455 §4.1).',
    fix: ['Send exactly `Upgrade: websocket` in the 101.'],
  },
  'connection-missing': {
    severity: 'problem',
    title: 'The 101 has no "Connection: Upgrade"',
    meaning:
      'RFC 6455 §4.1: a client must fail the connection when the 101 lacks a Connection header containing "Upgrade". Browsers will refuse this server even where lenient clients work. Often a proxy replaced Connection with its own value.',
    fix: [
      'Send `Connection: Upgrade` in the 101.',
      'nginx: do not set `proxy_hide_header Connection` / `add_header Connection ...` on this location.',
    ],
  },
  'accept-missing': {
    severity: 'problem',
    title: 'The 101 has no Sec-WebSocket-Accept',
    meaning:
      'The server switched protocols without proving it read the key (RFC 6455 §4.2.2). Browsers refuse it. Usually not a WebSocket server at all (a different protocol behind Upgrade), or a hand-written handshake.',
    fix: [
      'Send Sec-WebSocket-Accept = base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")).',
    ],
  },
  'accept-mismatch': {
    severity: 'problem',
    title: 'Sec-WebSocket-Accept does not match the key',
    meaning:
      'The accept value was not computed from the key this request sent (RFC 6455 §4.1): a cache or a proxy replayed an old 101, or the server computes it wrongly (wrong GUID, hex instead of base64, trimming).',
    fix: [
      'Compute base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")) from the key as received.',
      'Make sure no cache stores responses for the WebSocket path (nginx: no `proxy_cache` there).',
    ],
  },
  'subprotocol-unrequested': {
    severity: 'problem',
    title: 'The server chose a subprotocol that was not offered',
    meaning:
      'RFC 6455 §4.1: a client must fail the connection when the 101 names a subprotocol it did not offer. Browsers close such connections at once.',
    fix: [
      'Only answer Sec-WebSocket-Protocol with one of the values the client offered, and send none when it offered none.',
    ],
  },
  'subprotocol-none': {
    severity: 'warning',
    title: 'The server chose none of the offered subprotocols',
    meaning:
      'The client offered subprotocols and the server accepted without choosing one. The connection works, but a client that requires one of them will close it.',
    fix: ['Check the names offered against those the server supports (case matters).'],
  },
  'extension-unrequested': {
    severity: 'problem',
    title: 'The server accepted an extension that was not offered',
    meaning:
      'RFC 6455 §4.1 and §9.1: the server may only accept extensions the client offered. Clients fail the connection.',
    fix: [
      'Only answer Sec-WebSocket-Extensions with extensions from the request, with valid parameters.',
    ],
  },
  'extension-malformed': {
    severity: 'problem',
    title: 'Sec-WebSocket-Extensions in the 101 is malformed',
    meaning: 'The extensions header of the response does not follow RFC 6455 §9.1.',
    fix: ['Fix the extension negotiation of the server.'],
  },
  'connection-strict': {
    severity: 'problem',
    title: 'Only the exact header "Connection: Upgrade" works (Firefox will fail)',
    meaning:
      'With `Connection: Upgrade` the upgrade works; with `Connection: keep-alive, Upgrade`, which Firefox sends, it does not. Connection is a comma-separated list (RFC 9110 §7.6.1): the server or a proxy compares the whole value instead of looking for the upgrade token.',
    fix: [
      'Parse Connection as a list of tokens, case-insensitively.',
      "nginx: map on $http_upgrade (not $http_connection) as in nginx's WebSocket guide.",
      'Apache/HAProxy rules with `Connection` regexes: match `(?i)\\bupgrade\\b`, not the whole value.',
    ],
  },
  'extension-offer-rejected': {
    severity: 'problem',
    title: 'Offering compression makes the upgrade fail',
    meaning:
      'With `Sec-WebSocket-Extensions: permessage-deflate` in the request the upgrade fails; without it, it succeeds. Every browser offers permessage-deflate, so browsers cannot connect. RFC 6455 §9.1: a server must ignore extensions it does not support.',
    fix: [
      'Ignore unknown or unsupported extension offers instead of refusing the handshake.',
      'Check WAF rules that reject unknown Sec-WebSocket-* headers.',
    ],
  },
  'dropped-after-upgrade': {
    severity: 'problem',
    title: 'The connection is cut right after the 101',
    meaning:
      'The handshake succeeded, then the TCP connection closed without a close frame (1006 for the application). A proxy that does not switch to tunnelling after the 101, a server handler that crashes on open, or an authentication check after the upgrade that drops the socket.',
    fix: [
      'Look at the server logs for errors right after the connection opens.',
      'If a proxy is in front, make sure it supports WebSockets (it must keep the connection as a tunnel):',
      ...FORWARD_UPGRADE.slice(0, 3),
    ],
  },
  'closed-after-upgrade': {
    severity: 'problem',
    title: 'The server closes the WebSocket right after opening it',
    meaning:
      'The handshake succeeded, then the server sent a close frame at once (its code and reason are shown). The application decided to close: failed authentication in the first message, a policy (1008), or an error on open (1011).',
    fix: [
      'The close code and reason above come from the application: look for them in its code and logs.',
    ],
  },
  'no-pong': {
    severity: 'problem',
    title: 'No pong came back for a ping',
    meaning:
      'The 101 arrived, but a ping got no pong (RFC 6455 §5.5.2: a pong MUST be sent in answer). Either frames do not flow after the upgrade (a proxy that buffers or does not forward the tunnel), or the server does not answer pings; either way heartbeats will time out.',
    fix: [
      'If a proxy is in front, check that it forwards data after the 101 without buffering (nginx: `proxy_buffering off;` and the Upgrade settings):',
      ...FORWARD_UPGRADE.slice(0, 1),
      'If the server is custom, answer every ping with a pong carrying the same payload.',
    ],
  },
  'frame-error': {
    severity: 'problem',
    title: 'The server sent an invalid frame',
    meaning:
      'A frame from the server broke RFC 6455 (see the error): every client fails the connection with 1002 when it sees one, so browsers report 1006 or 1002 and the application sees a drop.',
    fix: [
      'A masked frame: RFC 6455 §5.1 forbids a server to mask; only clients mask. Check that the server uses its WebSocket library in server mode.',
      'RSV1/RSV2/RSV3 set: RFC 6455 §5.2 allows them only for an extension both sides negotiated; a server that compresses must answer the permessage-deflate offer in Sec-WebSocket-Extensions (RFC 7692 §6), and must not compress when it did not.',
      'A close code such as 1005, 1006 or 1015 on the wire: RFC 6455 §7.4.1 reserves them for reporting; send 1000-1003, 1007-1014 or 3000-4999.',
      'When the server is right and something on the path rewrites the stream (a WAF, a body filter), make it pass the bytes after the 101 through untouched.',
    ],
  },
  'probe-failed': {
    severity: 'problem',
    title: 'A probe step failed in a way doctor does not know',
    meaning:
      'The step named in the evidence failed with an error that has no finding of its own yet. What the server sent is in the report above; the error says where it went wrong.',
    fix: [
      'Run the step again with `switchyard connect <url> --json` to see each frame and event.',
      'Report it with the output of `switchyard doctor --json <url>`, so that the failure gets its own finding.',
    ],
  },
  'close-not-answered': {
    severity: 'problem',
    title: 'The server did not answer the close frame',
    meaning:
      'RFC 6455 §5.5.1: an endpoint that receives a close frame must send one back. Without it clients wait for their close timeout and report 1006 (abnormal closure) instead of a clean close.',
    fix: [
      'Answer a close frame with a close frame (usually echoing its code), then close the TCP connection (server side).',
    ],
  },
  'close-tcp-lingers': {
    severity: 'warning',
    title: 'The server answered the close frame but kept TCP open',
    meaning:
      'RFC 6455 §7.1.1: after the closing handshake the server should close the TCP connection first. Clients time out waiting, and the server keeps a socket in TIME_WAIT for nothing.',
    fix: ['Close the TCP connection after sending the close frame reply.'],
  },
  'idle-timeout': {
    severity: 'warning',
    title: 'Idle connections are cut',
    meaning:
      'The connection was closed after a time without traffic. Something on the path (a proxy, load balancer, NAT or firewall) has an idle timeout; real connections that stay quiet longer will drop (1006).',
    fix: IDLE_FIX,
  },
};

/** The cause of a finding id; throws for an unknown id (a bug in doctor). */
export function causeOf(id: string): Cause {
  const cause = CAUSES[id];
  if (cause === undefined) throw new Error(`doctor: unknown finding ${id}`);
  return cause;
}
