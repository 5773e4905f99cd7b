/**
 * `npm run bench`: Switchyard against ws (pure JS and with its native addons) and, when the
 * `bun` binary is there, Bun, on the scenarios of the "Faster than ws" issue; then the
 * microbenchmarks of the core's hot paths.
 *
 * Theory of operation. Each run starts a fresh server process pinned to core 0 (taskset, where
 * it exists) and drives it with the C load generator (bench/loadgen.c, compiled here with
 * `cc -O2`) pinned to core 1. Servers take turns (A B C A B C …) so that drift of the machine
 * hits all of them alike. The report gives the median of the runs, their spread, the CPU used
 * by server and generator (a generator near 100% would make the figure its own), and the ratio
 * of Switchyard to each other server, against the issue's targets. Nothing here is asserted by
 * a test: the smoke test only checks the report's shape.
 *
 * Scaling curves (`curves`, in a full run or with `--curves`): 32-byte echo against 10 to 10,000
 * connections, fan-out against 100 to 10,000 subscribers, memory against 1,000 to 15,000 idle
 * connections, one run per point and server, drawn as SVG charts in bench/charts/ (bench/svg.ts).
 * SWITCHYARD_BENCH_CURVE_SCALE=0.1 scales every count down for a quick check.
 *
 * Usage: npm run bench -- [--quick] [--scenario a,b] [--runs N] [--targets a,b] [--no-micro]
 *        [--micro-only] [--curves | --no-curves] [--out file.json]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { constants as zlibConstants, deflateRawSync } from 'node:zlib';
import { type Curve, writeCharts } from './svg.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');

// ---- arguments ---------------------------------------------------------------------------------

interface Args {
  quick: boolean;
  scenarios: string[] | null;
  runs: number;
  targets: string[] | null;
  micro: boolean;
  load: boolean;
  curves: boolean | null;
  out: string | null;
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    quick: false,
    scenarios: null,
    runs: 3,
    targets: null,
    micro: true,
    load: true,
    curves: null,
    out: null,
  };
  let runsGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') args.quick = true;
    else if (a === '--scenario' || a === '--scenarios')
      args.scenarios = [...(args.scenarios ?? []), ...value().split(',')];
    else if (a === '--runs') {
      args.runs = Math.max(1, Math.min(20, Number(value()) | 0));
      runsGiven = true;
    } else if (a === '--targets') args.targets = value().split(',');
    else if (a === '--no-micro') args.micro = false;
    else if (a === '--curves') args.curves = true;
    else if (a === '--no-curves') args.curves = false;
    else if (a === '--micro-only') args.load = false;
    else if (a === '--out') args.out = value();
    else if (a === '--help' || a === '-h') {
      console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0]);
      process.exit(0);
    } else throw new Error(`unknown argument ${a} (try --help)`);
  }
  if (args.quick && !runsGiven) args.runs = 1;
  return args;
}

// ---- the machine -------------------------------------------------------------------------------

function run(cmd: string, argv: string[]): string | null {
  const r = spawnSync(cmd, argv, { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return r.status === 0 ? r.stdout.trim() : null;
}

const hasTaskset = run('taskset', ['-c', '0', 'true']) !== null && cpus().length >= 2;

function machine() {
  const dirty = run('git', ['status', '--porcelain', '--untracked-files=no']);
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    node: process.version,
    commit: (run('git', ['rev-parse', '--short', 'HEAD']) ?? 'unknown') + (dirty ? '-dirty' : ''),
    pinned: hasTaskset,
    loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

// ---- the load generator ------------------------------------------------------------------------

interface Generator {
  kind: 'c' | 'node';
  argv: string[];
  note: string;
}

export function buildGenerator(): Generator {
  const source = join(here, 'loadgen.c');
  const hash = createHash('sha1').update(readFileSync(source)).digest('hex').slice(0, 12);
  const dir = join(tmpdir(), 'switchyard-bench');
  const binary = join(dir, `loadgen-${hash}`);
  if (!existsSync(binary)) {
    mkdirSync(dir, { recursive: true });
    const cc = spawnSync('cc', ['-O2', '-o', binary, source], { encoding: 'utf8' });
    if (cc.status !== 0) {
      const why = cc.error ? cc.error.message : cc.stderr.trim().split('\n')[0];
      if (!existsSync(join(here, 'loadgen-node.ts'))) {
        // The Node fallback generator is not written yet (see bench/README.md).
        throw new Error(
          `No C compiler (${why}): the load scenarios need one (apt-get install gcc). ` +
            'Use --micro-only for the microbenchmarks.',
        );
      }
      return {
        kind: 'node',
        argv: [process.execPath, '--import', 'tsx', join(here, 'loadgen-node.ts')],
        note: `No C compiler (${why}): the Node load generator is used. It costs about as much per message as a server, so throughput figures are bounded by it; compare ratios, not absolute figures.`,
      };
    }
  }
  return { kind: 'c', argv: [binary], note: 'C load generator (epoll, pipelined frames)' };
}

function pinned(core: number, argv: string[]): string[] {
  return hasTaskset ? ['taskset', '-c', String(core), ...argv] : argv;
}

interface GenResult {
  mode: string;
  seconds: number;
  messages: number;
  bytes: number;
  handshakes: number;
  errors: number;
  cpuSeconds: number;
}

/** Runs the generator to its end (bounded by a timeout) and returns its JSON report. */
function runGenerator(gen: Generator, argv: string[], timeoutMs: number): Promise<GenResult> {
  return new Promise((resolve, reject) => {
    const [cmd, ...rest] = pinned(1, [...gen.argv, ...argv]);
    const child = spawn(cmd, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as GenResult);
      } catch {
        reject(new Error(`load generator failed (exit ${code}): ${err.trim() || out.trim()}`));
      }
    });
  });
}

