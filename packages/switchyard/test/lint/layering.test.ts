// The layering rule of `npm run lint` (.dependency-cruiser.cjs): it passes on the tree as it is,
// and it refuses each kind of mistake it exists for, written into a scratch tree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../../', import.meta.url));
const depcruise = join(root, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');

/** Runs the rule as `npm run lint` does; resolves with its exit code and report. */
function cruise(cwd: string, dirs: string[]): Promise<{ code: number; report: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [depcruise, ...dirs, '--config', '.dependency-cruiser.cjs'],
      { cwd, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout) => {
        if (error && typeof error.code !== 'number') reject(error);
        else resolve({ code: error ? Number(error.code) : 0, report: stdout });
      },
    );
  });
}

test('the source tree has no import cycle and no upward import', async () => {
  const { code, report } = await cruise(root, [
    'packages/switchyard/src',
    'packages/cli/src',
    'packages/redis/src',
  ]);
  assert.equal(code, 0, report);
  assert.match(report, /no dependency violations found/);
});

test('the rule fails on a cycle, node:* in core, core or node reaching up, deep imports, and a browser entry that leaves core', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-layering-'));
  try {
    cpSync(join(root, '.dependency-cruiser.cjs'), join(dir, '.dependency-cruiser.cjs'));
    cpSync(join(root, 'tsconfig.base.json'), join(dir, 'tsconfig.base.json'));
    const files: Record<string, string> = {
      // node/a.ts <-> node/b.ts, through a type-only import on one side.
      'packages/switchyard/src/node/a.ts': "import { b } from './b.js';\nexport const a = b + 1;\n",
      'packages/switchyard/src/node/b.ts':
        "import type { A } from './c.js';\nexport const b = 1;\nexport type B = A;\n",
      'packages/switchyard/src/node/c.ts':
        "import { a } from './a.js';\nexport type A = typeof a;\n",
      'packages/switchyard/src/core/io.ts':
        "import net from 'node:net';\nimport { b } from '../node/b.js';\nexport const s = net.isIP(String(b));\n",
      'packages/switchyard/src/node/up.ts':
        "import { t } from '../pubsub/t.js';\nexport const u = t;\n",
      'packages/switchyard/src/pubsub/t.ts': 'export const t = 1;\n',
      // switchyard/browser may use core (allowed), never Node or the node layer; and nothing
      // below it imports it.
      'packages/switchyard/src/browser/bad.ts':
        "import { EventEmitter } from 'node:events';\nimport { b } from '../node/b.js';\nimport { fine } from '../core/fine.js';\nexport const e = new EventEmitter() && b + fine;\n",
      'packages/switchyard/src/core/fine.ts': 'export const fine = 1;\n',
      'packages/switchyard/src/node/uses-browser.ts':
        "import { e } from '../browser/bad.js';\nexport const u = e;\n",
      'packages/cli/src/deep.ts':
        "import { t } from '../../switchyard/src/pubsub/t.js';\nexport const d = t;\n",
    };
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
    const { code, report } = await cruise(dir, ['packages/switchyard/src', 'packages/cli/src']);
    // One error per violation; the exit code is their count, which fails `npm run lint`.
    assert.equal(code, 8, report);
    for (const expected of [
      // a.ts -> b.ts -(type only)-> c.ts -> a.ts: a circle of types counts too
      'error no-circular: packages/switchyard/src/node/a.ts → ',
      'error core-no-node-modules: packages/switchyard/src/core/io.ts → net',
      'error core-not-upward: packages/switchyard/src/core/io.ts → packages/switchyard/src/node/b.ts',
      'error node-not-pubsub: packages/switchyard/src/node/up.ts → packages/switchyard/src/pubsub/t.ts',
      'error packages-use-public-api: packages/cli/src/deep.ts → packages/switchyard/src/pubsub/t.ts',
      'error browser-core-only: packages/switchyard/src/browser/bad.ts → events',
      'error browser-core-only: packages/switchyard/src/browser/bad.ts → packages/switchyard/src/node/b.ts',
      'error nothing-uses-browser: packages/switchyard/src/node/uses-browser.ts → packages/switchyard/src/browser/bad.ts',
    ]) {
      assert.ok(report.includes(expected), `expected "${expected}" in:\n${report}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
