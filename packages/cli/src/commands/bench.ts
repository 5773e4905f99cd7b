/**
 * `switchyard bench <url>`: a load generator for echo endpoints.
 *
 * Theory of operation. Each of `connections` connections keeps up to `inFlight` messages
 * outstanding; the endpoint echoes them in order, so a FIFO of send times per connection gives
 * each message's latency without tagging payloads. Without --rate the load is closed-loop (a
 * new message as soon as an echo returns). With --rate, sends follow a schedule and latency is
 * measured from the scheduled time, so a stalled server cannot hide its stalls by slowing the
 * sender (coordinated omission). Latencies go into an HDR histogram (hdr-histogram-js), in
 * microseconds, 3 significant digits.
 */
import { setMaxListeners } from 'node:events';
import { parseArgs } from 'node:util';
import * as hdr from 'hdr-histogram-js';
import { connect } from 'switchyard';
import { openLeanLane, type BenchConnection } from './bench-lane.js';
import { createStyle, EXIT, parseCount, parseDuration, UsageError, type Io } from '../io.js';

export const BENCH_USAGE = `Usage: switchyard bench <url> [options]

Load-tests an echo endpoint: every message sent must come back.

Options:
  -c, --connections <n>   connections (default 10)
      --in-flight <n>     messages outstanding per connection (default 1)
  -s, --size <bytes>      payload size (default 64)
      --binary            binary messages (default text)
  -d, --duration <time>   how long to send (default 10s)
  -n, --messages <n>      stop after this many messages instead
  -r, --rate <n>          target messages per second, all connections together
                          (default: as fast as echoes return)
      --compression       offer permessage-deflate
      --json              print the result as JSON
  -h, --help              show this help
`;

/** Options of {@link runBench}. */
export interface BenchOptions {
  url: string;
  connections: number;
  inFlight: number;
  size: number;
  binary: boolean;
  durationMs: number;
  /** Stop after this many messages (0: run for durationMs). */
  messages: number;
  /** Messages per second across all connections (0: closed loop). */
  rate: number;
  compression: boolean;
  /** Stop when no echo has come back for this long while messages are out. Default 5,000 ms. */
  stallMs?: number;
  signal?: AbortSignal;
  onProgress?: (p: { elapsedMs: number; received: number; rate: number; p99Ms: number }) => void;
}

/** The result of a run. */
export interface BenchResult {
  url: string;
  connections: number;
  inFlight: number;
  size: number;
  binary: boolean;
  elapsedMs: number;
  sent: number;
  received: number;
  messagesPerSecond: number;
  bytesPerSecond: number;
  latencyMs: {
    min: number;
    mean: number;
    p50: number;
    p90: number;
    p99: number;
    p999: number;
    max: number;
  };
  errors: Record<string, number>;
}

interface Lane {
  ws: BenchConnection;
  times: number[];
  head: number;
  outstanding: number;
}

