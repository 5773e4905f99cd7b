/**
 * Self-signed TLS credentials for tests, made by `openssl` at test time (no key is checked in).
 * The certificate is valid for `localhost` and `127.0.0.1` for one day; pass it as the client's
 * `ca` so that certificate checking stays on. Generated once per process and cached.
 * Install: `apt-get install openssl` (listed in `.ci/run`).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Availability } from './peers.js';

/** A private key and its self-signed certificate, both PEM. */
export interface TlsCredentials {
  key: Buffer;
  cert: Buffer;
}

let cached: Availability<TlsCredentials> | undefined;

/**
 * Returns a key and a self-signed P-256 certificate for `localhost` / `127.0.0.1`, or
 * `{ available: false, reason }` when `openssl` is missing or fails (skip with peers.ts's
 * `skipUnlessAvailable`, which fails instead under `SWITCHYARD_REQUIRE_PEERS=1`).
 *
 * @example
 * const tls = selfSignedCertificate();
 * if (!skipUnlessAvailable(t, tls)) return;
 * const server = https.createServer({ key: tls.key, cert: tls.cert });
 * const ws = await connect(`wss://localhost:${port}`, { tls: { ca: tls.cert } });
 */
export function selfSignedCertificate(): Availability<TlsCredentials> {
  if (cached !== undefined) return cached;
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-tls-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore', timeout: 10_000 },
    );
    cached = {
      available: true,
      key: readFileSync(join(dir, 'key.pem')),
      cert: readFileSync(join(dir, 'cert.pem')),
    };
  } catch (error) {
    cached = {
      available: false,
      reason: `openssl could not make a certificate (apt-get install openssl): ${(error as Error).message}`,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return cached;
}
