/**
 * `switchyard connect <url>`: an interactive client, or a pipe for scripts.
 *
 * Interactive (stdin is a terminal): lines typed are sent as text; `/ping`, `/close [code]
 * [reason]`, `/binary <hex>` and `/quit` are commands; incoming messages are printed with a
 * timestamp, binary ones as hex. Pipe (stdin is not a terminal, or --pipe): every stdin line
 * becomes a text message and every incoming message a stdout line (binary as hex); at the end
 * of stdin the connection is closed with 1000, once the server has answered the close.
 */
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
  -p, --protocol <name>   offer a subprotocol (repeatable)
  -H, --header <h: v>     add a request header (repeatable)
      --origin <origin>   send this Origin header
      --compression       offer permessage-deflate
      --pipe              pipe mode even on a terminal
      --timeout <time>    handshake timeout (default 10s)
  -h, --help              show this help

Exit status: 0 after a normal close, 1 when the connection failed or closed
abnormally, 2 on bad usage.
`;

function hex(data: Buffer): string {
  return data.toString('hex');
}

function parseHex(text: string): Buffer | null {
  const clean = text.replace(/[\s:]/g, '');
  return /^([0-9a-fA-F]{2})*$/.test(clean) ? Buffer.from(clean, 'hex') : null;
}

function timestamp(): string {
  return new Date().toISOString().slice(11, 23);
}

/** Runs `switchyard connect`; resolves with the exit code once the connection is closed. */
export async function connectCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      protocol: { type: 'string', short: 'p', multiple: true },
      header: { type: 'string', short: 'H', multiple: true },
      origin: { type: 'string' },
      compression: { type: 'boolean' },
      pipe: { type: 'boolean' },
      timeout: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    io.stdout.write(CONNECT_USAGE);
    return EXIT.OK;
  }
  if (positionals.length !== 1) throw new UsageError('connect takes exactly one URL');
  const pipe = values.pipe === true || io.stdin.isTTY !== true;
  const style = createStyle(io.stdout, io.env);
  const note = (line: string) =>
    (pipe ? io.stderr : io.stdout).write(
      pipe ? `${line}\n` : `${style.dim(timestamp())} ${line}\n`,
    );

  let ws: WebSocket;
  try {
    ws = await connect(positionals[0], {
      protocols: values.protocol ?? [],
      headers: parseHeaderFlags(values.header),
      origin: values.origin,
      perMessageDeflate: values.compression === true,
      handshakeTimeout: parseDuration(values.timeout, 'timeout', 10_000),
      signal: io.signal,
      logger: false,
    });
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const e = error as Error & { code?: string; statusCode?: number };
    if (e.code === 'SWITCHYARD_ERR_INVALID_ARGUMENT') throw new UsageError(e.message);
    io.stderr.write(`switchyard connect: ${e.message}${e.code ? ` (${e.code})` : ''}\n`);
    if (e.code === 'SWITCHYARD_ERR_HANDSHAKE_STATUS') {
      io.stderr.write(`Try: switchyard doctor ${positionals[0]}\n`);
    }
    return EXIT.PROBLEM;
  }

  if (!pipe) {
    note(
      style.green(
        `connected to ${ws.url}${ws.protocol ? ` (protocol ${ws.protocol})` : ''}${ws.extensions ? ` (extensions ${ws.extensions})` : ''}`,
      ) + style.dim(' — type a message, /ping, /close [code] [reason], /binary <hex>, /quit'),
    );
  }
  const pings: bigint[] = [];
  ws.on('message', (data, isBinary) => {
    const bytes = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    if (pipe) {
      io.stdout.write(`${isBinary ? hex(data as Buffer) : String(data)}\n`);
    } else if (isBinary) {
      note(`${style.cyan('<')} ${style.dim(`binary ${bytes} B`)} ${hex(data as Buffer)}`);
    } else {
      note(`${style.cyan('<')} ${String(data)} ${style.dim(`(${bytes} B)`)}`);
    }
  });
  ws.on('pong', () => {
    const sent = pings.shift();
    const rtt =
      sent === undefined
        ? ''
        : ` after ${(Number(process.hrtime.bigint() - sent) / 1e6).toFixed(2)} ms`;
    note(style.dim(`pong${rtt}`));
  });
  ws.on('ping', () => {
    if (!pipe) note(style.dim('ping from the server (answered)'));
  });
  ws.on('error', (error) => note(style.red(`error: ${error.message}`)));

  const closed = new Promise<{ code: number; reason: string; wasClean: boolean }>((resolve) =>
    ws.once('close', (code, reason, wasClean) => resolve({ code, reason, wasClean })),
  );
  const lines = createInterface({ input: io.stdin, terminal: false });
  const onAbort = () => ws.close(1000, '');
  io.signal.addEventListener('abort', onAbort, { once: true });
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
          ws.close(code, rest.slice(1).join(' '));
        } catch (error) {
          note(style.red((error as Error).message));
        }
      } else if (command === '/binary') {
        const bytes = parseHex(rest.join(''));
        if (bytes === null) note(style.red('/binary takes hex digits, e.g. /binary 00ff10'));
        else {
          ws.send(bytes, { binary: true });
          note(`${style.yellow('>')} ${style.dim(`binary ${bytes.length} B`)} ${hex(bytes)}`);
        }
      } else if (command === '/quit') ws.close(1000, '');
      else note(style.red(`unknown command ${command}; /ping, /close, /binary, /quit`));
      return;
    }
    ws.send(line);
    if (!pipe) note(`${style.yellow('>')} ${line} ${style.dim(`(${Buffer.byteLength(line)} B)`)}`);
  });
  lines.once('close', () => {
    // End of input: close normally; messages already received are printed before the close.
    if (ws.readyState === 1) ws.close(1000, '');
  });
  const result = await closed;
  io.signal.removeEventListener('abort', onAbort);
  lines.close();
  note(
    `closed: ${result.code}${result.reason ? ` ${result.reason}` : ''}${result.wasClean ? '' : ' (not clean)'}`,
  );
  return result.wasClean && (result.code === 1000 || result.code === 1001 || result.code === 1005)
    ? EXIT.OK
    : EXIT.PROBLEM;
}
