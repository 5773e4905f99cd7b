#!/usr/bin/env node
// `npm run lint:packages`: packs every package as `npm publish` would (prepack: clean build,
// README) and checks the tarballs with publint (package.json against the files shipped) and
// @arethetypeswrong/cli (types resolve like the JavaScript, per module resolution).
// attw runs with the esm-only profile because that is the truth: the packages are ESM only;
// `require()` works through Node's require(esm) (Node 20.19+ / 22.12+, see `engines`), which
// TypeScript's node16-from-CJS and node10 resolutions do not model. The CLI has no importable
// entry point (only a bin), so attw has nothing to check there; publint still checks it.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const bin = (pkg, name) => {
  const dir = join(root, 'node_modules', pkg);
  return join(dir, JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).bin[name]);
};
const PACKAGES = [
  { dir: 'packages/switchyard', attw: true },
  { dir: 'packages/redis', attw: true },
  { dir: 'packages/cli', attw: false },
];

const out = mkdtempSync(join(tmpdir(), 'switchyard-pack-'));
let failed = false;
try {
  for (const { dir, attw } of PACKAGES) {
    execFileSync('npm', ['pack', '--silent', '--pack-destination', out], {
      cwd: join(root, dir),
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const tarball = readdirSync(out).find((f) => f.endsWith('.tgz'));
    const run = (args) => {
      try {
        execFileSync(process.execPath, args, { stdio: 'inherit' });
      } catch {
        failed = true;
      }
    };
    run([bin('publint', 'publint'), '--strict', join(root, dir)]);
    if (attw) {
      run([
        bin('@arethetypeswrong/cli', 'attw'),
        join(out, tarball),
        '--profile',
        'esm-only',
        '--format',
        'table-flipped',
      ]);
    }
    for (const f of readdirSync(out)) rmSync(join(out, f));
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
