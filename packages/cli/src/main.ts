/**
 * The `switchyard` command: doctor, connect, serve and bench. `main()` takes the arguments and
 * the streams, and resolves with the exit code, so that tests run it in-process.
 */
import { doctorCommand } from './commands/doctor.js';
import { connectCommand } from './commands/connect.js';
import { serveCommand } from './commands/serve.js';
import { benchCommand } from './commands/bench.js';
import { EXIT, UsageError, type Io } from './io.js';

export const USAGE = `Usage: switchyard <command> [options]

Commands:
  doctor <url>    diagnose a WebSocket upgrade step by step, with fixes
  connect <url>   an interactive client, or a pipe (stdin lines → messages → stdout)
  serve           a test server: /echo, /broadcast, /status/<code>, misbehaving
                  endpoints under /bad/, and a web page at /
  bench <url>     a load generator: throughput, latency percentiles, errors

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
    throw error;
  }
}