/** Runs a benchmark; resolves when done. Connection failures are counted, not thrown. */
export async function runBench(options: BenchOptions): Promise<BenchResult> {
  const histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 600_000_000,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
  const errors: Record<string, number> = {};
  // Every connection's handshake listens on the one signal.
  if (options.signal !== undefined) setMaxListeners(options.connections + 16, options.signal);
  const count = (code: string) => (errors[code] = (errors[code] ?? 0) + 1);
  const payload = options.binary ? Buffer.alloc(options.size, 0x61) : 'a'.repeat(options.size);

  // Without compression, lean lanes on the core (bench-lane.ts): a fraction of the full
  // client's cost per message, so that the generator is not what limits the measurement. With
  // compression, the full client, which has the codec.
  const target = new URL(options.url);
  const open = (): Promise<BenchConnection> =>
    options.compression
      ? connect(options.url, {
          perMessageDeflate: true,
          textAsBuffer: true,
          heartbeat: false,
          logger: false,
          signal: options.signal,
        })
      : openLeanLane(target, { timeoutMs: 10_000, signal: options.signal });
  const opened = await Promise.all(
    Array.from({ length: options.connections }, () =>
      open().catch((error: Error & { code?: string }) => {
        count(error.code ?? error.message);
        return null;
      }),
    ),
  );
  const lanes: Lane[] = opened
    .filter((ws): ws is BenchConnection => ws !== null)
    .map((ws) => ({ ws, times: [], head: 0, outstanding: 0 }));

  let sent = 0;
  let received = 0;
  let stopping = false;
  const limit = options.messages > 0 ? options.messages : Infinity;
  const start = performance.now();
  const deadline = options.messages > 0 ? Infinity : start + options.durationMs;
  let scheduledNext = start;
  const interval = options.rate > 0 ? 1000 / options.rate : 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));

  const sendOn = (lane: Lane, at: number) => {
    lane.times.push(at);
    lane.outstanding++;
    sent++;
    lane.ws.send(payload);
  };
  const maybeFinish = () => {
    if ((stopping || sent >= limit) && lanes.every((l) => l.outstanding === 0)) done();
  };
  for (const lane of lanes) {
    lane.ws.on('message', () => {
      const now = performance.now();
      const t0 = lane.times[lane.head++];
      if (lane.head > 1024) {
        lane.times = lane.times.slice(lane.head);
        lane.head = 0;
      }
      lane.outstanding--;
      received++;
      histogram.recordValue(Math.max(1, Math.round((now - t0) * 1000)));
      if (!stopping && interval === 0 && sent < limit && now < deadline) sendOn(lane, now);
      maybeFinish();
    });
    lane.ws.on('error', (error: Error & { code?: string }) => count(error.code ?? error.message));
    lane.ws.on('close', (code) => {
      if (!stopping) count(`closed ${code}`);
      received += 0;
      lane.outstanding = 0;
      maybeFinish();
    });
  }

  // Closed loop: fill every lane; open loop: a 1 ms scheduler sends what is due.
  let scheduler: NodeJS.Timeout | undefined;
  if (interval === 0) {
    for (const lane of lanes) {
      for (let i = 0; i < options.inFlight && sent < limit; i++) sendOn(lane, performance.now());
    }
  } else {
    let next = 0;
    scheduler = setInterval(() => {
      const now = performance.now();
      while (scheduledNext <= now && sent < limit && now < deadline) {
        let lane: Lane | null = null;
        for (let i = 0; i < lanes.length; i++) {
          const candidate = lanes[(next + i) % lanes.length];
          if (candidate.outstanding < options.inFlight && candidate.ws.readyState === 1) {
            lane = candidate;
            next = (next + i + 1) % lanes.length;
            break;
          }
        }
        if (lane === null) break; // every lane full: the backlog is sent later, timed from schedule
        sendOn(lane, scheduledNext);
        scheduledNext += interval;
      }
    }, 1);
  }
  const stallMs = options.stallMs ?? 5000;
  let lastReceived = 0;
  let lastProgressAt = start;
  let lastReport = start;
  const progress = setInterval(
    () => {
      const now = performance.now();
      if (received !== lastReceived || lanes.every((l) => l.outstanding === 0)) {
        lastReceived = received;
        lastProgressAt = now;
      } else if (now - lastProgressAt >= stallMs) {
        errors.stalled = 1;
        stop();
      }
      if (now - lastReport >= 1000) {
        lastReport = now;
        const elapsedMs = now - start;
        options.onProgress?.({
          elapsedMs,
          received,
          rate: received / (elapsedMs / 1000),
          p99Ms: histogram.getValueAtPercentile(99) / 1000,
        });
      }
      if (now >= deadline) stop();
    },
    Math.min(1000, Math.max(10, stallMs / 2)),
  );
  const stop = () => {
    if (stopping) return;
    stopping = true;
    clearInterval(scheduler);
    maybeFinish();
    // Echoes still outstanding get 2 s, then count as lost.
    setTimeout(done, 2000).unref();
  };
  const stopTimer = Number.isFinite(deadline) ? setTimeout(stop, options.durationMs) : undefined;
  options.signal?.addEventListener('abort', stop, { once: true });
  if (lanes.length === 0) stop();
  await finished;
  const elapsedMs = performance.now() - start;
  stopping = true;
  clearInterval(progress);
  clearInterval(scheduler);
  clearTimeout(stopTimer);
  const lost = sent - received;
  if (lost > 0) errors['no echo'] = lost;
  await Promise.all(
    lanes.map(
      (lane) =>
        new Promise<void>((resolve) => {
          if (lane.ws.readyState === 3) return resolve();
          lane.ws.once('close', () => resolve());
          lane.ws.close(1000, '');
          setTimeout(() => {
            lane.ws.terminate();
            resolve();
          }, 1000).unref();
        }),
    ),
  );
  const ms = (v: number) => Math.round(v) / 1000;
  const result: BenchResult = {
    url: options.url,
    connections: options.connections,
    inFlight: options.inFlight,
    size: options.size,
    binary: options.binary,
    elapsedMs: Math.round(elapsedMs),
    sent,
    received,
    messagesPerSecond: Math.round(received / (elapsedMs / 1000)),
    bytesPerSecond: Math.round((received * options.size) / (elapsedMs / 1000)),
    latencyMs: {
      min: received === 0 ? 0 : ms(histogram.minNonZeroValue),
      mean: ms(histogram.mean),
      p50: ms(histogram.getValueAtPercentile(50)),
      p90: ms(histogram.getValueAtPercentile(90)),
      p99: ms(histogram.getValueAtPercentile(99)),
      p999: ms(histogram.getValueAtPercentile(99.9)),
      max: ms(histogram.maxValue),
    },
    errors,
  };
  histogram.destroy();
  return result;
}

