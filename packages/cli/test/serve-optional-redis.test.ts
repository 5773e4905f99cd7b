// @switchyard/redis is an optional peer of the CLI: only `serve --redis` loads it, and its
// absence is reported by name instead of as a stack trace. (The packaging test runs the packed
// CLI without it installed: packages/switchyard/test/packaging/packages.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadRedis, MISSING_REDIS } from '../src/commands/serve.js';

/**
 * A loader that imports `specifier` from a directory outside the repository, where no
 * node_modules holds it: Node's own "not installed" error, not an imitation.
 */
async function loaderOutsideRepo(t: { after(fn: () => void): void }, specifier: string) {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-no-redis-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'load.mjs');
  writeFileSync(file, `export default () => import(${JSON.stringify(specifier)});\n`);
  const mod = (await import(pathToFileURL(file).href)) as {
    default: () => Promise<typeof import('@switchyard/redis')>;
  };
  return mod.default;
}

test('loadRedis resolves with the package when it is installed', async () => {
  const redis = await loadRedis();
  assert.equal(typeof redis?.RedisBackplane, 'function');
});

test('loadRedis resolves with null when @switchyard/redis is not installed', async (t) => {
  assert.equal(await loadRedis(await loaderOutsideRepo(t, '@switchyard/redis')), null);
});

test('loadRedis throws when something else is missing (a broken install is not hidden)', async (t) => {
  await assert.rejects(loadRedis(await loaderOutsideRepo(t, '@redis/client')), {
    code: 'ERR_MODULE_NOT_FOUND',
  });
});

test('the message names the package and how to install it', () => {
  assert.match(MISSING_REDIS, /@switchyard\/redis/);
  assert.match(MISSING_REDIS, /npm install @switchyard\/redis/);
});
