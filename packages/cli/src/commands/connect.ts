/**
 * `switchyard connect <url>`: an interactive client, or a pipe for scripts.
 *
 * Interactive (stdin is a terminal): lines typed are sent as text; `/ping`, `/close [code]
 * [reason]`, `/binary <hex>` and `/quit` are commands; incoming messages are printed with a
 * timestamp, binary ones as hex. Pipe (stdin is not a terminal, or --pipe): every stdin line
 * becomes a text message and every incoming message a stdout line (binary as hex); at the end
 * of stdin the connection is closed with 1000, once the server has answered the close.
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { connect, type WebSocket } from 'switchyard';
import { createStyle, EXIT, parseDuration, parseHeaderFlags, UsageError, type Io } from '../io.js';

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
                             ping, pong, close, error), for scripts
      --proxy <url>          tunnel through this HTTP proxy (default: HTTP_PROXY /
                             HTTPS_PROXY, honouring NO_PROXY)
      --ca <file>            trust this CA certificate (PEM) for wss://
      --cert <file>          client certificate (PEM), with --key
      --key <file>           private key of --cert (PEM)
      --insecure             do not verify the server's certificate (testing only)
      --timeout <time>       handshake timeout (default 10s)
  -V, --version              print the version
  -h, --help                 show this help

Exit status: 0 after a close you asked for (/close, /quit, end of input, Ctrl-C)
that the server answered, or a normal close (1000, 1001) by the server; 1 when
the connection failed or closed abnormally; 2 on bad usage.
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

  let ws: WebSocket;
  try {
    ws = await connect(positionals[0], {
      protocols,
      headers,
      host,
      origin,
      perMessageDeflate: values.compression === true,
      handshakeTimeout: parseDuration(values.timeout, 'timeout', 10_000),
      proxy: values.proxy,
      tls: tlsOptions,
      signal: io.signal,
      logger: false,
    });
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

  if (json) {
    emit({
      event: 'open',
      url: ws.url,
      protocol: ws.protocol,
      extensions: ws.extensions,
      status: ws.response?.statusCode ?? 101,
      headers: ws.response?.headers ?? {},
    });
  } else if (!pipe) {
    note(
      style.green(
        `connected to ${ws.url}${ws.protocol ? ` (protocol ${ws.protocol})` : ''}${ws.extensions ? ` (extensions ${ws.extensions})` : ''}`,
      ) + style.dim(' — type a message, /ping, /close [code] [reason], /binary <hex>, /quit'),
    );
  } else note(`connected to ${ws.url}`);
  const pings: bigint[] = [];
  ws.on('message', (data, isBinary) => {
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
      });
    } else if (pipe) {
      if (isBinary && binaryOutput === 'raw') io.stdout.write(buffer);
      else io.stdout.write(`${isBinary ? encodeBinary(buffer, binaryOutput) : String(data)}\n`);
    } else if (isBinary) {
      note(
        `${style.cyan('<')} ${style.dim(`binary ${bytes} B`)} ${encodeBinary(buffer, binaryOutput === 'raw' ? 'hex' : binaryOutput)}`,
      );
    } else {
      note(`${style.cyan('<')} ${String(data)} ${style.dim(`(${bytes} B)`)}`);
    }
  });
  ws.on('pong', (data) => {
    const sent = pings.shift();
    const rttMs = sent === undefined ? null : Number(process.hrtime.bigint() - sent) / 1e6;
    if (json) emit({ event: 'pong', size: data.length, rttMs });
    else note(style.dim(`pong${rttMs === null ? '' : ` after ${rttMs.toFixed(2)} ms`}`));
  });
  ws.on('ping', (data) => {
    if (json) emit({ event: 'ping', size: data.length });
    else if (!pipe) note(style.dim('ping from the server (answered)'));
  });
  ws.on('error', (error) => {
    if (json)
      emit({
        event: 'error',
        code: (error as { code?: string }).code ?? null,
        message: error.message,
      });
    else note(style.red(`error: ${error.message}`));
  });

  const closed = new Promise<{ code: number; reason: string; wasClean: boolean }>((resolve) =>
    ws.once('close', (code, reason, wasClean) => resolve({ code, reason, wasClean })),
  );
  // Whether the close was asked for here (a command, the end of input, Ctrl-C).
  let userClosed = false;
  const closeBy = (code: number, reason: string) => {
    userClosed = true;
    ws.close(code, reason);
  };
  const onAbort = () => {
    if (ws.readyState === 1) closeBy(1000, '');
  };
  io.signal.addEventListener('abort', onAbort, { once: true });
  let lines: ReturnType<typeof createInterface> | null = null;
  if (noInput) {
    // Listen only: stdin is not read, so its end does not close the connection.
  } else if (values['binary-chunks'] === true) {
    io.stdin.on('data', (chunk: Buffer | string) => {
      if (ws.readyState === 1) ws.send(Buffer.from(chunk), { binary: true });
    });
    io.stdin.once('end', () => {
      if (ws.readyState === 1) closeBy(1000, '');
    });
  } else {
    lines = createInterface({ input: io.stdin, terminal: false });
    lines.on('line', (line) => {
      if (ws.readyState !== 1) return;
      if (!pipe && line.startsWith('/')) {
        const [command, ...rest] = line.split(' ');
        if (command === '/ping') {
          pings.push(process.hrtime.bigint());
          ws.ping(rest.join(' '));
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
            ws.send(bytes, { binary: true });
            note(
              `${style.yellow('>')} ${style.dim(`binary ${bytes.length} B`)} ${bytes.toString('hex')}`,
            );
          }
        } else if (command === '/quit') closeBy(1000, '');
        else note(style.red(`unknown command ${command}; /ping, /close, /binary, /quit`));
        return;
      }
      if (sendBinary) ws.send(Buffer.from(line), { binary: true });
      else ws.send(line);
      if (!pipe)
        note(`${style.yellow('>')} ${line} ${style.dim(`(${Buffer.byteLength(line)} B)`)}`);
    });
    lines.once('close', () => {
      // End of input: close normally; messages already received are printed before the close.
      if (ws.readyState === 1) closeBy(1000, '');
    });
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
