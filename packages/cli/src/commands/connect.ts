/**
 * `switchyard connect <url>`: an interactive client, or a pipe for scripts.
 *
 * Interactive (stdin is a terminal): lines typed are sent as text; `/ping`, `/close [code]
 * [reason]`, `/binary <hex>` and `/quit` are commands; incoming messages are printed with a
 * timestamp, binary ones as hex. Pipe (stdin is not a terminal, or --pipe): every stdin line
 * becomes a text message and every incoming message a stdout line (binary as hex); at the end
 * of stdin the connection is closed with 1000, once the server has answered the close.
 *
 * With --reconnect the same session runs over a ReconnectingWebSocket: a {@link Link} hides
 * which one the input side talks to, and the reconnect events become output lines.
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import {
  connect,
  ReconnectingWebSocket,
  type DisconnectCause,
  type MessageMeta,
  type WebSocket,
} from 'switchyard';
import {
  createStyle,
  EXIT,
  parseCount,
  parseDuration,
  parseHeaderFlags,
  UsageError,
  type Io,
} from '../io.js';

export const CONNECT_USAGE = `Usage: switchyard connect <url> [options]

An interactive WebSocket client. Type a line to send it; commands:
  /ping [text]            send a ping, show the pong and its round-trip time
  /close [code] [reason]  close the connection (default 1000)
  /binary <hex>           send a binary message, e.g. /binary 00ff10
  /quit                   close with 1000 and exit
When stdin is not a terminal (or with --pipe), every stdin line is sent as a
message and every message received is printed as one line (binary as hex).

Options:
  -p, --protocol <name>      offer a subprotocol (repeatable)
  -H, --header <h: v>        add a request header (repeatable); Host, Origin and
                             Sec-WebSocket-Protocol are allowed and set those
      --host <name>          send this Host header (the connection still goes to the URL)
      --origin <origin>      send this Origin header
      --compression          offer permessage-deflate
      --pipe                 pipe mode even on a terminal
  -n, --no-input             do not read stdin: only print what arrives
      --binary               send each stdin line as a binary message
      --binary-chunks        send stdin as binary messages, each chunk read as it came
      --binary-output <how>  print received binary as hex (default), base64 or raw
      --json                 print one JSON object per line per event (open, message,
                             ping, pong, close, error; reconnecting, gap), for scripts
      --proxy <url>          tunnel through this HTTP proxy (default: HTTP_PROXY /
                             HTTPS_PROXY, honouring NO_PROXY)
      --ca <file>            trust this CA certificate (PEM) for wss://
      --cert <file>          client certificate (PEM), with --key
      --key <file>           private key of --cert (PEM)
      --insecure             do not verify the server's certificate (testing only)
      --timeout <time>       handshake timeout (default 10s)
      --reconnect            come back after a drop (backoff with jitter); lines
                             typed while disconnected are sent on reconnect
      --reconnect-max-delay <time>
                             longest wait between attempts (default 30s)
      --reconnect-retries <n>
                             give up after n failed attempts in a row (default never)
      --resume               with --reconnect: speak the resume exchange, so topic
                             messages missed while away are replayed once
  -V, --version              print the version
  -h, --help                 show this help

Exit status: 0 after a close you asked for (/close, /quit, end of input, Ctrl-C)
that the server answered, or a normal close (1000, 1001) by the server; 1 when
the connection failed or closed abnormally (with --reconnect: when it gave up,
or the server closed with a code that does not reconnect, such as 1008 or 4xxx);
2 on bad usage.
`;

type BinaryOutput = 'hex' | 'base64' | 'raw';

function encodeBinary(data: Buffer, how: BinaryOutput): string {
  return how === 'base64' ? data.toString('base64') : data.toString('hex');
}

function parseHex(text: string): Buffer | null {
  const clean = text.replace(/[\s:]/g, '');
  return /^([0-9a-fA-F]{2})*$/.test(clean) ? Buffer.from(clean, 'hex') : null;
}

function timestamp(): string {
  return new Date().toISOString().slice(11, 23);
}

function readPem(path: string | undefined, flag: string): Buffer | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path);
  } catch (error) {
    throw new UsageError(`cannot read --${flag} ${path}: ${(error as Error).message}`);
  }
}

// What each handshake header is set with, for -H: these go to their own option.
const HEADER_FLAGS: Record<string, string> = {
  upgrade: 'the request always carries "Upgrade: websocket"',
  connection: 'the request always carries "Connection: Upgrade"',
  'sec-websocket-key': 'a new key is made for each connection',
  'sec-websocket-version': 'the version is always 13',
  'sec-websocket-extensions': 'use --compression to offer permessage-deflate',
  'sec-websocket-accept': 'it belongs in the response',
  'content-length': 'the handshake request has no body',
  'transfer-encoding': 'the handshake request has no body',
};

// Node's certificate error codes (tls, OpenSSL): an untrusted or wrong certificate.
const CERTIFICATE_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REVOKED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function certificateCode(error: unknown): string | null {
  for (let e = error as { code?: string; cause?: unknown } | undefined, i = 0; e && i < 5; i++) {
    if (e.code !== undefined && CERTIFICATE_CODES.has(e.code)) return e.code;
    e = e.cause as typeof e;
  }
  return null;
}

function describeCause(cause: DisconnectCause): string {
  if (cause.kind === 'close')
    return `closed ${cause.code}${cause.reason ? ` ${cause.reason}` : ''}`;
  if (cause.kind === 'handshake') return `server answered ${cause.status}`;
  return cause.error.message;
}

function causeJson(cause: DisconnectCause): Record<string, unknown> {
  if (cause.kind === 'close') return { kind: 'close', code: cause.code, reason: cause.reason };
  if (cause.kind === 'handshake') {
    return { kind: 'handshake', status: cause.status, retryAfterMs: cause.retryAfterMs };
  }
  const e = cause.error as Error & { code?: string };
  return { kind: 'network', code: e.code ?? null, message: e.message };
}

/** What the input side talks to: one WebSocket, or a reconnecting one. */
interface Link {
  /** Whether a line typed now is sent (or queued for the next socket). */
  accepts(): boolean;
  send(data: string | Buffer, binary: boolean): void;
  /** False when no socket is open to ping. */
  ping(text: string): boolean;
  close(code: number, reason: string): void;
}