function formatNumber(n: number): string {
  return n.toLocaleString('en-US');
}

/** Runs `switchyard bench`. */
export async function benchCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      connections: { type: 'string', short: 'c' },
      'in-flight': { type: 'string' },
      size: { type: 'string', short: 's' },
      binary: { type: 'boolean' },
      duration: { type: 'string', short: 'd' },
      messages: { type: 'string', short: 'n' },
      rate: { type: 'string', short: 'r' },
      compression: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    io.stdout.write(BENCH_USAGE);
    return EXIT.OK;
  }
  if (positionals.length !== 1) throw new UsageError('bench takes exactly one URL');
  const options: BenchOptions = {
    url: positionals[0],
    connections: parseCount(values.connections, 'connections', 10),
    inFlight: parseCount(values['in-flight'], 'in-flight', 1),
    size: parseCount(values.size, 'size', 64),
    binary: values.binary === true,
    durationMs: parseDuration(values.duration, 'duration', 10_000),
    messages: parseCount(values.messages, 'messages', 0),
    rate: parseCount(values.rate, 'rate', 0),
    compression: values.compression === true,
    signal: io.signal,
  };
  if (options.connections < 1 || options.inFlight < 1) {
    throw new UsageError('--connections and --in-flight must be at least 1');
  }
  try {
    new URL(options.url);
  } catch {
    throw new UsageError(`invalid URL ${options.url}`);
  }
  const style = createStyle(io.stderr, io.env);
  if (io.stderr.isTTY === true && values.json !== true) {
    options.onProgress = (p) =>
      io.stderr.write(
        `\r\u001b[2K${style.dim(`${(p.elapsedMs / 1000).toFixed(0)} s  ${formatNumber(p.received)} echoes  ${formatNumber(Math.round(p.rate))} msg/s  p99 ${p.p99Ms.toFixed(2)} ms`)}`,
      );
  }
  const result = await runBench(options);
  if (options.onProgress !== undefined) io.stderr.write('\r\u001b[2K');
  if (values.json === true) {
    io.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } else {
    const out = createStyle(io.stdout, io.env);
    const l = result.latencyMs;
    const errorText = Object.entries(result.errors)
      .map(([code, n]) => `${code} ×${n}`)
      .join(', ');
    io.stdout.write(
      `${out.bold(`switchyard bench ${result.url}`)}\n` +
        `  ${result.connections} connections × ${result.inFlight} in flight, ${result.size} B ${result.binary ? 'binary' : 'text'}, ${(result.elapsedMs / 1000).toFixed(1)} s${options.rate > 0 ? `, target ${formatNumber(options.rate)} msg/s` : ''}\n\n` +
        `  messages   ${formatNumber(result.sent)} sent, ${formatNumber(result.received)} echoed\n` +
        `  throughput ${out.bold(formatNumber(result.messagesPerSecond))} msg/s, ${(result.bytesPerSecond / 1e6).toFixed(2)} MB/s each way\n` +
        `  latency    p50 ${l.p50} ms  p90 ${l.p90} ms  p99 ${out.bold(String(l.p99))} ms  p99.9 ${l.p999} ms  max ${l.max} ms  (mean ${l.mean.toFixed(3)} ms)\n` +
        `  errors     ${errorText === '' ? out.green('none') : out.red(errorText)}\n`,
    );
  }
  return Object.keys(result.errors).length === 0 && result.received > 0 ? EXIT.OK : EXIT.PROBLEM;
}
