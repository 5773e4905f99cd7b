/**
 * What every command reads and writes, passed in so that tests run commands in-process with
 * their own streams and environment.
 */
import type { Readable, Writable } from 'node:stream';

/** A writable stream that may be a terminal. */
export type OutputStream = Writable & { isTTY?: boolean; columns?: number };

/** The streams and environment of one run of the command. */
export interface Io {
  stdout: OutputStream;
  stderr: OutputStream;
  stdin: Readable & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  /** Aborted on Ctrl-C (SIGINT) or SIGTERM; long-running commands stop cleanly on it. */
  signal: AbortSignal;
}

/** Bad usage: an unknown flag, a missing argument, a value out of range. Exit code 2. */
export class UsageError extends Error {
  override get name(): string {
    return 'UsageError';
  }
}

/** Exit codes of every command. */
export const EXIT = { OK: 0, PROBLEM: 1, USAGE: 2 } as const;

/** ANSI styling that disappears when the stream is not a terminal or NO_COLOR is set. */
export interface Style {
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  cyan(text: string): string;
}

/**
 * Styling for `stream`: colours only on a terminal, and never when NO_COLOR is set to anything
 * non-empty (https://no-color.org); FORCE_COLOR=1 turns them on for a pipe.
 */
export function createStyle(stream: OutputStream, env: NodeJS.ProcessEnv): Style {
  const on =
    (env.NO_COLOR === undefined || env.NO_COLOR === '') &&
    (stream.isTTY === true || (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0'));
  const wrap =
    (open: number, close: number) =>
    (text: string): string =>
      on ? `\u001b[${open}m${text}\u001b[${close}m` : text;
  return {
    bold: wrap(1, 22),
    dim: wrap(2, 22),
    red: wrap(31, 39),
    green: wrap(32, 39),
    yellow: wrap(33, 39),
    cyan: wrap(36, 39),
  };
}

/** Parses a whole, non-negative number flag, or throws a {@link UsageError} naming the flag. */
export function parseCount(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) {
    throw new UsageError(`--${flag} must be a whole number >= 0, got ${JSON.stringify(value)}`);
  }
  return n;
}

/**
 * Parses a duration flag: plain milliseconds (`1500`) or with a unit (`500ms`, `10s`, `2m`).
 * @throws {UsageError} when the value is not a duration.
 */
export function parseDuration(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value.trim());
  if (match === null) {
    throw new UsageError(
      `--${flag} must be a duration such as 500ms, 10s or 2m, got ${JSON.stringify(value)}`,
    );
  }
  const n = Number(match[1]);
  const unit = match[2] ?? 'ms';
  return Math.round(unit === 'm' ? n * 60_000 : unit === 's' ? n * 1000 : n);
}

/** Parses repeated `Name: value` header flags into a record. */
export function parseHeaderFlags(values: readonly string[] | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const raw of values ?? []) {
    const colon = raw.indexOf(':');
    if (colon <= 0) throw new UsageError(`--header must look like "Name: value", got ${raw}`);
    headers[raw.slice(0, colon).trim()] = raw.slice(colon + 1).trim();
  }
  return headers;
}

/** The port and host a server listens on: flags first, then PORT and HOST, then defaults. */
export function listenAddress(
  flags: { port?: string; host?: string },
  env: NodeJS.ProcessEnv,
  defaults: { port: number; host: string },
): { port: number; host: string } {
  const rawPort = flags.port ?? env.PORT;
  const port = rawPort === undefined || rawPort === '' ? defaults.port : Number(rawPort);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`the port must be 0-65535, got ${JSON.stringify(rawPort)}`);
  }
  const host = flags.host ?? (env.HOST === undefined || env.HOST === '' ? defaults.host : env.HOST);
  return { port, host };
}
