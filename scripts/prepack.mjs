#!/usr/bin/env node
// `prepack` of every package (npm pack, npm publish): a clean build, and for `switchyard` the
// repository's README.md, whose relative links are made absolute so they work on the registry.
// `postpack` (this script with --clean) removes the copied README again.
// Usage, from a package directory: node ../../scripts/prepack.mjs [--clean]
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const pkgDir = process.cwd();
const root = new URL('..', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
// Only the library's README lives at the root; cli and redis keep their own.
const copiesReadme = pkg.name === 'switchyard';

if (process.argv.includes('--clean')) {
  if (copiesReadme) rmSync(join(pkgDir, 'README.md'), { force: true });
  process.exit(0);
}

// A clean build: files of deleted or renamed sources must not ship from an old dist. The
// packaging test, which runs after `npm run build`, sets SWITCHYARD_PACK_USE_DIST=1 to reuse it.
if (!(process.env.SWITCHYARD_PACK_USE_DIST === '1' && existsSync(join(pkgDir, 'dist')))) {
  rmSync(join(pkgDir, 'dist'), { recursive: true, force: true });
  const tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', join(pkgDir, 'tsconfig.json')], { stdio: 'inherit' });
}

if (copiesReadme) {
  // https://github.com/OWNER/REPO(.git) -> https://github.com/OWNER/REPO/blob/main/<path>
  const repo = pkg.repository.url.replace(/^git\+/, '').replace(/\.git$/, '');
  const readme = readFileSync(join(root, 'README.md'), 'utf8').replace(
    /\]\((?!https?:|#|mailto:)([^)\s]+)\)/g,
    (_, target) => `](${repo}/blob/main/${target.replace(/^\.\//, '')})`,
  );
  writeFileSync(join(pkgDir, 'README.md'), readme);
}
