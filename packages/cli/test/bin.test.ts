/** The `switchyard` launcher (bin/switchyard.js), run as a person runs it. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../bin/switchyard.js', import.meta.url));

test('before `npm run build` it says what to run instead of an ERR_MODULE_NOT_FOUND stack', (t) => {
  // A copy of the launcher with no dist/ beside it: a checkout before the build.
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-bin-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'bin'));
  copyFileSync(BIN, join(dir, 'bin', 'switchyard.js'));
  const run = spawnSync(process.execPath, [join(dir, 'bin', 'switchyard.js'), '--help'], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  assert.equal(run.status, 1);
  assert.match(run.stderr, /not built yet/);
  assert.match(run.stderr, /npm run build/);
  assert.match(run.stderr, /--conditions=switchyard-source --import tsx/);
  assert.doesNotMatch(run.stderr, /ERR_MODULE_NOT_FOUND|\n\s+at /);
});