// ---- the servers -------------------------------------------------------------------------------

interface Target {
  name: string;
  title: string;
  argv: string[];
  env: NodeJS.ProcessEnv;
}

function resolveModule(name: string): boolean {
  try {
    import.meta.resolve(name);
    return true;
  } catch {
    return false;
  }
}

function findBun(): string | null {
  const local = join(root, 'node_modules', '.bin', 'bun');
  for (const candidate of [process.env.BUN_BINARY, local, 'bun']) {
    if (candidate && run(candidate, ['--version']) !== null) return candidate;
  }
  return null;
}

export function availableTargets(): { targets: Target[]; notes: string[] } {
  const node = [process.execPath, '--expose-gc', '--import', 'tsx'];
  const noAddons = { ...process.env, WS_NO_BUFFER_UTIL: '1', WS_NO_UTF_8_VALIDATE: '1' };
  const notes: string[] = [];
  const targets: Target[] = [
    {
      name: 'switchyard',
      title: 'Switchyard',
      argv: [...node, join(here, 'servers', 'switchyard.ts')],
      env: process.env,
    },
    {
      name: 'ws',
      title: 'ws',
      argv: [...node, join(here, 'servers', 'ws-server.ts')],
      env: noAddons,
    },
    {
      // The least a WebSocket server on node:net can do (servers/floor.ts): what Node's own
      // sockets cost, the measuring stick for the targets set against it.
      name: 'floor',
      title: 'Node floor',
      argv: [...node, join(here, 'servers', 'floor.ts')],
      env: process.env,
    },
  ];
  if (resolveModule('bufferutil') && resolveModule('utf-8-validate')) {
    const env = { ...process.env };
    delete env.WS_NO_BUFFER_UTIL;
    delete env.WS_NO_UTF_8_VALIDATE;
    targets.push({
      name: 'ws-native',
      title: 'ws+addons',
      argv: [...node, join(here, 'servers', 'ws-server.ts')],
      env,
    });
  } else notes.push('bufferutil/utf-8-validate not installed: no ws+addons column.');
  const bun = findBun();
  if (bun !== null) {
    targets.push({
      name: 'bun',
      title: `Bun ${run(bun, ['--version'])}`,
      argv: [bun, join(here, 'servers', 'bun-server.ts')],
      env: process.env,
    });
  } else notes.push('no bun binary (npm package `bun`): no Bun column.');
  return { targets, notes };
}

