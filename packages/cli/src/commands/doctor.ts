/** `switchyard doctor <url>`: the command around diagnose(). */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { diagnose, normaliseUrl } from '../doctor/doctor.js';
import { renderReport } from '../doctor/report.js';
import { createStyle, EXIT, parseDuration, parseHeaderFlags, UsageError, type Io } from '../io.js';

export const DOCTOR_USAGE = `Usage: switchyard doctor <url> [options]

Diagnoses a WebSocket upgrade step by step and says, for each finding, what it
means and how to fix it. Honours HTTP_PROXY / HTTPS_PROXY / NO_PROXY.

Options:
  -p, --protocol <name>   offer a subprotocol (repeatable)
  -H, --header <h: v>     add a request header, e.g. "Authorization: Bearer x" (repeatable)
      --origin <origin>   send this Origin (default: none, like non-browser clients)
      --no-compression    do not offer permessage-deflate (browsers offer it)
      --timeout <time>    deadline of each attempt (default 10s)
      --idle [<time>]     also measure the idle timeout on the path, waiting up to
                          <time> (default 3m) without traffic
      --ca <file>         trust this CA certificate (PEM)
      --insecure          report an untrusted certificate as a warning only
      --no-h2             skip the HTTP/2 probe on wss:// URLs
      --json              print the report as JSON
  -h, --help              show this help

Exit status: 0 healthy (warnings allowed), 1 a problem was found, 2 bad usage.
`;

/** Runs `switchyard doctor`; resolves with the exit code. */
export async function doctorCommand(args: string[], io: Io): Promise<number> {
  // --idle takes an optional value: a bare --idle means the default.
  const normalised = args.map((a, i) =>
    a === '--idle' &&
    (args[i + 1] === undefined || args[i + 1].startsWith('-') || !/^\d/.test(args[i + 1]))
      ? '--idle=3m'
      : a,
  );
  const { values, positionals } = parseArgs({
    args: normalised,
    allowPositionals: true,
    options: {
      protocol: { type: 'string', short: 'p', multiple: true },
      header: { type: 'string', short: 'H', multiple: true },
      origin: { type: 'string' },
      'no-compression': { type: 'boolean' },
      timeout: { type: 'string' },
      idle: { type: 'string' },
      ca: { type: 'string' },
      insecure: { type: 'boolean' },
      'no-h2': { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    io.stdout.write(DOCTOR_USAGE);
    return EXIT.OK;
  }
  if (positionals.length !== 1) throw new UsageError('doctor takes exactly one URL');
  let url: URL;
  try {
    url = normaliseUrl(positionals[0]);
  } catch (error) {
    throw new UsageError(`invalid URL ${positionals[0]}: ${(error as Error).message}`);
  }
  let ca: Buffer | undefined;
  if (values.ca !== undefined) {
    try {
      ca = readFileSync(values.ca);
    } catch (error) {
      throw new UsageError(`cannot read --ca ${values.ca}: ${(error as Error).message}`);
    }
  }
  const json = values.json === true;
  const style = createStyle(io.stderr, io.env);
  const showProgress = !json && io.stderr.isTTY === true;
  const report = await diagnose({
    url,
    protocols: values.protocol ?? [],
    headers: parseHeaderFlags(values.header),
    origin: values.origin,
    compression: values['no-compression'] !== true,
    timeoutMs: parseDuration(values.timeout, 'timeout', 10_000),
    frameTimeoutMs: Math.min(5000, parseDuration(values.timeout, 'timeout', 10_000)),
    idleMs: parseDuration(values.idle, 'idle', 0),
    h2: values['no-h2'] !== true,
    ca,
    insecure: values.insecure === true,
    env: io.env,
    signal: io.signal,
    // Progress goes to stderr, one line rewritten in place, only on a terminal.
    onProgress: showProgress
      ? (line) => io.stderr.write(`\r\u001b[2K${style.dim(line)}`)
      : undefined,
  });
  if (showProgress) io.stderr.write('\r\u001b[2K');
  if (json) io.stdout.write(JSON.stringify(report, null, 2) + '\n');
  else io.stdout.write(renderReport(report, createStyle(io.stdout, io.env)));
  return report.healthy ? EXIT.OK : EXIT.PROBLEM;
}
