/**
 * `switchyard doctor`: diagnoses a WebSocket upgrade step by step.
 *
 * Theory of operation. A base attempt sends what a browser sends (an offer of permessage-deflate,
 * `Connection: Upgrade`), records each step (DNS, TCP or proxy tunnel, TLS, request, response)
 * and checks the answer header by header. When the answer is a valid 101, frames are tried (a
 * ping and its pong, then a close handshake). When a finding is ambiguous, follow-up attempts
 * change one thing each (no extension offer, an Origin, Firefox's Connection value) and the
 * finding is replaced by what the difference proves. For wss, an HTTP/2 probe reads the server's
 * SETTINGS. Every finding comes from the catalogue in causes.ts, with its meaning and fixes.
 */
import { createHash } from 'node:crypto';
import { parseExtensionOffers, parseTokenList, parseUpgradeList, isToken } from 'switchyard/core';
import { proxyFromEnv } from 'switchyard';
import { causeOf, type Severity } from './causes.js';
import { FrameSession, type IdleOutcome } from './frames.js';
import { probeH2, type H2Probe } from './h2.js';
import { attempt, type AttemptResult, type AttemptSpec } from './probe.js';

/** Options of {@link diagnose}. */
export interface DoctorOptions {
  /** ws://, wss://, http:// or https:// URL. */
  url: URL;
  /** Subprotocols to offer. Default none. */
  protocols?: string[];
  /** Origin to send. Default none (as non-browser clients). */
  origin?: string;
  /** Extra request headers (Authorization, Cookie ...). */
  headers?: Record<string, string>;
  /** Offer permessage-deflate, as browsers do. Default true. */
  compression?: boolean;
  /** Deadline of each attempt, in ms. Default 10,000. */
  timeoutMs?: number;
  /** How long to wait for a pong and for the close reply, in ms. Default 5,000. */
  frameTimeoutMs?: number;
  /** Run the idle test for at most this many ms (0: no idle test). Default 0. */
  idleMs?: number;
  /** Probe HTTP/2 on wss:// endpoints. Default true. */
  h2?: boolean;
  /** An extra CA certificate (PEM) to trust. */
  ca?: string | Buffer;
  /** Report an untrusted certificate as a warning instead of a problem. Default false. */
  insecure?: boolean;
  /** Environment for HTTP_PROXY/HTTPS_PROXY/NO_PROXY. Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Progress lines (attempts, the idle test's ticks). */
  onProgress?: (line: string) => void;
  /** Stops the idle test early. */
  signal?: AbortSignal;
}

/** One line of the step-by-step report. */
export interface Check {
  name: string;
  status: 'pass' | 'fail' | 'warn' | 'info' | 'skip';
  summary: string;
}

/** A diagnosed cause, with what it means and how to fix it. */
export interface Finding {
  id: string;
  severity: Severity;
  title: string;
  meaning: string;
  fix: string[];
  /** What doctor saw that led to it. */
  evidence: string;
}

/** A follow-up attempt and what it showed. */
export interface FollowUp {
  change: string;
  outcome: string;
  conclusion: string;
}

/** Everything doctor found. */
export interface DoctorReport {
  url: string;
  healthy: boolean;
  proxy: string | null;
  checks: Check[];
  request: string | null;
  response: { head: string; body: string; firstByteMs: number; headMs: number } | null;
  followUps: FollowUp[];
  h2: H2Probe | null;
  idle: (IdleOutcome & { recommendedPingIntervalMs?: number }) | null;
  findings: Finding[];
}

const DEFLATE_OFFER = 'permessage-deflate; client_max_window_bits';
const FIREFOX_CONNECTION = 'keep-alive, Upgrade';

/** Normalises the URL: http→ws, https→wss; throws TypeError for other schemes. */
export function normaliseUrl(input: string): URL {
  const url = new URL(input);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new TypeError(`the URL must be ws://, wss://, http:// or https://, got ${url.protocol}`);
  }
  url.hash = '';
  return url;
}

function acceptFor(key: string): string {
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
}