interface Server {
  port: number;
  pid: number;
  /** Sends a control line and resolves with the next JSON line the server prints. */
  ask(line: string): Promise<Record<string, number>>;
  /** CPU seconds (user + system) used so far, from /proc; NaN where there is none. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

const CLOCK_TICKS = Number(run('getconf', ['CLK_TCK']) ?? 100) || 100;

export function startServer(target: Target, extra: string[]): Promise<Server> {
  return new Promise((resolve, reject) => {
    const [cmd, ...rest] = pinned(0, [...target.argv, ...extra]);
    const child: ChildProcess = spawn(cmd, rest, {
      cwd: root,
      env: target.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d));
    const lines = createInterface({ input: child.stdout! });
    const waiting: Array<(v: Record<string, number>) => void> = [];
    let started = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${target.name} did not start in 20 s: ${stderr.trim()}`));
    }, 20_000);
    child.on('exit', (code) => {
      if (!started) {
        clearTimeout(timer);
        reject(new Error(`${target.name} exited (${code}) before listening: ${stderr.trim()}`));
      }
    });
    lines.on('line', (line) => {
      let msg: Record<string, number>;
      try {
        msg = JSON.parse(line) as Record<string, number>;
      } catch {
        return; // Anything a server prints besides its JSON lines is not ours to parse.
      }
      if (!started && typeof msg.port === 'number') {
        started = true;
        clearTimeout(timer);
        const pid = child.pid!;
        resolve({
          port: msg.port,
          pid,
          ask(command) {
            return new Promise((res, rej) => {
              const t = setTimeout(
                () => rej(new Error(`${target.name}: no answer to ${command}`)),
                30_000,
              );
              waiting.push((v) => {
                clearTimeout(t);
                res(v);
              });
              child.stdin!.write(`${command}\n`);
            });
          },
          cpuSeconds() {
            try {
              const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
              const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
              return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
            } catch {
              return NaN;
            }
          },
          stop() {
            return new Promise((res) => {
              if (child.exitCode !== null || child.signalCode !== null) return res();
              const kill = setTimeout(() => child.kill('SIGKILL'), 3000);
              child.once('exit', () => {
                clearTimeout(kill);
                res();
              });
              child.stdin!.end();
              child.kill('SIGTERM');
            });
          },
        });
      } else waiting.shift()?.(msg);
    });
  });
}

// ---- the scenarios -----------------------------------------------------------------------------

interface Sample {
  value: number;
  serverCpu: number;
  generatorCpu: number;
  errors: number;
}

interface Scenario {
  name: string;
  title: string;
  unit: string;
  better: 'higher' | 'lower';
  params: Record<string, number>;
  /** The issue's target: Switchyard / `against` must be >= min (or <= max). */
  target: { against: string; min?: number; max?: number };
  serverArgs?: string[];
  /** Servers that cannot run this scenario (the floor speaks no permessage-deflate). */
  skip?: string[];
  measure(server: Server, gen: Generator): Promise<Sample>;
}

function scenarios(quick: boolean): Scenario[] {
  const warmup = quick ? 0.3 : 1;
  const duration = quick ? 0.7 : 4;
  const limit = (warmup + duration) * 1000 + 30_000;
  const timed =
    (mode: string, params: Record<string, number>, extra: string[] = []) =>
    async (server: Server, gen: Generator): Promise<GenResult & { serverCpu: number }> => {
      const argv = [mode, '--port', String(server.port), ...extra];
      for (const [k, v] of Object.entries(params)) argv.push(`--${k}`, String(v));
      argv.push('--warmup', String(warmup), '--duration', String(duration));
      // Server CPU is sampled over the whole run; warm-up is short next to the measured part.
      const cpu0 = server.cpuSeconds();
      const t0 = performance.now();
      const r = await runGenerator(gen, argv, limit);
      const serverCpu = (server.cpuSeconds() - cpu0) / ((performance.now() - t0) / 1000);
      return { ...r, serverCpu };
    };
  const share = (r: GenResult) => (r.seconds > 0 ? r.cpuSeconds / r.seconds : 0);

  const echo32 = { conns: quick ? 10 : 100, inflight: 16, size: 32 };
  const echo64k = { conns: quick ? 2 : 10, inflight: 4, size: 65536 };
  const hs = { conns: quick ? 10 : 50 };
  const idle = { conns: quick ? 200 : 10_000 };
  const fan = { conns: quick ? 50 : 1000, inflight: 16, size: 64 };
  const deflate = { conns: quick ? 10 : 50, inflight: 4, size: 4096 };
  const list: Scenario[] = [
    {
      name: 'echo-32b',
      title: 'echo, 32-byte text',
      unit: 'msg/s',
      better: 'higher',
      params: echo32,
      target: { against: 'floor', min: 0.9 },
      async measure(server, gen) {
        const r = await timed('echo', echo32)(server, gen);
        return sample(r.messages / r.seconds, r.serverCpu, share(r), r.errors);
      },
    },
    {
      name: 'echo-64k',
      title: 'echo, 64 KiB binary',
      unit: 'MB/s',
      better: 'higher',
      params: echo64k,
      target: { against: 'ws-native', min: 1.2 },
      async measure(server, gen) {
        const r = await timed('echo', echo64k, ['--binary'])(server, gen);
        return sample(r.bytes / r.seconds / 1e6, r.serverCpu, share(r), r.errors);
      },
    },
    {
      name: 'handshakes',
      title: 'handshakes (upgrade + close)',
      unit: '/s',
      better: 'higher',
      params: hs,
      target: { against: 'floor', min: 0.95 },
      async measure(server, gen) {
        const r = await timed('handshake', hs)(server, gen);
        return sample(r.handshakes / r.seconds, r.serverCpu, share(r), r.errors);
      },
    },
    {
      name: 'memory-idle',
      title: 'memory per idle connection',
      unit: 'KB',
      better: 'lower',
      params: idle,
      target: { against: 'floor', max: 1.15 },
      measure: (server, gen) => measureIdle(server, gen, idle.conns),
    },
    {
      name: 'fanout',
      title: 'fan-out, 1 → N subscribers, 64 B',
      unit: 'deliveries/s',
      better: 'higher',
      params: fan,
      target: { against: 'bun', min: 1 },
      async measure(server, gen) {
        const r = await timed('fanout', fan, ['--binary'])(server, gen);
        return sample(r.messages / r.seconds, r.serverCpu, share(r), r.errors);
      },
    },
  ];
  if (supportsDeflate()) {
    const compressed = deflatedSample(deflate.size);
    list.push({
      name: 'echo-deflate',
      title: 'echo, 4 KiB JSON text, permessage-deflate',
      unit: 'msg/s',
      better: 'higher',
      params: { conns: deflate.conns, inflight: deflate.inflight, size: deflate.size },
      target: { against: 'ws', min: 3 },
      serverArgs: ['--deflate'],
      skip: ['floor'],
      async measure(server, gen) {
        const { size: _size, ...params } = deflate;
        const r = await timed('echo', params, ['--deflate-hex', compressed])(server, gen);
        return sample(r.messages / r.seconds, r.serverCpu, share(r), r.errors);
      },
    });
  }
  return list;
}

