/**
 * The first bytes of the body of a failed handshake's answer (a 400, a 404, a proxy's page), for
 * the error that reports it: a person reading "400 Bad Request" wants the server's reason too.
 * Shared by the HTTP/1.1 client (after the head) and the HTTP/2 client (the stream's DATA).
 */
import type { Readable } from 'node:stream';

/** At most this much of the body is kept. */
export const MAX_ERROR_BODY = 1024;
/** And it is waited for at most this long: a body that never ends must not hold the error. */
const WAIT_MS = 500;

/**
 * Collects up to {@link MAX_ERROR_BODY} bytes (fewer when `declaredLength` says so), starting
 * with `already` (bytes that came with the head), until the stream ends or 500 ms pass.
 */
export function readErrorBody(
  stream: Readable,
  already: Uint8Array,
  declaredLength: number | undefined,
  done: (body: Uint8Array) => void,
): void {
  const want = Math.min(
    MAX_ERROR_BODY,
    declaredLength !== undefined && Number.isFinite(declaredLength)
      ? declaredLength
      : MAX_ERROR_BODY,
  );
  const chunks: Buffer[] = [Buffer.from(already)];
  let got = already.length;
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    stream.off('data', onData);
    stream.off('end', finish);
    stream.off('close', finish);
    done(new Uint8Array(Buffer.concat(chunks).subarray(0, want)));
  };
  const onData = (chunk: Buffer) => {
    chunks.push(chunk);
    got += chunk.length;
    if (got >= want) finish();
  };
  const timer = setTimeout(finish, WAIT_MS);
  if (got >= want) return finish();
  stream.on('data', onData);
  stream.once('end', finish);
  stream.once('close', finish);
}