/** Runs `switchyard connect`; resolves with the exit code once the connection is closed. */
export async function connectCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      protocol: { type: 'string', short: 'p', multiple: true },
      header: { type: 'string', short: 'H', multiple: true },
      host: { type: 'string' },
      origin: { type: 'string' },
      compression: { type: 'boolean' },
      pipe: { type: 'boolean' },
      'no-input': { type: 'boolean', short: 'n' },
      binary: { type: 'boolean' },
      'binary-chunks': { type: 'boolean' },
      'binary-output': { type: 'string' },
      json: { type: 'boolean' },
      proxy: { type: 'string' },
      ca: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      insecure: { type: 'boolean' },
      timeout: { type: 'string' },
      reconnect: { type: 'boolean' },
      'reconnect-max-delay': { type: 'string' },
      'reconnect-retries': { type: 'string' },
      resume: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    io.stdout.write(CONNECT_USAGE);
    return EXIT.OK;
  }
  if (positionals.length !== 1) throw new UsageError('connect takes exactly one URL');
  const binaryOutput = (values['binary-output'] ?? 'hex') as BinaryOutput;
  if (!['hex', 'base64', 'raw'].includes(binaryOutput)) {
    throw new UsageError(
      `--binary-output must be hex, base64 or raw, got ${JSON.stringify(values['binary-output'])}`,
    );
  }
  if ((values.cert === undefined) !== (values.key === undefined)) {
    throw new UsageError('--cert and --key go together');
  }
  const reconnect = values.reconnect === true;
  const maxDelay = parseDuration(values['reconnect-max-delay'], 'reconnect-max-delay', 30_000);
  const maxRetries = parseCount(values['reconnect-retries'], 'reconnect-retries', Infinity);
  if (!reconnect) {
    for (const flag of ['reconnect-max-delay', 'reconnect-retries', 'resume'] as const) {
      if (values[flag] !== undefined) throw new UsageError(`--${flag} goes with --reconnect`);
    }
  }
  const json = values.json === true;
  const noInput = values['no-input'] === true;
  const sendBinary = values.binary === true || values['binary-chunks'] === true;
  const pipe = json || sendBinary || values.pipe === true || io.stdin.isTTY !== true;

  // -H: Host, Origin and Sec-WebSocket-Protocol set their own options; the other handshake
  // fields are the client's to write, and the error says which option to use.
  const headers = parseHeaderFlags(values.header);
  let host = values.host;
  let origin = values.origin;
  const protocols = [...(values.protocol ?? [])];
  for (const name of Object.keys(headers)) {
    const lower = name.toLowerCase();
    if (lower === 'host') host ??= headers[name];
    else if (lower === 'origin') origin ??= headers[name];
    else if (lower === 'sec-websocket-protocol') {
      protocols.push(
        ...headers[name]
          .split(',')
          .map((p) => p.trim())
          .filter(Boolean),
      );
    } else if (HEADER_FLAGS[lower] !== undefined) {
      throw new UsageError(`-H ${name}: ${HEADER_FLAGS[lower]}`);
    } else continue;
    delete headers[name];
  }
  const secure = /^(wss|https):/i.test(positionals[0]);
  const tlsOptions = secure
    ? {
        ca: readPem(values.ca, 'ca'),
        cert: readPem(values.cert, 'cert'),
        key: readPem(values.key, 'key'),
        rejectUnauthorized: values.insecure !== true,
      }
    : undefined;

  const style = createStyle(io.stdout, io.env);
  const emit = (event: Record<string, unknown>) =>
    io.stdout.write(
      `${JSON.stringify({ event: event.event, time: new Date().toISOString(), ...event })}\n`,
    );
  const note = (line: string) => {
    if (json) return;
    (pipe ? io.stderr : io.stdout).write(
      pipe ? `${line}\n` : `${style.dim(timestamp())} ${line}\n`,
    );
  };

  const connectOptions = {
    protocols,
    headers,
    host,
    origin,
    perMessageDeflate: values.compression === true,
    handshakeTimeout: parseDuration(values.timeout, 'timeout', 10_000),
    proxy: values.proxy,
    tls: tlsOptions,
    logger: false as const,
  };
  const pings: bigint[] = [];
  const printMessage = (
    data: string | Buffer | ArrayBuffer | Buffer[],
    isBinary: boolean,
    meta?: MessageMeta,
  ) => {
    const buffer = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data as Buffer);
    const bytes = buffer.length;
    if (json) {
      emit({
        event: 'message',
        type: isBinary ? 'binary' : 'text',
        size: bytes,
        data: isBinary
          ? encodeBinary(buffer, binaryOutput === 'raw' ? 'base64' : binaryOutput)
          : String(data),
        ...(isBinary ? { encoding: binaryOutput === 'raw' ? 'base64' : binaryOutput } : {}),
        ...(meta ? { topic: meta.topic, position: meta.position } : {}),
      });
    } else if (pipe) {
      if (isBinary && binaryOutput === 'raw') io.stdout.write(buffer);
      else io.stdout.write(`${isBinary ? encodeBinary(buffer, binaryOutput) : String(data)}\n`);
    } else {
      const where = meta ? ` ${style.dim(`[${meta.topic} #${meta.position}]`)}` : '';
      if (isBinary) {
        note(
          `${style.cyan('<')} ${style.dim(`binary ${bytes} B`)} ${encodeBinary(buffer, binaryOutput === 'raw' ? 'hex' : binaryOutput)}${where}`,
        );
      } else note(`${style.cyan('<')} ${String(data)} ${style.dim(`(${bytes} B)`)}${where}`);
    }
  };
  const watchControl = (socket: WebSocket) => {
    socket.on('pong', (data) => {
      const sent = pings.shift();
      const rttMs = sent === undefined ? null : Number(process.hrtime.bigint() - sent) / 1e6;
      if (json) emit({ event: 'pong', size: data.length, rttMs });
      else note(style.dim(`pong${rttMs === null ? '' : ` after ${rttMs.toFixed(2)} ms`}`));
    });
    socket.on('ping', (data) => {
      if (json) emit({ event: 'ping', size: data.length });
      else if (!pipe) note(style.dim('ping from the server (answered)'));
    });
  };
  const printOpen = (socket: WebSocket, attempt: number | undefined) => {
    if (json) {
      emit({
        event: 'open',
        ...(attempt === undefined ? {} : { attempt }),
        url: socket.url,
        protocol: socket.protocol,
        extensions: socket.extensions,
        status: socket.response?.statusCode ?? 101,
        headers: socket.response?.headers ?? {},
      });
    } else if (attempt !== undefined && attempt > 0) {
      note(style.green(`reconnected to ${socket.url}`));
    } else if (!pipe) {
      note(
        style.green(
          `connected to ${socket.url}${socket.protocol ? ` (protocol ${socket.protocol})` : ''}${socket.extensions ? ` (extensions ${socket.extensions})` : ''}`,
        ) + style.dim(' — type a message, /ping, /close [code] [reason], /binary <hex>, /quit'),
      );
    } else note(`connected to ${socket.url}`);
  };
  const printError = (error: Error) => {
    if (json)
      emit({
        event: 'error',
        code: (error as { code?: string }).code ?? null,
        message: error.message,
      });
    else note(style.red(`error: ${error.message}`));
  };

  // Whether the close was asked for here (a command, the end of input, Ctrl-C).
  let userClosed = false;
  let link: Link;
  let reconnecting: ReconnectingWebSocket | null = null;
  let closed: Promise<{ code: number; reason: string; wasClean: boolean }>;
  if (reconnect) {
    let rws: ReconnectingWebSocket;
    try {
      rws = new ReconnectingWebSocket(positionals[0], {
        ...connectOptions,
        // The first retry waits up to 500 ms (the library's default), never past the cap.
        reconnect: { minDelay: Math.min(500, maxDelay), maxDelay, maxRetries },
        resume: values.resume === true,
      });
    } catch (error) {
      const e = error as Error & { code?: string };
      if (e.code === 'SWITCHYARD_ERR_INVALID_ARGUMENT') throw new UsageError(e.message);
      throw error;
    }
    reconnecting = rws;
    // Whether the last socket closed cleanly; none open at the end counts as clean.
    let lastClean = true;
    // A failed attempt is reported twice (error, then reconnecting with the same cause): the
    // human output shows it once, in the reconnecting line.
    const retried = new WeakSet<Error>();
    let lastError: Error | null = null;
    rws.on('open', ({ attempt, socket }) => {
      lastClean = false;
      socket.once('close', (_code, _reason, wasClean) => (lastClean = wasClean));
      watchControl(socket);
      printOpen(socket, attempt);
    });
    rws.on('message', (data, isBinary, meta) => printMessage(data, isBinary, meta));
    rws.on('reconnecting', ({ attempt, delay, cause }) => {
      if (cause.kind !== 'close' && lastError !== null) retried.add(lastError);
      if (json) emit({ event: 'reconnecting', attempt, delay, cause: causeJson(cause) });
      else
        note(
          style.yellow(`reconnecting in ${delay} ms (attempt ${attempt}): ${describeCause(cause)}`),
        );
    });
    rws.on('gap', ({ topic, from, to }) => {
      if (json) emit({ event: 'gap', topic, from, to });
      else note(style.red(`gap on ${topic}: positions ${from}-${to ?? '?'} were lost`));
    });
    rws.on('error', (error) => {
      lastError = error;
      if (json) printError(error);
      else queueMicrotask(() => retried.has(error) || printError(error));
    });
    closed = new Promise((resolve) =>
      rws.once('close', (code, reason) =>
        resolve({
          code,
          reason,
          get wasClean() {
            return lastClean;
          },
        }),
      ),
    );
    link = {
      accepts: () => rws.readyState === 0 || rws.readyState === 1,
      send: (data, binary) => void rws.send(data, { binary }),
      ping: (text) => {
        if (rws.socket?.readyState !== 1) return false;
        rws.socket.ping(text);
        return true;
      },
      close: (code, reason) => rws.close(code, reason),
    };
  } else {
    let ws: WebSocket;
    try {
      ws = await connect(positionals[0], { ...connectOptions, signal: io.signal });
    } catch (error) {
      if (error instanceof UsageError) throw error;
      const e = error as Error & { code?: string; statusCode?: number };
      if (e.code === 'SWITCHYARD_ERR_INVALID_ARGUMENT') throw new UsageError(e.message);
      const certificate = certificateCode(e);
      if (json) {
        emit({ event: 'error', code: e.code ?? null, certificate, message: e.message });
      }
      if (certificate !== null) {
        io.stderr.write(
          `switchyard connect: certificate problem (${certificate}): ${(e.cause as Error | undefined)?.message ?? e.message}\n` +
            `Fix: trust the CA that signed the server's certificate with --ca <file.pem>` +
            `${certificate === 'ERR_TLS_CERT_ALTNAME_INVALID' ? ', or connect with the name the certificate is for' : ''}` +
            `; --insecure skips the check (testing only).\n` +
            `More: switchyard doctor ${positionals[0]}\n`,
        );
        return EXIT.PROBLEM;
      }
      io.stderr.write(`switchyard connect: ${e.message}${e.code ? ` (${e.code})` : ''}\n`);
      if (e.code === 'SWITCHYARD_ERR_HANDSHAKE_STATUS') {
        io.stderr.write(`Try: switchyard doctor ${positionals[0]}\n`);
      }
      return EXIT.PROBLEM;
    }

    printOpen(ws, undefined);
    watchControl(ws);
    ws.on('message', (data, isBinary) => printMessage(data, isBinary));
    ws.on('error', printError);
    closed = new Promise((resolve) =>
      ws.once('close', (code, reason, wasClean) => resolve({ code, reason, wasClean })),
    );
    link = {
      accepts: () => ws.readyState === 1,
      send: (data, binary) => (binary ? ws.send(data, { binary: true }) : ws.send(data)),
      ping: (text) => {
        ws.ping(text);
        return true;
      },
      close: (code, reason) => ws.close(code, reason),
    };
  }

  const closeBy = (code: number, reason: string) => {
    userClosed = true;
    link.close(code, reason);
  };
  // End of input: close normally once what was typed is out (with --reconnect, lines queued
  // while disconnected go on the next socket first); messages received are printed before.
  const endOfInput = () => {
    if (!link.accepts()) return;
    if (reconnecting !== null && reconnecting.readyState === 0 && reconnecting.bufferedAmount > 0) {
      reconnecting.once('open', () => closeBy(1000, ''));
    } else closeBy(1000, '');
  };
  const onAbort = () => {
    if (link.accepts()) closeBy(1000, '');
  };
  io.signal.addEventListener('abort', onAbort, { once: true });
  let lines: ReturnType<typeof createInterface> | null = null;
  if (noInput) {
    // Listen only: stdin is not read, so its end does not close the connection.
  } else if (values['binary-chunks'] === true) {
    io.stdin.on('data', (chunk: Buffer | string) => {
      if (link.accepts()) link.send(Buffer.from(chunk), true);
    });
    io.stdin.once('end', endOfInput);
  } else {
    lines = createInterface({ input: io.stdin, terminal: false });
    lines.on('line', (line) => {
      if (!link.accepts()) return;
      if (!pipe && line.startsWith('/')) {
        const [command, ...rest] = line.split(' ');
        if (command === '/ping') {
          if (link.ping(rest.join(' '))) pings.push(process.hrtime.bigint());
          else note(style.red('not connected: nothing to ping'));
        } else if (command === '/close') {
          const code = rest[0] === undefined ? 1000 : Number(rest[0]);
          try {
            closeBy(code, rest.slice(1).join(' '));
          } catch (error) {
            userClosed = false;
            note(style.red((error as Error).message));
          }
        } else if (command === '/binary') {
          const bytes = parseHex(rest.join(''));
          if (bytes === null) note(style.red('/binary takes hex digits, e.g. /binary 00ff10'));
          else {
            link.send(bytes, true);
            note(
              `${style.yellow('>')} ${style.dim(`binary ${bytes.length} B`)} ${bytes.toString('hex')}`,
            );
          }
        } else if (command === '/quit') closeBy(1000, '');
        else note(style.red(`unknown command ${command}; /ping, /close, /binary, /quit`));
        return;
      }
      if (sendBinary) link.send(Buffer.from(line), true);
      else link.send(line, false);
      if (!pipe)
        note(`${style.yellow('>')} ${line} ${style.dim(`(${Buffer.byteLength(line)} B)`)}`);
    });
    lines.once('close', endOfInput);
  }
  const result = await closed;
  io.signal.removeEventListener('abort', onAbort);
  lines?.close();
  if (values['binary-chunks'] === true) io.stdin.pause();
  if (json) {
    emit({
      event: 'close',
      code: result.code,
      reason: result.reason,
      wasClean: result.wasClean,
      by: userClosed ? 'client' : 'server',
    });
  } else {
    note(
      `closed: ${result.code}${result.reason ? ` ${result.reason}` : ''}${result.wasClean ? '' : ' (not clean)'}`,
    );
  }
  // 0: a close asked for here and completed, or a normal close by the server; 1: the rest.
  const normal = result.code === 1000 || result.code === 1001 || result.code === 1005;
  return result.wasClean && (userClosed || normal) ? EXIT.OK : EXIT.PROBLEM;
}
