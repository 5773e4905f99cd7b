/** The version of the `switchyard` command, read from this package's package.json. */
import { readFileSync } from 'node:fs';

function readVersion(): string {
  try {
    // src/version.ts and dist/version.js both sit one folder below package.json.
    const text = readFileSync(new URL('../package.json', import.meta.url), 'utf8');
    return (JSON.parse(text) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** For example `0.1.0`. */
export const VERSION: string = readVersion();
