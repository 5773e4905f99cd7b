/**
 * The `switchyard` command: doctor, connect, serve and bench. `main()` takes the arguments and
 * the streams, and resolves with the exit code, so that tests run it in-process.
 */
import { doctorCommand } from './commands/doctor.js';
import { connectCommand } from './commands/connect.js';
import { serveCommand } from './commands/serve.js';
import { benchCommand } from './commands/bench.js';
import { EXIT, UsageError, type Io } from './io.js';
import { VERSION } from './version.js';

export const USAGE = `Usage: switchyard <command> [options]

Commands:
  doctor <url>    diagnose a WebSocket upgrade step by step, with fixes
  connect <url>   an interactive client, or a pipe (stdin lines → messages → stdout)
  serve           a test server: /echo, /broadcast, /status/<code>, misbehaving
                  endpoints under /bad/, and a web page at /
  bench <url>     a load generator: throughput, latency percentiles, errors

Options:
  -V, --version   print the version (also after any command)
  -h, --help      show this help

Run \`switchyard <command> --help\` for its options. NO_COLOR turns colours off.
`;

const COMMANDS: Record<string, (args: string[], io: Io) => Promise<number>> = {
  doctor: doctorCommand,
  connect: connectCommand,
  serve: serveCommand,
  bench: benchCommand,
};

/** The process's own streams, with an AbortSignal that fires on SIGINT/SIGTERM. */
export function processIo(): Io {
  const controller = new AbortController();
  const onSignal = () => {
    // A second Ctrl-C exits at once.
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    signal: controller.signal,
  };
}

/** Runs the command line; resolves with the exit code. */
export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    (name === undefined ? io.stderr : io.stdout).write(USAGE);
    return name === undefined ? EXIT.USAGE : EXIT.OK;
  }
  // -V/--version anywhere before a lone "--": on its own or after any command.
  const dashDash = argv.indexOf('--');
  const flags = dashDash === -1 ? argv : argv.slice(0, dashDash);
  if (flags.includes('--version') || flags.includes('-V')) {
    io.stdout.write(`switchyard ${VERSION} (node ${process.version})\n`);
    return EXIT.OK;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    io.stderr.write(`switchyard: unknown command ${JSON.stringify(name)}\n\n${USAGE}`);
    return EXIT.USAGE;
  }
  try {
    return await command(rest, io);
  } catch (error) {
    if (
      error instanceof UsageError ||
      (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      io.stderr.write(`switchyard ${name}: ${(error as Error).message}\n`);
      return EXIT.USAGE;
    }
    // A failure nobody foresaw: one line a person can read, the stack only on request.
    const e = error as Error & { code?: string };
    io.stderr.write(
      `switchyard ${name}: ${e.message ?? String(error)}${e.code ? ` (${e.code})` : ''}\n` +
        (io.env.SWITCHYARD_DEBUG === '1'
          ? `${e.stack ?? ''}\n`
          : 'This is a bug in switchyard; run again with SWITCHYARD_DEBUG=1 for details and report it.\n'),
    );
    return EXIT.PROBLEM;
  }
}