/** Whether the library has the `perMessageDeflate` option yet (another work item adds it). */
function supportsDeflate(): boolean {
  try {
    return readFileSync(join(root, 'packages/switchyard/src/node/server.ts'), 'utf8').includes(
      'perMessageDeflate',
    );
  } catch {
    return false;
  }
}

/**
 * A 4 KiB JSON-like text, compressed once as a client without context takeover would send it
 * (RFC 7692 §7.2.1: deflate, then drop the final empty block's 00 00 ff ff), in hex for the
 * generator. Pseudo-random values keep it from compressing absurdly well.
 */
function deflatedSample(size: number): string {
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  let text = '[';
  while (text.length < size - 80) {
    text += `{"id":${Math.floor(rand() * 1e6)},"price":${(rand() * 1000).toFixed(2)},"side":"${rand() < 0.5 ? 'buy' : 'sell'}"},`;
  }
  text = `${text.slice(0, -1)}]`.padEnd(size, ' ');
  const out = deflateRawSync(Buffer.from(text), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
  return out.subarray(0, out.length - 4).toString('hex');
}

function sample(value: number, serverCpu: number, generatorCpu: number, errors: number): Sample {
  return { value: Number.isFinite(value) ? value : 0, serverCpu, generatorCpu, errors };
}

/** RSS after GC with N idle connections open, minus RSS after GC before, per connection. */
export async function measureIdle(
  server: Server,
  gen: Generator,
  conns: number,
): Promise<Sample & { heapPerConn: number }> {
  const before = await server.ask('mem');
  const [cmd, ...rest] = pinned(1, [
    ...gen.argv,
    'idle',
    '--port',
    String(server.port),
    '--conns',
    String(conns),
  ]);
  const child = spawn(cmd, rest, { stdio: ['pipe', 'pipe', 'pipe'] });
  const killer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  try {
    const ready = await new Promise<{ ready: number; errors: number }>((resolve, reject) => {
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d));
      createInterface({ input: child.stdout }).once('line', (line) => {
        try {
          resolve(JSON.parse(line) as { ready: number; errors: number });
        } catch {
          reject(new Error(`idle generator: ${line}`));
        }
      });
      child.once('exit', (code) =>
        reject(new Error(`idle generator exited (${code}): ${err.trim()}`)),
      );
    });
    // Let the server finish whatever the last handshakes started before measuring.
    await new Promise((r) => setTimeout(r, 300));
    const after = await server.ask('mem');
    const perConn = (after.rss - before.rss) / Math.max(1, ready.ready) / 1000;
    const heapPerConn = (after.heapUsed - before.heapUsed) / Math.max(1, ready.ready) / 1000;
    return {
      ...sample(perConn, NaN, NaN, ready.errors + (conns - ready.ready)),
      heapPerConn,
    };
  } finally {
    child.stdin.end('done\n');
    await new Promise<void>((r) => {
      if (child.exitCode !== null || child.signalCode !== null) r();
      else child.once('exit', () => r());
    });
    clearTimeout(killer);
  }
}

