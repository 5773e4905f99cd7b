/** `switchyard serve`: runs the test server until Ctrl-C. */
import { parseArgs } from 'node:util';
import type { Backplane } from 'switchyard';
import { startServe } from '../serve/server.js';
import { listEndpoints } from '../serve/endpoints.js';
import { createStyle, EXIT, listenAddress, type Io } from '../io.js';

type RedisModule = typeof import('@switchyard/redis');

export const SERVE_USAGE = `Usage: switchyard serve [options]

A test server and demo: a web page at /, /echo, /broadcast (a chat room),
/status/<code>, and misbehaving endpoints under /bad/ for switchyard doctor.

Options:
      --port <n>      port (default: $PORT, else 8080; 0 for any free port)
      --host <addr>   address (default: $HOST, else 127.0.0.1; 0.0.0.0 for every
                      interface, to reach the demo from other machines)
  --redis URL         share the /broadcast room with other serve processes through Redis
                      (default: REDIS_URL; none: the room is this process's own)
      --replay <n>    keep the last n /broadcast messages for clients that reconnect with
                      the resume exchange (switchyard.resume.v1, docs/resume.md); in Redis
                      Streams with --redis, so a client resumes on any instance (default: off)
  -q, --quiet         no log line per connection
  -h, --help          show this help
`;

/** What `--redis` (or REDIS_URL) prints when the optional package is not installed. */
export const MISSING_REDIS =
  'switchyard serve: --redis (or REDIS_URL) needs the optional package @switchyard/redis, ' +
  'which is not installed.\nInstall it beside @switchyard/cli: npm install @switchyard/redis ' +
  '(with -g for a global switchyard), or run without --redis for a room of this process only.\n';

/**
 * Loads `@switchyard/redis`, an optional peer dependency: only `--redis` needs it, so that
 * `serve` without it does not make every user install a Redis client. Resolves with null when
 * the package itself is not installed; any other failure (a broken install) is thrown.
 */
export async function loadRedis(
  load: () => Promise<RedisModule> = () => import('@switchyard/redis'),
): Promise<RedisModule | null> {
  try {
    return await load();
  } catch (error) {
    const { code, message } = error as { code?: string; message?: string };
    if (code === 'ERR_MODULE_NOT_FOUND' && /'@switchyard\/redis'/.test(message ?? '')) return null;
    throw error;
  }
}

/** Runs `switchyard serve`; resolves when stopped (SIGINT/SIGTERM). */
export async function serveCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      quiet: { type: 'boolean', short: 'q' },
      redis: { type: 'string' },
      replay: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    io.stdout.write(SERVE_USAGE);
    return EXIT.OK;
  }
  if (positionals.length > 0) {
    io.stderr.write(`switchyard serve: unexpected argument ${positionals[0]}\n`);
    return EXIT.USAGE;
  }
  // Loopback by default: a test server with endpoints that misbehave on purpose should not be
  // exposed by accident; --host 0.0.0.0 (or HOST) opens it up.
  const { port, host } = listenAddress(values, io.env, { port: 8080, host: '127.0.0.1' });
  const style = createStyle(io.stdout, io.env);
  const time = () => new Date().toISOString().slice(11, 23);
  // With Redis, several serve processes share the /broadcast room (pub/sub backplane).
  const redisUrl = values.redis ?? io.env.REDIS_URL;
  let backplane: Backplane | undefined;
  if (redisUrl !== undefined && redisUrl !== '') {
    const redis = await loadRedis();
    if (redis === null) {
      io.stderr.write(MISSING_REDIS);
      return EXIT.USAGE;
    }
    backplane = new redis.RedisBackplane({ url: redisUrl });
  }
  const replay = values.replay === undefined ? 0 : Number(values.replay);
  if (!Number.isSafeInteger(replay) || replay < 0) {
    io.stderr.write(
      `switchyard serve: --replay takes a number of messages, got ${values.replay}\n`,
    );
    return EXIT.USAGE;
  }
  const server = await startServe({
    port,
    host,
    backplane,
    replay,
    log:
      values.quiet === true
        ? undefined
        : (line) => io.stdout.write(`${style.dim(time())} ${line}\n`),
  });
  io.stdout.write(
    `${style.bold('switchyard serve')} on ${style.cyan(server.url)} (web page)\n` +
      listEndpoints()
        .slice(0, 3)
        .map((e) => `  ${server.wsUrl}${e.path.padEnd(16)} ${style.dim(e.description)}\n`)
        .join('') +
      `  ${server.wsUrl}/bad/...        ${style.dim(`${listEndpoints().length - 3} misbehaving endpoints, see ${server.url}endpoints.json`)}\n` +
      style.dim('Ctrl-C to stop.\n'),
  );
  if (!io.signal.aborted) {
    await new Promise<void>((resolve) =>
      io.signal.addEventListener('abort', () => resolve(), { once: true }),
    );
  }
  io.stdout.write('stopping: closing connections (1001)\n');
  await server.close();
  return EXIT.OK;
}