function header(result: AttemptResult, name: string): string | undefined {
  const value = result.response?.head.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** The handshake's verdict on an attempt: ok, or the finding ids it shows. */
interface Verdict {
  ok: boolean;
  checks: Check[];
  findings: Array<{ id: string; evidence: string }>;
}

/** Checks a response head against the request (RFC 6455 §4.1), header by header. */
function judge(result: AttemptResult, spec: AttemptSpec): Verdict {
  const checks: Check[] = [];
  const findings: Verdict['findings'] = [];
  const response = result.response;
  if (response === null) return { ok: false, checks, findings };
  const { head } = response;
  const bodyText = response.body.toString('utf8').trim().slice(0, 200);
  const withBody = (text: string) => (bodyText === '' ? text : `${text}; body: "${bodyText}"`);

  if (head.httpVersion === '1.0') {
    findings.push({ id: 'http10', evidence: `the status line is HTTP/1.0 ${head.statusCode}` });
    checks.push({
      name: 'HTTP version',
      status: 'fail',
      summary: 'HTTP/1.0 (no Upgrade in HTTP/1.0)',
    });
  }
  if (head.statusCode !== 101) {
    checks.push({
      name: 'Status',
      status: 'fail',
      summary: `${head.statusCode} ${head.statusText} instead of 101 Switching Protocols`,
    });
    const status = head.statusCode;
    const evidence = withBody(`${status} ${head.statusText}`);
    if (status === 200) findings.push({ id: 'status-200', evidence });
    else if (status >= 300 && status < 400) {
      const location = header(result, 'location');
      findings.push({ id: 'redirect', evidence: location ? `${status} to ${location}` : evidence });
    } else if (status === 400) findings.push({ id: 'bad-request', evidence });
    else if (status === 401) findings.push({ id: 'auth-required', evidence });
    else if (status === 403) findings.push({ id: 'forbidden', evidence });
    else if (status === 404) findings.push({ id: 'not-found', evidence });
    else if (status === 426 || (status === 400 && header(result, 'sec-websocket-version'))) {
      const versions = header(result, 'sec-websocket-version');
      const upgrade = parseUpgradeList(header(result, 'upgrade')) ?? [];
      if (versions !== undefined && !(parseTokenList(versions) ?? []).includes('13')) {
        findings.push({ id: 'version-mismatch', evidence: `Sec-WebSocket-Version: ${versions}` });
      } else if (upgrade.length > 0 && !upgrade.some((p) => p.name === 'websocket')) {
        findings.push({
          id: 'upgrade-other-protocol',
          evidence: `Upgrade: ${header(result, 'upgrade')}`,
        });
      } else {
        const via = [header(result, 'server'), header(result, 'via')].filter(Boolean).join(', ');
        findings.push({
          id: 'upgrade-not-forwarded',
          evidence: withBody(
            `426 although the request carried Upgrade: websocket${via ? ` (answered by ${via})` : ''}`,
          ),
        });
      }
    } else if (status === 502) findings.push({ id: 'bad-gateway', evidence });
    else if (status === 503) findings.push({ id: 'unavailable', evidence });
    else if (status === 504) findings.push({ id: 'gateway-timeout', evidence });
    else if (status >= 500) findings.push({ id: 'server-error', evidence });
    else findings.push({ id: 'unexpected-status', evidence });
    return { ok: false, checks, findings };
  }
  checks.push({ name: 'Status', status: 'pass', summary: '101 Switching Protocols' });

  // RFC 6455 §4.1, the client's checks of the 101, each reported on its own.
  const upgradeRaw = header(result, 'upgrade');
  const upgrade = parseUpgradeList(upgradeRaw);
  if (upgradeRaw === undefined) {
    checks.push({ name: 'Upgrade', status: 'fail', summary: 'missing' });
    findings.push({ id: 'upgrade-missing', evidence: 'no Upgrade header in the 101' });
  } else if (upgrade === null || upgrade.length !== 1 || upgrade[0].name !== 'websocket') {
    checks.push({ name: 'Upgrade', status: 'fail', summary: upgradeRaw });
    findings.push({ id: 'upgrade-wrong', evidence: `Upgrade: ${upgradeRaw}` });
  } else checks.push({ name: 'Upgrade', status: 'pass', summary: upgradeRaw });

  const connectionRaw = header(result, 'connection');
  if (!(parseTokenList(connectionRaw) ?? []).includes('upgrade')) {
    checks.push({ name: 'Connection', status: 'fail', summary: connectionRaw ?? 'missing' });
    findings.push({
      id: 'connection-missing',
      evidence:
        connectionRaw === undefined
          ? 'no Connection header in the 101'
          : `Connection: ${connectionRaw}`,
    });
  } else checks.push({ name: 'Connection', status: 'pass', summary: connectionRaw ?? '' });

  const accept = header(result, 'sec-websocket-accept');
  const expected = acceptFor(result.key);
  if (accept === undefined) {
    checks.push({ name: 'Accept', status: 'fail', summary: 'missing' });
    findings.push({ id: 'accept-missing', evidence: `expected Sec-WebSocket-Accept: ${expected}` });
  } else if (accept.trim() !== expected) {
    checks.push({ name: 'Accept', status: 'fail', summary: `${accept} (expected ${expected})` });
    findings.push({ id: 'accept-mismatch', evidence: `got ${accept}, expected ${expected}` });
  } else checks.push({ name: 'Accept', status: 'pass', summary: 'matches the key' });

  const protocol = header(result, 'sec-websocket-protocol');
  if (protocol === undefined) {
    if (spec.protocols.length > 0) {
      checks.push({
        name: 'Subprotocol',
        status: 'warn',
        summary: `none chosen of ${spec.protocols.join(', ')}`,
      });
      findings.push({ id: 'subprotocol-none', evidence: `offered ${spec.protocols.join(', ')}` });
    } else
      checks.push({ name: 'Subprotocol', status: 'pass', summary: 'none offered, none chosen' });
  } else if (!isToken(protocol) || !spec.protocols.includes(protocol)) {
    checks.push({ name: 'Subprotocol', status: 'fail', summary: `${protocol} (not offered)` });
    findings.push({
      id: 'subprotocol-unrequested',
      evidence: `Sec-WebSocket-Protocol: ${protocol}; offered: ${spec.protocols.join(', ') || 'none'}`,
    });
  } else checks.push({ name: 'Subprotocol', status: 'pass', summary: protocol });

  const extensionsRaw = header(result, 'sec-websocket-extensions');
  if (extensionsRaw === undefined) {
    checks.push({
      name: 'Extensions',
      status: 'pass',
      summary:
        spec.extensions === null
          ? 'none offered, none accepted'
          : `offered ${spec.extensions}; none accepted`,
    });
  } else {
    const parsed = parseExtensionOffers(extensionsRaw);
    const offered =
      spec.extensions === null
        ? []
        : (parseExtensionOffers(spec.extensions) ?? []).map((e) => e.name);
    if (parsed === null || parsed.length === 0) {
      checks.push({ name: 'Extensions', status: 'fail', summary: `malformed: ${extensionsRaw}` });
      findings.push({
        id: 'extension-malformed',
        evidence: `Sec-WebSocket-Extensions: ${extensionsRaw}`,
      });
    } else if (parsed.some((e) => !offered.includes(e.name))) {
      checks.push({
        name: 'Extensions',
        status: 'fail',
        summary: `${extensionsRaw} (not offered)`,
      });
      findings.push({
        id: 'extension-unrequested',
        evidence: `Sec-WebSocket-Extensions: ${extensionsRaw}; offered: ${spec.extensions ?? 'none'}`,
      });
    } else
      checks.push({ name: 'Extensions', status: 'pass', summary: `accepted ${extensionsRaw}` });
  }
  return { ok: findings.length === 0, checks, findings };
}

function describeOutcome(result: AttemptResult): string {
  if (result.response !== null) {
    const { head } = result.response;
    return `${head.statusCode} ${head.statusText}`;
  }
  return result.failure === null ? 'nothing' : `${result.failure.code}: ${result.failure.message}`;
}

/** Where the diagnosis is, and what to release if a step fails unexpectedly. */
interface Progress {
  step: string;
  sockets: Array<{ destroy(): void }>;
}

/**
 * Runs every step and check; never throws for anything the server does. A step that fails in a
 * way no finding describes yet becomes the `probe-failed` finding, naming the step, so that
 * nothing a server sends can crash doctor or print a stack trace.
 */
export async function diagnose(options: DoctorOptions): Promise<DoctorReport> {
  const env = options.env ?? process.env;
  const proxy = proxyFromEnv(options.url, env);
  const report: DoctorReport = {
    url: options.url.href,
    healthy: false,
    proxy,
    checks: [],
    request: null,
    response: null,
    followUps: [],
    h2: null,
    idle: null,
    findings: [],
  };
  const at: Progress = { step: 'handshake', sockets: [] };
  try {
    return await runSteps(options, report, at);
  } catch (error) {
    for (const socket of at.sockets) socket.destroy();
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    report.checks.push({ name: at.step, status: 'fail', summary: message });
    report.findings.push({
      id: 'probe-failed',
      evidence: `${at.step}: ${message}`,
      ...causeOf('probe-failed'),
    });
    return finish(report);
  }
}

async function runSteps(
  options: DoctorOptions,
  report: DoctorReport,
  at: Progress,
): Promise<DoctorReport> {
  const url = options.url;
  const proxy = report.proxy;
  const progress = options.onProgress ?? (() => {});
  const timeoutMs = options.timeoutMs ?? 10_000;
  const frameTimeoutMs = options.frameTimeoutMs ?? 5000;
  const secure = url.protocol === 'wss:';
  const base: AttemptSpec = {
    url,
    protocols: options.protocols ?? [],
    extensions: options.compression === false ? null : DEFLATE_OFFER,
    origin: options.origin,
    headers: options.headers ?? {},
    connection: 'Upgrade',
    timeoutMs,
    proxy,
    tls: { ca: options.ca, alpn: ['http/1.1'] },
    keepOpen: true,
  };
  const add = (id: string, evidence: string) => {
    if (report.findings.some((f) => f.id === id)) return;
    const cause = causeOf(id);
    report.findings.push({ id, evidence, ...cause });
  };
  const remove = (id: string) => {
    report.findings = report.findings.filter((f) => f.id !== id);
  };

  progress(`connecting to ${url.href}${proxy ? ` through ${proxy}` : ''}`);
  const first = await attempt(base);
  if (first.socket !== null) at.sockets.push(first.socket);
  for (const step of first.steps) {
    const label = { dns: 'DNS', proxy: 'Proxy', tcp: 'TCP', tls: 'TLS' }[step.name];
    report.checks.push({
      name: label,
      status: step.ok
        ? step.name === 'tls' && first.tls?.authorized === false
          ? 'fail'
          : 'pass'
        : 'fail',
      summary: `${step.detail}${step.ok ? ` in ${step.ms.toFixed(1)} ms` : ''}`,
    });
  }
  if (!secure) report.checks.push({ name: 'TLS', status: 'skip', summary: 'not used (ws://)' });
  if (first.tls !== null && !first.tls.authorized) {
    add('tls-untrusted', first.tls.authorizationError ?? 'not trusted');
    if (options.insecure === true) {
      report.findings[report.findings.length - 1].severity = 'warning';
    }
  }
  const reachedServer = first.failure === null || first.failure.stage === 'response';
  if (reachedServer) report.request = first.request.replace(/\r\n/g, '\n').trimEnd();

  // HTTP/2: for wss, always look (what a browser may use), and to explain a failed TLS handshake.
  if (
    secure &&
    options.h2 !== false &&
    (first.failure === null || first.failure.stage === 'tls' || first.failure.stage === 'response')
  ) {
    progress('probing HTTP/2 (ALPN h2)');
    at.step = 'HTTP/2';
    report.h2 = await probeH2(url, { timeoutMs: Math.min(timeoutMs, 5000), ca: options.ca });
    const h2 = report.h2;
    report.checks.push(
      h2.speaksH2
        ? {
            name: 'HTTP/2',
            status: 'info',
            summary: `speaks h2; extended CONNECT (RFC 8441, SETTINGS_ENABLE_CONNECT_PROTOCOL) ${h2.enableConnectProtocol ? 'advertised' : 'not advertised'}`,
          }
        : { name: 'HTTP/2', status: 'info', summary: `no h2 (${h2.reason})` },
    );
    if (h2.speaksH2 && h2.websocket !== undefined) {
      const w = h2.websocket;
      report.checks.push(
        w.ok
          ? {
              name: 'WS over h2',
              status: 'pass',
              summary: `a WebSocket opened as an HTTP/2 stream in ${w.openMs} ms, pong after ${w.pingMs} ms${w.closed ? ', closed cleanly' : ', close not answered'}`,
            }
          : { name: 'WS over h2', status: 'fail', summary: w.reason },
      );
      // Browsers whose page came over h2 open WebSockets this way when the setting is there.
      if (!w.ok) add('h2-websocket-broken', w.reason);
    }
  }

  if (first.failure !== null) {
    const f = first.failure;
    const h2 = report.h2;
    if (f.stage === 'dns') add('dns-failed', f.message);
    else if (f.stage === 'proxy') add('proxy-refused', f.message);
    else if (f.stage === 'tcp') {
      add(
        f.code === 'ECONNREFUSED'
          ? 'tcp-refused'
          : f.code === 'ETIMEDOUT'
            ? 'tcp-timeout'
            : 'tcp-failed',
        f.message,
      );
    } else if (f.stage === 'tls') {
      if (h2?.speaksH2 === true) {
        add(
          'h2-only',
          `TLS with ALPN http/1.1 failed (${f.code}); with ALPN h2 it works, and extended CONNECT is ${h2.enableConnectProtocol ? 'advertised' : 'not advertised'}`,
        );
      } else add('tls-failed', f.message);
    } else {
      report.checks.push({ name: 'Response', status: 'fail', summary: f.message });
      if (f.code === 'h2-frames')
        add('h2c-only', `first bytes: ${f.received?.subarray(0, 16).toString('hex') ?? ''}`);
      else if (f.code === 'not-http')
        add(
          'not-http',
          `first bytes: ${JSON.stringify(f.received?.subarray(0, 32).toString('latin1') ?? '')}`,
        );
      else if (f.code === 'malformed') add('malformed-response', f.message);
      else if (f.code === 'timeout') add('handshake-timeout', f.message);
      else if (secure && h2?.speaksH2 === true && first.tls?.alpn !== 'http/1.1') {
        add('h2-only', `the connection closed after the request; with ALPN h2 the server answers`);
      } else add('no-response', f.message);
    }
    return finish(report);
  }

  const response = first.response;
  if (response === null) return finish(report);
  report.response = {
    head: response.headText,
    body: response.body.toString('utf8'),
    firstByteMs: response.firstByteMs,
    headMs: response.headMs,
  };
  report.checks.push({
    name: 'Response',
    status: 'info',
    summary: `first byte after ${response.firstByteMs.toFixed(1)} ms, head after ${response.headMs.toFixed(1)} ms`,
  });
  const verdict = judge(first, base);
  report.checks.push(...verdict.checks);
  for (const f of verdict.findings) add(f.id, f.evidence);

  if (verdict.ok && first.socket !== null) {
    at.step = 'Ping';
    // Frames: the 101 proves little if nothing flows after it.
    const compression = (header(first, 'sec-websocket-extensions') ?? '').includes(
      'permessage-deflate',
    );
    const session = new FrameSession(first.socket, first.rest, compression);
    const ping = await session.ping(frameTimeoutMs);
    if (ping.kind === 'pong') {
      report.checks.push({
        name: 'Ping',
        status: 'pass',
        summary: `pong after ${ping.rttMs.toFixed(2)} ms`,
      });
      at.step = 'Close';
      const close = await session.close(frameTimeoutMs);
      if (close.kind === 'complete') {
        report.checks.push({
          name: 'Close',
          status: close.tcpClosedByServer ? 'pass' : 'warn',
          summary: `server answered close with ${close.code} after ${close.ms.toFixed(2)} ms${close.tcpClosedByServer ? ', then closed TCP' : ' but kept TCP open'}`,
        });
        if (!close.tcpClosedByServer)
          add('close-tcp-lingers', 'no TCP close within 2 s of the close reply');
      } else if (close.kind === 'frame-error') {
        report.checks.push({ name: 'Close', status: 'fail', summary: close.message });
        add('frame-error', `in answer to close 1000: ${close.message}`);
      } else if (close.kind === 'no-reply') {
        report.checks.push({
          name: 'Close',
          status: 'fail',
          summary: `no close frame within ${close.waitedMs} ms`,
        });
        add('close-not-answered', `sent close 1000; no close frame within ${close.waitedMs} ms`);
      } else {
        report.checks.push({
          name: 'Close',
          status: 'warn',
          summary: 'TCP closed without a close frame',
        });
        add('close-not-answered', 'the server closed TCP without sending a close frame');
      }
    } else {
      session.destroy();
      if (ping.kind === 'closed-frame') {
        report.checks.push({
          name: 'Ping',
          status: 'fail',
          summary: `the server sent close ${ping.code} ${ping.reason}`,
        });
        add(
          'closed-after-upgrade',
          `close frame ${ping.code}${ping.reason ? ` "${ping.reason}"` : ''} right after the 101`,
        );
      } else if (ping.kind === 'dropped') {
        report.checks.push({ name: 'Ping', status: 'fail', summary: 'the connection closed' });
        add(
          'dropped-after-upgrade',
          `TCP closed ${ping.afterMs.toFixed(0)} ms after the ping, without a close frame`,
        );
      } else if (ping.kind === 'frame-error') {
        report.checks.push({ name: 'Ping', status: 'fail', summary: ping.message });
        add(
          'frame-error',
          `${ping.beforePing ? 'right after the 101' : 'in answer to a ping'}: ${ping.message}`,
        );
      } else {
        report.checks.push({
          name: 'Ping',
          status: 'fail',
          summary: `no pong within ${ping.waitedMs} ms`,
        });
        add('no-pong', `no pong within ${ping.waitedMs} ms`);
      }
    }
  } else {
    first.socket?.destroy();
  }

  // Follow-ups: change one thing and see what changes.
  const retry = async (change: string, spec: AttemptSpec) => {
    progress(`follow-up: ${change}`);
    at.step = `follow-up (${change})`;
    const result = await attempt({ ...spec, keepOpen: false });
    const v = judge(result, spec);
    return {
      result,
      ok: v.ok,
      outcome:
        describeOutcome(result) +
        (result.response?.head.statusCode === 101 && !v.ok ? ' (invalid)' : ''),
    };
  };
  const status = response.head.statusCode;
  if (
    !verdict.ok &&
    status !== 101 &&
    ![401, 404, 426, 502, 503, 504].includes(status) &&
    !(status >= 300 && status < 400)
  ) {
    if (base.extensions !== null) {
      const r = await retry('no Sec-WebSocket-Extensions offer', { ...base, extensions: null });
      report.followUps.push({
        change: 'the same request without the permessage-deflate offer',
        outcome: r.outcome,
        conclusion: r.ok
          ? 'the compression offer alone makes the upgrade fail'
          : 'the compression offer is not the cause',
      });
      if (r.ok) {
        for (const f of verdict.findings) remove(f.id);
        add(
          'extension-offer-rejected',
          `with the offer: ${describeOutcome(first)}; without: ${r.outcome}`,
        );
      }
    }
    if (
      !report.findings.some((f) => f.id === 'extension-offer-rejected') &&
      (status === 403 || status === 400)
    ) {
      const sameSite = `${secure ? 'https' : 'http'}://${url.host}`;
      const origin = base.origin === undefined ? sameSite : undefined;
      const r = await retry(origin ? `Origin: ${origin}` : 'no Origin', { ...base, origin });
      report.followUps.push({
        change: origin
          ? `the same request with Origin: ${origin} (as a page of this site sends)`
          : 'the same request without Origin',
        outcome: r.outcome,
        conclusion: r.ok ? 'the Origin header decides' : 'the Origin header is not the cause',
      });
      if (r.ok) {
        for (const f of verdict.findings) remove(f.id);
        add(
          'origin-required',
          `without Origin: ${describeOutcome(first)}; with Origin ${origin ?? ''}: ${r.outcome}`,
        );
      }
    }
  }
  if (verdict.ok) {
    // Firefox sends "Connection: keep-alive, Upgrade"; servers and proxies that compare the
    // whole value instead of the token list fail it (RFC 9110 §7.6.1).
    const r = await retry(`Connection: ${FIREFOX_CONNECTION}`, {
      ...base,
      connection: FIREFOX_CONNECTION,
    });
    report.checks.push({
      name: 'Firefox',
      status: r.ok ? 'pass' : 'fail',
      summary: `Connection: ${FIREFOX_CONNECTION} → ${r.outcome}`,
    });
    if (!r.ok) {
      report.followUps.push({
        change: `the same request with Connection: ${FIREFOX_CONNECTION} (as Firefox sends it)`,
        outcome: r.outcome,
        conclusion: 'the exact value of Connection decides',
      });
      add(
        'connection-strict',
        `Connection: Upgrade → 101; Connection: ${FIREFOX_CONNECTION} → ${r.outcome}`,
      );
    }
  }

  if (
    (options.idleMs ?? 0) > 0 &&
    verdict.ok &&
    !report.findings.some((f) => f.severity === 'problem')
  ) {
    at.step = 'Idle';
    report.idle = await idleTest(base, options.idleMs ?? 0, progress, options.signal, at);
    if (report.idle.kind === 'frame-error') {
      report.checks.push({ name: 'Idle', status: 'fail', summary: report.idle.message });
      add(
        'frame-error',
        `during the idle test, after ${(report.idle.afterMs / 1000).toFixed(1)} s: ${report.idle.message}`,
      );
    } else if (report.idle.kind === 'cut') {
      report.checks.push({
        name: 'Idle',
        status: 'warn',
        summary: `cut after ${(report.idle.afterMs / 1000).toFixed(1)} s without traffic (${report.idle.how === 'tcp' ? 'TCP closed' : `close ${report.idle.code ?? ''}`}); ping every ${((report.idle.recommendedPingIntervalMs ?? 0) / 1000).toFixed(1)} s or less`,
      });
      add(
        'idle-timeout',
        `closed after ${(report.idle.afterMs / 1000).toFixed(1)} s idle; a ping every ${((report.idle.recommendedPingIntervalMs ?? 0) / 1000).toFixed(1)} s keeps it open`,
      );
    } else {
      report.checks.push({
        name: 'Idle',
        status: 'pass',
        summary: `stayed open ${(report.idle.ms / 1000).toFixed(1)} s without traffic${report.idle.serverPings > 0 ? ` (the server pinged ${report.idle.serverPings} times)` : ''}`,
      });
    }
  }
  return finish(report);
}

async function idleTest(
  base: AttemptSpec,
  maxMs: number,
  progress: (line: string) => void,
  signal: AbortSignal | undefined,
  at: Progress,
): Promise<NonNullable<DoctorReport['idle']>> {
  const opened = await attempt({ ...base, extensions: null, keepOpen: true });
  if (opened.socket !== null) at.sockets.push(opened.socket);
  if (opened.socket === null) {
    return { kind: 'cut', afterMs: 0, how: 'tcp', recommendedPingIntervalMs: 0 };
  }
  const session = new FrameSession(opened.socket, opened.rest, false);
  progress(`idle test: staying silent for up to ${Math.round(maxMs / 1000)} s`);
  const outcome = await session.idle(
    maxMs,
    (ms) => progress(`idle test: ${Math.round(ms / 1000)} s without traffic, still open`),
    signal,
  );
  session.destroy();
  if (outcome.kind === 'cut') {
    // Half the cut leaves room for one lost ping and for timers that fire late.
    return {
      ...outcome,
      recommendedPingIntervalMs: Math.max(500, Math.floor(outcome.afterMs / 2)),
    };
  }
  return outcome;
}

function finish(report: DoctorReport): DoctorReport {
  report.healthy = !report.findings.some((f) => f.severity === 'problem');
  return report;
}