// ---- statistics and the report -----------------------------------------------------------------

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function round(x: number, digits = 3): number {
  if (!Number.isFinite(x)) return x;
  const p = 10 ** Math.max(0, digits - Math.ceil(Math.log10(Math.abs(x) + 1e-12)));
  return Math.round(x * p) / p;
}

interface TargetSummary {
  runs: number[];
  median: number;
  min: number;
  max: number;
  spreadPct: number;
  serverCpu: number;
  generatorCpu: number;
  /** The figure per second of server CPU: robust when the machine is shared (see the report). */
  perServerCpu: number | null;
  errors: number;
}

function summarize(samples: Sample[]): TargetSummary {
  const values = samples.map((s) => s.value);
  const med = median(values);
  const cpuMed = (xs: number[]) => {
    const finite = xs.filter(Number.isFinite);
    return finite.length ? round(median(finite), 2) : null;
  };
  return {
    runs: values.map((v) => round(v, 4)),
    median: round(med, 4),
    min: round(Math.min(...values), 4),
    max: round(Math.max(...values), 4),
    spreadPct: med > 0 ? round(((Math.max(...values) - Math.min(...values)) / med) * 100, 2) : 0,
    serverCpu: cpuMed(samples.map((s) => s.serverCpu)) as number,
    perServerCpu: (() => {
      const xs = samples.filter((s) => s.serverCpu > 0).map((s) => s.value / s.serverCpu);
      return xs.length ? round(median(xs), 4) : null;
    })(),
    generatorCpu: cpuMed(samples.map((s) => s.generatorCpu)) as number,
    errors: samples.reduce((a, s) => a + s.errors, 0),
  };
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return '-';
  if (x >= 100) return Math.round(x).toLocaleString('en-US');
  return x.toPrecision(3);
}

function verdict(s: Scenario, ratios: Record<string, number>) {
  const ratio = ratios[s.target.against];
  if (ratio === undefined || !Number.isFinite(ratio)) {
    return {
      against: s.target.against,
      ratio: null,
      met: null,
      note: `no ${s.target.against} figure`,
    };
  }
  if (s.target.min !== undefined) {
    const met = ratio >= s.target.min;
    return {
      against: s.target.against,
      want: `>= ${s.target.min}x`,
      ratio: round(ratio, 3),
      met,
      note: met
        ? 'met'
        : `missed: ${round(ratio, 3)}x, needs ${round(s.target.min / ratio, 3)}x more`,
    };
  }
  const max = s.target.max as number;
  const met = ratio <= max;
  return {
    against: s.target.against,
    want: `<= ${max}x`,
    ratio: round(ratio, 3),
    met,
    note: met ? 'met' : `missed: ${round(ratio, 3)}x, needs ${round(ratio / max, 3)}x less`,
  };
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [
    line(rows[0]),
    `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`,
    ...rows.slice(1).map(line),
  ].join('\n');
}

// ---- main --------------------------------------------------------------------------------------

