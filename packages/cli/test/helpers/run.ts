/** Runs the `switchyard` command in-process with captured streams. */
import { PassThrough, Readable } from 'node:stream';
import { main } from '../../src/main.js';
import type { Io } from '../../src/io.js';

/** What a run printed, and its exit code. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `switchyard <args>` with no colours, an empty stdin and the given environment. */
export async function runCli(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; stdin?: Readable; signal?: AbortSignal } = {},
): Promise<RunResult> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const io: Io = {
    stdout,
    stderr,
    stdin: options.stdin ?? Readable.from([]),
    env: { NO_COLOR: '1', ...(options.env ?? {}) },
    signal: options.signal ?? new AbortController().signal,
  };
  const code = await main(args, io);
  return { code, stdout: out, stderr: err };
}
