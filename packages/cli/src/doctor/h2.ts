/**
 * The HTTP/2 side of an endpoint, for `switchyard doctor`: does it speak h2 (ALPN), and does it
 * advertise extended CONNECT (RFC 8441 §3: SETTINGS_ENABLE_CONNECT_PROTOCOL, 0x8, set to 1),
 * without which no client may open a WebSocket over HTTP/2?
 */
import http2 from 'node:http2';
import tls from 'node:tls';

/** What the HTTP/2 probe found. */
export type H2Probe =
  | {
      speaksH2: true;
      enableConnectProtocol: boolean;
      settings: Record<string, unknown>;
      ms: number;
    }
  | { speaksH2: false; reason: string };

/** Connects with ALPN h2 only and reads the server's first SETTINGS frame. */
export function probeH2(
  url: URL,
  options: { timeoutMs: number; ca?: string | Buffer },
): Promise<H2Probe> {
  const start = Date.now();
  return new Promise((resolve) => {
    const origin = `https://${url.host}`;
    const host = url.hostname.replace(/^\[|\]$/g, '');
    let settled = false;
    const finish = (probe: H2Probe) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.destroy();
      resolve(probe);
    };
    const session = http2.connect(origin, {
      ALPNProtocols: ['h2'],
      rejectUnauthorized: false,
      ca: options.ca === undefined ? undefined : [...tls.rootCertificates, String(options.ca)],
      servername: host,
    });
    const timer = setTimeout(
      () => finish({ speaksH2: false, reason: 'no HTTP/2 SETTINGS within the timeout' }),
      options.timeoutMs,
    );
    session.on('error', (error: Error) =>
      finish({ speaksH2: false, reason: error.message.split('\n')[0] }),
    );
    session.on('remoteSettings', (settings) =>
      finish({
        speaksH2: true,
        enableConnectProtocol: settings.enableConnectProtocol === true,
        settings: { ...settings },
        ms: Date.now() - start,
      }),
    );
  });
}