async function runMicro(quick: boolean): Promise<unknown> {
  const argv = pinned(0, [
    process.execPath,
    '--import',
    'tsx',
    join(here, 'micro.ts'),
    '--json',
    ...(quick ? ['--quick'] : []),
  ]);
  const r = spawnSync(argv[0], argv.slice(1), { cwd: root, encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`microbenchmarks failed: ${r.stderr || r.error?.message}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() as string);
}

/**
 * How cost grows with the number of connections: one run per point and server, servers taking
 * turns at each point. Counts scale with SWITCHYARD_BENCH_CURVE_SCALE (default 1).
 */
async function runCurves(
  targets: Target[],
  gen: Generator,
  quick: boolean,
  log: (s: string) => void,
): Promise<Curve[]> {
  const scale = Number(process.env.SWITCHYARD_BENCH_CURVE_SCALE ?? 1) || 1;
  const n = (x: number) => Math.max(2, Math.round(x * scale));
  const warmup = quick ? 0.3 : 1;
  const duration = quick ? 0.7 : 3;
  const timed = async (
    server: Server,
    mode: string,
    params: Record<string, number>,
    extra: string[],
  ) => {
    const argv = [mode, '--port', String(server.port), ...extra];
    for (const [k, v] of Object.entries(params)) argv.push(`--${k}`, String(v));
    argv.push('--warmup', String(warmup), '--duration', String(duration));
    return runGenerator(gen, argv, (warmup + duration) * 1000 + 60_000);
  };
  const specs: Array<{
    curve: Omit<Curve, 'points'>;
    xs: number[];
    measure: (server: Server, x: number) => Promise<number>;
  }> = [
    {
      curve: {
        name: 'curve-echo',
        title: 'echo, 32-byte text, 4 in flight per connection',
        xLabel: 'connections',
        unit: 'msg/s',
      },
      xs: [10, 100, 1000, 10_000].map(n),
      measure: async (server, x) => {
        const r = await timed(server, 'echo', { conns: x, inflight: 4, size: 32 }, []);
        return r.messages / r.seconds;
      },
    },
    {
      curve: {
        name: 'curve-fanout',
        title: 'fan-out, 64 B, 16 publishes in flight',
        xLabel: 'subscribers',
        unit: 'deliveries/s',
      },
      xs: [100, 1000, 10_000].map(n),
      measure: async (server, x) => {
        const r = await timed(server, 'fanout', { conns: x, inflight: 16, size: 64 }, ['--binary']);
        return r.messages / r.seconds;
      },
    },
    {
      curve: {
        name: 'curve-idle',
        title: 'memory per idle connection (RSS after GC)',
        xLabel: 'idle connections',
        unit: 'KB per connection',
      },
      xs: [1000, 5000, 15_000].map(n),
      measure: async (server, x) => (await measureIdle(server, gen, x)).value,
    },
  ];
  const curves: Curve[] = [];
  // SWITCHYARD_BENCH_CURVES=curve-echo,curve-idle runs some of them.
  const only = process.env.SWITCHYARD_BENCH_CURVES?.split(',');
  for (const spec of specs.filter((sp) => !only || only.includes(sp.curve.name))) {
    const curve: Curve = { ...spec.curve, points: [] };
    for (const x of spec.xs) {
      const values: Record<string, number> = {};
      for (const t of targets) {
        const server = await startServer(t, []);
        try {
          values[t.name] = round(await spec.measure(server, x), 4);
          log(`  ${curve.name} ${t.name} at ${x}: ${fmt(values[t.name])} ${curve.unit}`);
        } catch (error) {
          log(`  ${curve.name} ${t.name} at ${x}: failed (${(error as Error).message})`);
        } finally {
          await server.stop();
        }
      }
      curve.points.push({ x, values });
    }
    curves.push(curve);
  }
  return curves;
}

/** Echo over HTTP/2 (RFC 8441) beside HTTP/1.1, Switchyard on both ends (bench/h2-echo.ts). */
async function runH2(quick: boolean): Promise<unknown> {
  const argv = pinned(0, [
    process.execPath,
    '--import',
    'tsx',
    join(here, 'h2-echo.ts'),
    '--json',
    ...(quick ? ['--seconds', '1', '--runs', '1'] : ['--seconds', '3', '--runs', '3']),
  ]);
  const r = spawnSync(argv[0], argv.slice(1), { cwd: root, encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`HTTP/2 echo failed: ${r.stderr || r.error?.message}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() as string);
}

/** Resumable against plain topics, in a process of its own (bench/resume.ts). */
function runResume(quick: boolean): unknown {
  const argv = ['--conditions=switchyard-source', '--expose-gc', '--import', 'tsx'];
  const r = spawnSync(
    process.execPath,
    [...argv, join(here, 'resume.ts'), '--json', ...(quick ? ['--quick'] : [])],
    {
      cwd: root,
      encoding: 'utf8',
      timeout: 600_000,
    },
  );
  if (r.status !== 0) throw new Error(`resume bench failed: ${r.stderr || r.error?.message}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() as string);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const started = new Date();
  const info = machine();
  const log = (s: string) => process.stderr.write(`${s}\n`);
  log(
    `switchyard bench${args.quick ? ' (quick)' : ''}: ${info.cpu}, ${info.cores} cores, Node ${info.node}, ${info.commit}`,
  );
  if (!hasTaskset) log('note: no taskset (or one core): server and generator are not pinned.');

  const report: Record<string, unknown> = {
    schema: 1,
    startedAt: started.toISOString(),
    quick: args.quick,
    machine: info,
    notes: [] as string[],
  };
  const notes = report.notes as string[];

  if (args.load) {
    const gen = buildGenerator();
    if (gen.kind === 'node') notes.push(gen.note);
    report.generator = { kind: gen.kind, note: gen.note };
    const avail = availableTargets();
    notes.push(...avail.notes);
    let targets = avail.targets;
    if (args.targets) targets = targets.filter((t) => args.targets!.includes(t.name));
    else if (args.quick)
      targets = targets.filter((t) => ['switchyard', 'ws', 'floor'].includes(t.name));
    if (!targets.some((t) => t.name === 'switchyard'))
      throw new Error('switchyard must be among --targets');
    report.targets = targets.map((t) => ({ name: t.name, title: t.title }));

    let list = scenarios(args.quick);
    if (args.scenarios) {
      const unknown = args.scenarios.filter(
        (n) => !list.some((s) => s.name === n) && !['micro', 'h2', 'curves', 'resume'].includes(n),
      );
      if (unknown.length)
        throw new Error(
          `unknown scenario ${unknown.join(', ')}: ${list.map((s) => s.name).join(', ')}, h2, resume, micro`,
        );
      list = list.filter((s) => args.scenarios!.includes(s.name));
      if (args.scenarios.includes('curves')) args.curves ??= true;
      if (!args.scenarios.includes('micro')) args.micro = false;
    }
    if (!supportsDeflate()) {
      notes.push('compressed echo: not run, the library has no perMessageDeflate option yet.');
    }

    const out: unknown[] = [];
    for (const s of list) {
      const running = targets.filter((t) => !s.skip?.includes(t.name));
      const samples = new Map<string, Sample[]>(running.map((t) => [t.name, []]));
      for (let r = 0; r < args.runs; r++) {
        for (const t of running) {
          const server = await startServer(t, s.serverArgs ?? []);
          try {
            const smp = await s.measure(server, gen);
            samples.get(t.name)!.push(smp);
            log(
              `  ${s.name} ${t.name} run ${r + 1}/${args.runs}: ${fmt(smp.value)} ${s.unit}` +
                (Number.isFinite(smp.serverCpu)
                  ? ` (server cpu ${Math.round(smp.serverCpu * 100)}%, generator ${Math.round(smp.generatorCpu * 100)}%)`
                  : '') +
                (smp.errors ? `, ${smp.errors} errors` : ''),
            );
          } finally {
            await server.stop();
          }
        }
      }
      const results: Record<string, TargetSummary> = {};
      for (const [name, smp] of samples) results[name] = summarize(smp);
      const ours = results.switchyard.median;
      const ratios: Record<string, number> = {};
      for (const t of running) {
        if (t.name !== 'switchyard' && results[t.name].median > 0)
          ratios[t.name] = round(ours / results[t.name].median, 3);
      }
      const ratiosPerCpu: Record<string, number> = {};
      for (const t of running) {
        const theirs = results[t.name].perServerCpu;
        const mine = results.switchyard.perServerCpu;
        if (t.name !== 'switchyard' && theirs && mine)
          ratiosPerCpu[t.name] = round(mine / theirs, 3);
      }
      const busy = Object.values(results).filter((r) => r.serverCpu !== null && r.serverCpu < 0.8);
      if (busy.length) {
        notes.push(
          `${s.name}: a server got less than 80% of a core (${Object.entries(results)
            .map(
              ([n, r]) =>
                `${n} ${r.serverCpu === null ? '-' : Math.round(r.serverCpu * 100) + '%'}`,
            )
            .join(
              ', ',
            )}): the machine was busy or the server waits on the network; the per-CPU-second ratios are the fairer comparison.`,
        );
      }
      out.push({
        name: s.name,
        title: s.title,
        unit: s.unit,
        better: s.better,
        params: s.params,
        results,
        ratios,
        ratiosPerCpu,
        target: verdict(s, ratios),
        stretch:
          ratios.bun === undefined
            ? null
            : {
                against: 'bun',
                want: s.better === 'higher' ? '>= 0.5x' : '<= 2x',
                ratio: ratios.bun,
                met: s.better === 'higher' ? ratios.bun >= 0.5 : ratios.bun <= 2,
              },
      });
    }
    report.scenarios = out;

    if (args.curves ?? (!args.quick && args.scenarios === null)) {
      report.curves = await runCurves(targets, gen, args.quick, log);
      if (!args.quick && args.out === null) {
        for (const f of writeCharts(report, join(here, 'charts')))
          log(`chart written to ${relative(process.cwd(), f)}`);
      }
    }
  }

  if (args.load && (args.scenarios === null || args.scenarios.includes('h2'))) {
    log('  echo over HTTP/2 beside HTTP/1.1…');
    report.h2 = await runH2(args.quick);
  }

  if (args.load && (args.scenarios === null || args.scenarios.includes('resume'))) {
    log('  resumable topics against plain topics (bench/resume.ts)…');
    report.resume = runResume(args.quick);
    log(`  ${JSON.stringify(report.resume)}`);
  }

  if (args.micro) {
    log('  microbenchmarks…');
    report.micro = await runMicro(args.quick);
  }

  const text = renderReport(report);
  process.stdout.write(`${text}\n`);
  const file =
    args.out ??
    (args.quick
      ? join(tmpdir(), 'switchyard-bench', 'quick.json')
      : join(here, 'results', `${started.toISOString().slice(0, 10)}-${info.commit}.json`));
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(report, null, 1)}\n`);
  log(`report written to ${relative(process.cwd(), file) || file}`);
}

/** The human report: a Markdown table per part, as bench/README.md shows it. */
export function renderReport(report: Record<string, unknown>): string {
  const parts: string[] = [];
  const m = report.machine as ReturnType<typeof machine>;
  parts.push(
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}, commit ${m.commit}${m.pinned ? ', server and generator pinned to one core each' : ''}.`,
  );
  const targets = (report.targets ?? []) as Array<{ name: string; title: string }>;
  const scen = (report.scenarios ?? []) as Array<{
    title: string;
    unit: string;
    results: Record<string, TargetSummary>;
    ratios: Record<string, number>;
    ratiosPerCpu?: Record<string, number>;
    target: { against: string; want?: string; note: string };
    stretch: { ratio: number; met: boolean } | null;
  }>;
  if (scen.length) {
    const head = ['scenario', ...targets.map((t) => t.title), 'target', 'result'];
    const rows = [head];
    for (const s of scen) {
      rows.push([
        `${s.title} (${s.unit})`,
        ...targets.map((t) => {
          const r = s.results[t.name];
          return r ? `${fmt(r.median)} ±${fmt(r.spreadPct)}%` : '-';
        }),
        `${s.target.want ?? ''} ${s.target.against}`.trim(),
        s.target.note +
          (s.stretch ? `; vs Bun ${s.stretch.ratio}x${s.stretch.met ? ' (stretch met)' : ''}` : ''),
      ]);
    }
    parts.push(table(rows));
    const cpu = [
      [
        'scenario',
        ...targets.map((t) => `${t.title}: server / generator CPU, per server CPU-s`),
        'ratio per CPU-s',
      ],
    ];
    for (const s of scen) {
      cpu.push([
        s.title,
        ...targets.map((t) => {
          const r = s.results[t.name];
          return r && r.serverCpu !== null
            ? `${Math.round(r.serverCpu * 100)}% / ${Math.round(r.generatorCpu * 100)}%, ${fmt(r.perServerCpu ?? NaN)}`
            : '-';
        }),
        Object.entries(s.ratiosPerCpu ?? {})
          .map(([n, v]) => `${v}x ${n}`)
          .join(', ') || '-',
      ]);
    }
    parts.push(table(cpu));
  }
  const h2 = report.h2 as
    | {
        conns: number;
        size: number;
        results: Array<{ protocol: string; msgPerSec: number; serverCpuMicrosPerMsg: number }>;
      }
    | undefined;
  if (h2) {
    const rows = [
      [
        `echo, Switchyard both ends, ${h2.conns} connections × 1 in flight, ${h2.size} B`,
        'msg/s',
        'server CPU µs/msg',
      ],
    ];
    for (const r of h2.results)
      rows.push([r.protocol, fmt(r.msgPerSec), fmt(r.serverCpuMicrosPerMsg)]);
    parts.push(table(rows));
  }
  const micro = report.micro as
    | {
        results: Array<{
          name: string;
          nsPerOp: number;
          opsPerSec: number;
          mbPerSec: number | null;
        }>;
      }
    | undefined;
  if (micro) {
    const rows = [['microbenchmark', 'ns/op', 'ops/s', 'MB/s']];
    for (const r of micro.results)
      rows.push([
        r.name,
        fmt(r.nsPerOp),
        fmt(r.opsPerSec),
        r.mbPerSec === null ? '-' : fmt(r.mbPerSec),
      ]);
    parts.push(table(rows));
  }
  for (const c of (report.curves ?? []) as Curve[]) {
    const names = [...new Set(c.points.flatMap((p) => Object.keys(p.values)))];
    const rows = [
      [
        `${c.title} (${c.unit})`,
        ...names.map((nm) => targets.find((t) => t.name === nm)?.title ?? nm),
      ],
    ];
    for (const p of c.points)
      rows.push([
        `${p.x.toLocaleString('en-US')} ${c.xLabel}`,
        ...names.map((nm) => fmt(p.values[nm] ?? NaN)),
      ]);
    parts.push(table(rows));
  }
  for (const n of (report.notes ?? []) as string[]) parts.push(`Note: ${n}`);
  return parts.join('\n\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
